"""Encoders prepared for fast inference, giving the plain model's features up to float rounding.

CLAM runs the plain model. The extraction pipeline runs a copy of it that

1. folds every BatchNorm into the convolution before it (weights scaled by γ/√(σ²+ε), the
   shift moved into the bias; ``torch.fx`` ``fuse``): one pass over each activation, not two;
2. keeps weights and activations channels-last (NHWC), the layout oneDNN's CPU convolutions
   and CUDA's tensor cores are fastest in (the pipeline's uint8 (B, H, W, 3) batches are
   channels-last already once permuted to (B, 3, H, W));
3. on request (``compile=True``) is compiled by ``torch.compile`` (inductor, frozen weights):
   each convolution fused with its ReLU and residual add, weights packed once. The compile
   takes 0.5–2 min in each new process (a C++ compiler is needed on the CPU) and serves
   batches of the first size it sees; other sizes (a slide's last, short batch) run the eager
   copy of 1–2, so nothing is compiled twice. Should compiling fail, a warning says so and
   the eager copy runs.

On CUDA, :func:`.extraction.encode_batches` adds fp16 autocast. The copy is made once per
encoder, device and ``compile`` (and again after the encoder's weights change); the encoder
itself is left as it is. Encoders without convolutions (``texture_stats``) are used as they are.

ResNet50-trunc (6.56 GFLOP a 224-px patch), batch 16, one thread, patches per CPU second (not
wall time: the 2 cores are shared) on the development machine (AMD EPYC Zen 1, AVX2):
NCHW input as CLAM feeds it 3.7–3.9; the plain model on the pipeline's channels-last input
4.3–4.6; 1 + 2: 4.7–4.9 (+6 %, +2 to +8 % run to run); 1 + 2 + 3: 5.0–5.2 (+12 %), i.e.
33 GFLOP/s, the single-core sgemm peak of this CPU (33–35 GFLOP/s): only fewer operations
(other arithmetic, other features) could go faster. Rejected: bf16 autocast (about 6× slower
without AVX512-BF16); ``torch.jit.freeze`` and the mkldnn layout of ``torch.fx``'s
``optimize_for_inference`` (deprecated TorchScript, no faster than 1 + 2 + 3); NNPACK's
Winograd 3×3 convolutions (no gain once its layout conversions are paid).
"""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse
from torch.nn.modules.batchnorm import _BatchNorm

#: prepared copies: {encoder: {(device, compile): (weights token, copy)}}
_PREPARED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def inference_encoder(encoder, device=None, compile: bool = False):
    """``encoder`` made fast for inference on ``device`` (a cached copy; see the module docstring).

    Returns ``encoder`` itself (moved to ``device``) when there is nothing to gain: no
    convolution in it, or it was prepared already.
    """
    device = torch.device(device or "cpu")
    model = getattr(encoder, "model", None)
    if getattr(encoder, "prepared_for_inference", False) or not _has_convolutions(model):
        return encoder.to(device)
    per_encoder = _PREPARED.setdefault(encoder, {})
    key, token = (str(device), bool(compile)), _weights_token(model)
    cached = per_encoder.get(key)
    if cached is None or cached[0] != token:
        cached = per_encoder[key] = (token, _prepare(encoder, device, compile))
    return cached[1]


def _has_convolutions(model) -> bool:
    return isinstance(model, nn.Module) and any(isinstance(m, nn.Conv2d) for m in model.modules())


def _weights_token(model) -> tuple:
    """Changes when a parameter or buffer is replaced or written in place (e.g. ``load_state_dict``)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return tuple((t.data_ptr(), t._version) for t in tensors)


def fold_batchnorm(model):
    """A copy of ``model`` (eval mode) with each BatchNorm folded into the convolution before it;
    an untraceable model comes back unfolded (a copy still)."""
    model = copy.deepcopy(model).eval()
    if not any(isinstance(m, _BatchNorm) for m in model.modules()):
        return model
    try:
        return fuse(model, inplace=True)
    except (fx.proxy.TraceError, TypeError, NotImplementedError, RuntimeError):
        return model  # control flow torch.fx cannot trace: unfolded, same features


def _prepare(encoder, device, compile: bool):
    model = fold_batchnorm(encoder.model).to(device, memory_format=torch.channels_last)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model = ChannelsLastInput(model)
    if compile:
        model = CompiledOrEager(model)
    prepared = type(encoder)(encoder.spec, model, encoder.weights_sha256).to(device).eval()
    prepared.prepared_for_inference = True
    return prepared


class ChannelsLastInput(nn.Module):
    """``model`` fed channels-last (NHWC) input (a no-op when the input is already)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))  # (B, D)


class CompiledOrEager(nn.Module):
    """``torch.compile(model)`` (frozen weights) for batches of the first size it is given;
    the eager ``model`` for other sizes, and for all once compiling has failed."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, dynamic=False, options={"freezing": True})
        self.batch_size = None  # the size compiled for

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None and self.batch_size in (None, len(x)):
            try:
                features = self.compiled(x)  # (B, D)
                self.batch_size = len(x)
                return features
            except Exception as exc:  # noqa: BLE001 - compiler failures come in many types
                self.compiled = None
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); "
                              "the encoder runs uncompiled", stacklevel=2)
        return self.model(x)  # (B, D)
