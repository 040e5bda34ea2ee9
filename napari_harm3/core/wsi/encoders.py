"""Patch encoders: one registry, one constructor, each with its preprocessing contract.

``create_encoder(name, weights=None, **overrides)`` builds a :class:`PatchEncoder` that takes a
uint8 batch (B, H, W, 3) and returns float32 features (B, D). Weights come only from a local
file the user gives (safetensors preferred; a ``.pth``/``.bin``/``.pt`` state dict is read with
``torch.load(weights_only=True)``); nothing is downloaded. Without a file, a learned encoder is
random-initialised, labelled ``random-init`` in its name and in every feature file, and a
warning says so: fine for tests and the demo, meaningless for research.

Registered encoders:

``resnet50_trunc``        ResNet50 cut after its third stage + adaptive average pooling, 1024-d,
                          ImageNet mean/std, 224 input (CLAM's default; torchvision resnet50 weights)
``vit_base_patch16_224``  timm ViT-B/16, 768-d, mean/std 0.5, 224 input
``vit_large_patch16_224`` timm ViT-L/16 in UNI's layout (init_values=1e-5, num_classes=0,
                          dynamic_img_size=True), 1024-d, ImageNet mean/std, 224 input
``texture_stats``         weight-free colour/texture statistics (42-d), patch kept at native size
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torchvision.models import resnet50

from ..errors import Harm3Error, InputFileError
from ..hashing import sha256_file
from .texture_encoder import TextureStats

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
#: seed of random-initialised encoders (same features on every run, so resumed runs match)
RANDOM_INIT_SEED = 0


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder's name, output size and preprocessing contract."""

    name: str
    dim: int
    input_size: int | None  # square resize target; None = keep the patch's size
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    needs_weights: bool = True
    options: dict = field(default_factory=dict)  # constructor defaults (overridable)
    description: str = ""


ENCODERS = {
    "resnet50_trunc": EncoderSpec("resnet50_trunc", 1024, 224, description="ResNet50 to layer3 + avg pool (CLAM)"),
    "vit_base_patch16_224": EncoderSpec("vit_base_patch16_224", 768, 224, HALF, HALF,
                                        options=dict(num_classes=0), description="timm ViT-B/16"),
    "vit_large_patch16_224": EncoderSpec("vit_large_patch16_224", 1024, 224,
                                         options=dict(init_values=1e-5, num_classes=0, dynamic_img_size=True),
                                         description="timm ViT-L/16, UNI layout"),
    "texture_stats": EncoderSpec("texture_stats", 42, None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), needs_weights=False,
                                 description="colour + multi-scale texture statistics, weight-free"),
}
ALIASES = {"uni": "vit_large_patch16_224"}


def list_encoders() -> list:
    return sorted(ENCODERS)


class ResNet50Trunc(nn.Module):
    """torchvision ResNet50 up to ``layer3`` (1024 channels) + global average pooling.

    Attribute names equal torchvision's, so a torchvision resnet50 state dict loads as is.
    """

    def __init__(self, **overrides):
        super().__init__()
        full = resnet50(weights=None, **overrides)
        self.conv1, self.bn1, self.relu, self.maxpool = full.conv1, full.bn1, full.relu, full.maxpool
        self.layer1, self.layer2, self.layer3 = full.layer1, full.layer2, full.layer3
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 1024, H/16, W/16)
        return torch.flatten(self.pool(x), 1)  # (B, 1024)


def _timm_vit(name: str, **options):
    return timm.create_model(name, pretrained=False, **options)


def read_state_dict(path) -> dict:
    """A state dict from a local safetensors file or a ``.pth/.bin/.pt`` (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "encoder weight file not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputFileError(path, f"not a readable safetensors file ({exc})") from exc

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise InputFileError(path, f"not a state dict torch.load(weights_only=True) can read ({exc})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise InputFileError(path, "does not hold a state dict (name → tensor)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _load_into(model, state: dict, path) -> None:
    """Load ``state``; keys the model lacks (e.g. a full resnet50's layer4/fc, a ViT head) are
    ignored, every key the model needs must be there with its shape."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = (f"{len(missing)} missing (e.g. {missing[0]})" if missing else "") + \
                 (f"{'; ' if missing else ''}{len(wrong)} of another shape (e.g. {wrong[0]})" if wrong else "")
        raise InputFileError(path, f"weights do not fit this encoder: {detail}")
    model.load_state_dict({k: state[k] for k in own}, strict=True)


class PatchEncoder(nn.Module):
    """Preprocessing + model: uint8 (B, H, W, 3) → float32 features (B, D)."""

    def __init__(self, spec: EncoderSpec, model: nn.Module, weights_sha256: str | None):
        super().__init__()
        self.spec = spec
        self.model = model
        self.weights_sha256 = weights_sha256
        self.random_init = spec.needs_weights and weights_sha256 is None
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    @property
    def name(self) -> str:
        """Name recorded with the features (``+random-init`` when no weights were given)."""
        return f"{self.spec.name}+random-init" if self.random_init else self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.dim

    def preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) → normalised float (B, 3, S, S) on the batch's device."""
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)
        size = self.spec.input_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std  # (B, 3, S, S)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        features = self.model(self.preprocess(batch))  # (B, D)
        return features.float()

    def provenance(self) -> dict:
        """What is stored with the features."""
        return {"encoder": self.name, "encoder_arch": self.spec.name,
                "weights_sha256": self.weights_sha256 or "", "random_init": bool(self.random_init),
                "feature_dim": int(self.spec.dim), "input_size": self.spec.input_size or 0,
                "mean": list(self.spec.mean), "std": list(self.spec.std)}


def resolve_name(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower()) if name else name
    if key not in ENCODERS:
        raise Harm3Error(f"unknown encoder {name!r}; choose one of {', '.join(list_encoders())}")
    return key


def create_encoder(name: str, weights=None, **overrides):
    """Build encoder ``name`` with weights from a local file (or random-init, with a warning).

    ``overrides`` go to the architecture (e.g. ``depth=1, embed_dim=64, num_heads=2`` for a tiny
    ViT in tests); ``input_size``, ``mean`` and ``std`` override the preprocessing contract.
    The encoder is returned in eval mode on the CPU.
    """
    key = resolve_name(name)
    spec = ENCODERS[key]
    contract = {k: overrides.pop(k) for k in ("input_size", "mean", "std") if k in overrides}
    if key == "texture_stats":
        if weights is not None:
            raise Harm3Error("texture_stats has no weights; drop --weights")
        if overrides:
            raise Harm3Error(f"texture_stats takes no options (got {', '.join(overrides)})")
        model = TextureStats()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)  # random-init encoders are reproducible
            if key == "resnet50_trunc":
                model = ResNet50Trunc(**overrides)
            else:
                model = _timm_vit(key, **{**spec.options, **overrides})
                spec = replace(spec, dim=int(getattr(model, "num_features", spec.dim)))
    spec = replace(spec, **contract)
    digest = None
    if weights is not None:
        _load_into(model, read_state_dict(weights), weights)
        digest = sha256_file(weights)
    elif spec.needs_weights:
        warnings.warn(f"encoder {key}: no weight file given — RANDOM-INITIALISED weights; features are "
                      "labelled '+random-init' and are meaningless for research", stacklevel=2)
    encoder = PatchEncoder(spec, model, digest)
    return encoder.eval()
