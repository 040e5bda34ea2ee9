"""CrossFusion: multi-scale cross-attention and convolutional fusion for survival from slides.

Soraki et al., "CrossFusion: A Multi-Scale Cross-Attention Convolutional Fusion Model for Cancer
Survival Prediction", MICCAI 2025. Three bags of patch features of one slide (5×, 10×, 20×) →
discrete-time hazards over survival bins. Our module computes what the authors' implementation
computes for the same weights (``crossfusion_convert`` maps their parameter names onto ours);
it is deterministic in ``eval()``, runs on any device, and uses a memory-efficient attention
kernel unless attention weights are asked for (see ``attention.py``).

Layout: blocks (FFN, cross-attention block, transformer block, PPEG, Pad-Transformer, Conv
Processor) → :class:`CrossFusion` → constructors (:func:`create_model`; a model folder's fold
ensemble: ``core.models.registry.load_ensemble``).
Shapes: B batch, N5/N10/N20 bag sizes, Db backbone features, D embed, h heads, H = W =
ceil(sqrt(N10)), M = H·W padded tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import Harm3Error
from .attention import AttentionScores, MultiHeadAttention
from .crossfusion_convert import is_official_state_dict, official_to_ours
from .zoo import load_weights

SCALES = ("coarse", "source", "fine")
#: order in which the three padded maps are stacked for the Conv Processor (authors' order)
FUSION_ORDER = ("source", "fine", "coarse")


@dataclass(frozen=True)
class CrossFusionConfig:
    backbone_dim: int = 1024     # Db, patch-feature size of the encoder
    embed_dim: int = 512         # D
    num_heads: int = 4
    num_layers: int = 1          # transformer blocks before and after each PPEG
    n_bins: int = 4              # discrete survival bins (output logits)
    ffn_ratio: int = 2
    ffn_dropout: float = 0.3
    attn_dropout: float = 0.2    # self-attention only; cross-attention has none
    fusion_dropout: float = 0.3  # Dropout2d in the Conv Processor
    scales: str = "all"          # "all" (5×, 10×, 20×) or "source" (10× only; paper ablation)
    fusion: str = "conv"         # "conv" (Conv Processor) or "linear" (joined + linear; ablation)

    def __post_init__(self):
        if self.scales not in ("all", "source"):
            raise ValueError(f"scales must be 'all' or 'source', not {self.scales!r}")
        if self.fusion not in ("conv", "linear"):
            raise ValueError(f"fusion must be 'conv' or 'linear', not {self.fusion!r}")
        if self.embed_dim % self.num_heads or self.embed_dim % 2:
            raise ValueError("embed_dim must be even and divisible by num_heads")

    @property
    def branches(self) -> tuple:
        return FUSION_ORDER if self.scales == "all" else ("source",)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CrossFusionConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class CrossFusionAttention:
    """Attention of one forward pass. Each entry is either the full per-head maps
    (``attention="maps"``) or :class:`AttentionScores` (``attention="scores"``).

    ``cross[scale]``: (B, h, N10, N5|N20); ``branch[scale]`` / ``final``: one entry per block,
    over the M padded tokens (final: 1 + M, class token first). ``n10`` and ``grid`` tell how
    padded tokens fold back onto patches (token N10 + j repeats patch j).
    """

    cross: dict
    branch: dict
    final: tuple
    n10: int
    grid: tuple


@dataclass(frozen=True)
class CrossFusionOutput:
    logits: torch.Tensor    # (B, n_bins)
    hazards: torch.Tensor   # (B, n_bins) sigmoid(logits)
    survival: torch.Tensor  # (B, n_bins) S after each bin, cumprod(1 - hazards)
    risk: torch.Tensor      # (B,) -sum(S): higher = worse
    attention: CrossFusionAttention | None = None


# --------------------------------------------------------------------------------------- blocks

def grid_side(n: int) -> int:
    """Side of the square grid the tokens are laid out on: ceil(sqrt(n))."""
    return max(1, math.ceil(math.sqrt(n)))


def square_pad(x: torch.Tensor, side: int) -> torch.Tensor:
    """Append the first side² − N tokens again at the end: (B, N, D) → (B, side², D)."""
    n = x.shape[1]
    extra = side * side - n
    if extra == 0:
        return x
    return torch.cat([x, x[:, :extra]], dim=1)  # (B, side², D); side² − N ≤ N always


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.gelu(self.fc1(x)), self.dropout, self.training)  # (B, N, hidden)
        return F.dropout(self.fc2(x), self.dropout, self.training)      # (B, N, D)


class CrossAttentionBlock(nn.Module):
    """10× tokens attend to another scale's tokens; a shared learned scale vector is added to both."""

    def __init__(self, cfg: CrossFusionConfig):
        super().__init__()
        d = cfg.embed_dim
        self.scale_embedding = nn.Parameter(torch.zeros(1, 1, d))
        self.attn = MultiHeadAttention(d, cfg.num_heads, attn_dropout=0.0)
        self.norm = nn.LayerNorm(d)
        self.ffn = FeedForward(d, cfg.ffn_ratio * d, cfg.ffn_dropout)

    def forward(self, x10: torch.Tensor, context: torch.Tensor, attention: str | None = None):
        a, w = self.attn(x10 + self.scale_embedding, context + self.scale_embedding, attention)  # (B, N10, D)
        y = self.norm(x10 + a)  # (B, N10, D)
        return y + self.ffn(y), w  # (B, N10, D)


class TransformerBlock(nn.Module):
    """Post-norm block, residual taken after the norm: x=LN1(x); x+=MHA(x); x=LN2(x); x+=FFN(x)."""

    def __init__(self, cfg: CrossFusionConfig):
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = nn.LayerNorm(d)
        self.attn = MultiHeadAttention(d, cfg.num_heads, attn_dropout=cfg.attn_dropout)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = FeedForward(d, cfg.ffn_ratio * d, cfg.ffn_dropout)

    def forward(self, x: torch.Tensor, attention: str | None = None):
        x = self.norm1(x)                  # (B, M, D)
        a, w = self.attn(x, None, attention)  # (B, M, D)
        x = self.norm2(x + a)              # (B, M, D)
        return x + self.ffn(x), w          # (B, M, D)


class PPEG(nn.Module):
    """Pyramid positional encoding: map + DWConv7 + DWConv5 + DWConv3 on the token grid."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv7 = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.conv5 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, side: int, has_cls: bool) -> torch.Tensor:
        b, _, d = x.shape
        cls, tokens = (x[:, :1], x[:, 1:]) if has_cls else (None, x)    # (B, 1, D), (B, M, D)
        fmap = tokens.transpose(1, 2).reshape(b, d, side, side)           # (B, D, H, W)
        fmap = fmap + self.conv7(fmap) + self.conv5(fmap) + self.conv3(fmap)  # (B, D, H, W)
        tokens = fmap.flatten(2).transpose(1, 2)                          # (B, M, D)
        return torch.cat([cls, tokens], dim=1) if has_cls else tokens     # (B, [1+]M, D)


class PadTransformer(nn.Module):
    """Blocks → PPEG → blocks → LayerNorm, on square-padded tokens (class token first if any)."""

    def __init__(self, cfg: CrossFusionConfig, has_cls: bool = False):
        super().__init__()
        self.has_cls = has_cls
        self.blocks_before = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.num_layers))
        self.pos = PPEG(cfg.embed_dim)
        self.blocks_after = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: torch.Tensor, side: int, attention: str | None = None):
        maps = []
        for block in self.blocks_before:
            x, w = block(x, attention)  # (B, [1+]M, D)
            maps.append(w)
        x = self.pos(x, side, self.has_cls)  # (B, [1+]M, D)
        for block in self.blocks_after:
            x, w = block(x, attention)  # (B, [1+]M, D)
            maps.append(w)
        return self.norm(x), tuple(maps)  # (B, [1+]M, D)


class ConvProcessor(nn.Module):
    """Fuse the padded maps: 1×1×1 Conv3d across scales, multi-scale grouped conv D → D/2, ReLU,
    Dropout2d, then Linear(D/2 → D) and LayerNorm per token."""

    def __init__(self, cfg: CrossFusionConfig, n_inputs: int):
        super().__init__()
        d, half = cfg.embed_dim, cfg.embed_dim // 2
        self.mix = nn.Conv3d(n_inputs, 1, kernel_size=1)
        self.conv7 = nn.Conv2d(d, half, 7, padding=3, groups=half)
        self.conv5 = nn.Conv2d(d, half, 5, padding=2, groups=half)
        self.conv3 = nn.Conv2d(d, half, 3, padding=1, groups=half)
        self.conv1 = nn.Conv2d(d, half, 1, groups=half)
        self.dropout = cfg.fusion_dropout
        self.linear = nn.Linear(half, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, maps: list, side: int) -> torch.Tensor:
        b, _, d = maps[0].shape
        x = torch.stack([m.transpose(1, 2).reshape(b, d, side, side) for m in maps], dim=1)  # (B, S, D, H, W)
        x = self.mix(x).squeeze(1)                                             # (B, D, H, W)
        x = self.conv7(x) + self.conv5(x) + self.conv3(x) + self.conv1(x)      # (B, D/2, H, W)
        x = F.dropout2d(F.relu(x), self.dropout, self.training)                # (B, D/2, H, W)
        x = x.flatten(2).transpose(1, 2)                                       # (B, M, D/2)
        return self.norm(self.linear(x))                                       # (B, M, D)


class LinearFusion(nn.Module):
    """Ablation without the Conv Processor: the maps joined along features, Linear(S·D → D), LayerNorm."""

    def __init__(self, cfg: CrossFusionConfig, n_inputs: int):
        super().__init__()
        self.linear = nn.Linear(n_inputs * cfg.embed_dim, cfg.embed_dim)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, maps: list, side: int) -> torch.Tensor:
        return self.norm(self.linear(torch.cat(maps, dim=-1)))  # (B, M, D)


# ---------------------------------------------------------------------------------------- model

class CrossFusion(nn.Module):
    """Survival from three magnifications of one slide; see the module docstring."""

    def __init__(self, cfg: CrossFusionConfig = CrossFusionConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        used = ("coarse", "source", "fine") if cfg.scales == "all" else ("source",)
        self.project = nn.ModuleDict({s: self._projection(cfg) for s in used})
        self.cross = nn.ModuleDict({s: CrossAttentionBlock(cfg) for s in used if s != "source"})
        self.branch = nn.ModuleDict({s: PadTransformer(cfg) for s in cfg.branches})
        fusion = ConvProcessor if cfg.fusion == "conv" else LinearFusion
        self.fusion = fusion(cfg, len(cfg.branches))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.final = PadTransformer(cfg, has_cls=True)
        self.head = nn.Linear(d, cfg.n_bins)
        self.reset_parameters()

    @staticmethod
    def _projection(cfg: CrossFusionConfig) -> nn.Module:
        if cfg.backbone_dim == cfg.embed_dim:
            return nn.Identity()
        return nn.Sequential(nn.Linear(cfg.backbone_dim, cfg.embed_dim), nn.LayerNorm(cfg.embed_dim))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for block in self.cross.values():
            nn.init.trunc_normal_(block.scale_embedding, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, x5: torch.Tensor | None, x10: torch.Tensor, x20: torch.Tensor | None,
                attention: str | None = None) -> CrossFusionOutput:
        """Bags (B, N5, Db), (B, N10, Db), (B, N20, Db); ``attention`` None, "maps" or "scores"."""
        if x10.dim() != 3:
            raise ValueError(f"x10 must be (B, N, D), got shape {tuple(x10.shape)}")
        n10 = x10.shape[1]
        side = grid_side(n10)
        source = self.project["source"](x10)  # (B, N10, D)
        tokens = {"source": source}
        cross = {}
        for scale, bag in (("coarse", x5), ("fine", x20)):
            if scale in self.cross:
                if bag is None:
                    raise ValueError(f"this model needs the {scale} bag")
                context = self.project[scale](bag)  # (B, N5|N20, D)
                tokens[scale], cross[scale] = self.cross[scale](source, context, attention)  # (B, N10, D)
        maps, branch = [], {}
        for scale in self.cfg.branches:
            padded = square_pad(tokens[scale], side)  # (B, M, D)
            out, branch[scale] = self.branch[scale](padded, side, attention)  # (B, M, D)
            maps.append(out)
        fused = self.fusion(maps, side)  # (B, M, D)
        cls = self.cls_token.expand(fused.shape[0], -1, -1)  # (B, 1, D)
        z, final = self.final(torch.cat([cls, fused], dim=1), side, attention)  # (B, 1+M, D)
        logits = self.head(z[:, 0])  # (B, n_bins)
        hazards = torch.sigmoid(logits)  # (B, n_bins)
        survival = torch.cumprod(1 - hazards, dim=1)  # (B, n_bins)
        risk = -survival.sum(dim=1)  # (B,)
        att = None
        if attention is not None:
            att = CrossFusionAttention(cross=cross, branch=branch, final=final, n10=n10, grid=(side, side))
        return CrossFusionOutput(logits=logits, hazards=hazards, survival=survival, risk=risk, attention=att)


# --------------------------------------------------------------------------------- constructors

CITATION = ("Soraki et al., CrossFusion: A Multi-Scale Cross-Attention Convolutional Fusion Model for "
            "Cancer Survival Prediction, MICCAI 2025")
#: differences from the authors' implementation, for every model card
DEVIATIONS = (
    "Deterministic in eval(): the authors' code applies attention dropout at inference, so two runs on one slide differ.",
    "Runs on any device (CUDA, MPS, CPU) in float32; the authors' code hard-wires CUDA and trains in fp16 without a loss scaler.",
    "Survival bins are the quartiles of the uncensored times of the training fold only (the authors' code uses "
    "train + validation, a leak); the bin edges are saved with the model so S(t) is drawn against months.",
    "Memory-efficient attention (scaled_dot_product_attention) when attention weights are not requested; "
    "same outputs up to float rounding.",
)

MODEL_CONFIGS = {
    # the paper's default: ResNet50-trunc features (1024), embed 512, 4 heads
    "crossfusion": CrossFusionConfig(),
    "crossfusion_512": CrossFusionConfig(backbone_dim=512),
    # small widths for tests and the synthetic demo model
    "crossfusion_tiny": CrossFusionConfig(embed_dim=32, num_heads=4),
}


def create_model(name: str = "crossfusion", weights=None, **overrides) -> CrossFusion:
    """Build a CrossFusion model by config name, with optional overrides and weights.

    ``weights``: a state dict (our names, or the authors' names — converted), or a path to a
    ``.safetensors`` file (authors' ``.pt`` checkpoints: use ``crossfusion_convert``).
    The model is returned in ``eval()`` mode.
    """
    if name not in MODEL_CONFIGS:
        raise Harm3Error(f"unknown CrossFusion config {name!r}; choose one of {', '.join(MODEL_CONFIGS)}")
    cfg = replace(MODEL_CONFIGS[name], **overrides)
    model = CrossFusion(cfg)
    if weights is not None:
        load_state(model, weights)
    return model.eval()


def load_state(model: CrossFusion, weights) -> CrossFusion:
    """Load weights (state dict or safetensors path) in our or the authors' names; strict."""
    state = load_weights(weights) if not isinstance(weights, dict) else weights
    if is_official_state_dict(state):
        state = official_to_ours(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        example = (missing + unexpected + wrong)[0]
        raise Harm3Error(f"weights do not fit this CrossFusion config ({len(missing)} missing, {len(unexpected)} "
                         f"unexpected, {len(wrong)} of another shape, e.g. {example})")
    model.load_state_dict(state)
    return model


__all__ = ["CrossFusion", "CrossFusionConfig", "CrossFusionOutput", "CrossFusionAttention",
           "AttentionScores", "create_model", "load_state", "square_pad", "grid_side"]
