"""Building blocks of HARM3-Fusion (Wang, Liu et al., MICCAI 2025; see ``harm3_fusion.py``).

Residual 3D CNN feature extractor, multi-head attention that returns its weights (with an
optional additive bias and key padding mask), the relative-position bias of the T1/T2
self-attention, attention pooling with learned seeds, and the Conv1d + MLP head.
Shapes: B batch, L/Q/K token counts, d model width, h heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm3d(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (group, instance, batch, none)")


class ResidualBlock3d(nn.Module):
    """conv3³(stride) → norm → ReLU → conv3³ → norm, plus a (projected) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride=(1, 1, 1), norm: str = "group"):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm3d(norm, cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _norm3d(norm, cout)
        self.shortcut = nn.Identity()
        if cin != cout or tuple(stride) != (1, 1, 1):
            self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), _norm3d(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))          # (B, cout, d', h', w')
        y = self.norm2(self.conv2(y))                  # (B, cout, d', h', w')
        return F.relu(y + self.shortcut(x))            # (B, cout, d', h', w')


class Extractor3d(nn.Module):
    """Residual 3D CNN: stem → stages → 1×1×1 ``last_conv`` (the Grad-CAM target) → ReLU → pool."""

    def __init__(self, channels=(32, 64, 128, 256), stem_stride=(1, 2, 2),
                 stage_strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (1, 2, 2)), blocks_per_stage: int = 1,
                 out_dim: int = 256, token_grid=(3, 8, 8), norm: str = "group"):
        super().__init__()
        if len(stage_strides) != len(channels):
            raise ValueError("one stride per stage")
        self.stem = nn.Sequential(nn.Conv3d(1, channels[0], 3, stride=stem_stride, padding=1, bias=False),
                                  _norm3d(norm, channels[0]), nn.ReLU(inplace=True))
        stages, cin = [], channels[0]
        for cout, stride in zip(channels, stage_strides):
            blocks = [ResidualBlock3d(cin, cout, stride, norm)]
            blocks += [ResidualBlock3d(cout, cout, (1, 1, 1), norm) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.last_conv = nn.Conv3d(cin, out_dim, 1)
        self.pool = nn.AdaptiveAvgPool3d(tuple(token_grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))                  # (B, C_last, d, h, w)
        x = F.relu(self.last_conv(x))                  # (B, out_dim, d, h, w)
        return self.pool(x)                            # (B, out_dim, *token_grid)


class Attention(nn.Module):
    """Multi-head attention, queries from ``x``, keys/values from ``context``; returns (out, weights).

    ``scale="head"`` divides the logits by √(d/h) (usual multi-head practice); ``scale="model"``
    by √d, the d_k of the paper's Eq. 6 read literally.
    """

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.0, scale: str = "head"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads if scale == "head" else dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, context=None, bias=None, key_mask=None):
        context = x if context is None else context
        B, Q, d = x.shape
        L = context.shape[1]
        h = self.heads
        q = self.q(x).view(B, Q, h, d // h).transpose(1, 2)                       # (B, h, Q, d/h)
        k, v = self.kv(context).view(B, L, 2, h, d // h).permute(2, 0, 3, 1, 4)   # 2 × (B, h, L, d/h)
        logits = (q @ k.transpose(-1, -2)) * self.scale                          # (B, h, Q, L)
        if bias is not None:
            logits = logits + bias                                                # (B, h, Q, L)
        if key_mask is not None:                                                  # True = a real key
            logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = logits.softmax(dim=-1)                                          # (B, h, Q, L)
        out = (self.drop(weights) @ v).transpose(1, 2).reshape(B, Q, d)           # (B, Q, d)
        return self.out(out), weights


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, ratio: float = 4.0, dropout: float = 0.0):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class RelativePositionBias(nn.Module):
    """Learned per-head bias for every token pair: a table over 3D grid offsets (Δz, Δy, Δx)
    plus one entry per (sequence_i, sequence_j) and per (time_i, time_j) pair, so the
    attention can tell T1 from T2 and pre from post."""

    def __init__(self, grid, n_sequences: int, n_times: int, heads: int):
        super().__init__()
        gz, gy, gx = (int(g) for g in grid)
        zz, yy, xx = torch.meshgrid(torch.arange(gz), torch.arange(gy), torch.arange(gx), indexing="ij")
        pos = torch.stack([zz, yy, xx], -1).reshape(-1, 3)                       # (n, 3)
        n = pos.shape[0]
        seq = torch.arange(n_sequences).repeat_interleave(n_times * n)           # (L,)
        time = torch.arange(n_times).repeat_interleave(n).repeat(n_sequences)    # (L,)
        pos = pos.repeat(n_sequences * n_times, 1)                               # (L, 3)
        rel = pos[:, None, :] - pos[None, :, :] + torch.tensor([gz - 1, gy - 1, gx - 1])  # (L, L, 3)
        spatial = (rel[..., 0] * (2 * gy - 1) + rel[..., 1]) * (2 * gx - 1) + rel[..., 2]  # (L, L)
        self.register_buffer("spatial_index", spatial, persistent=False)
        self.register_buffer("pair_seq", seq[:, None] * n_sequences + seq[None, :], persistent=False)
        self.register_buffer("pair_time", time[:, None] * n_times + time[None, :], persistent=False)
        self.spatial = nn.Parameter(torch.zeros((2 * gz - 1) * (2 * gy - 1) * (2 * gx - 1), heads))
        self.sequence = nn.Parameter(torch.zeros(n_sequences * n_sequences, heads))
        self.time = nn.Parameter(torch.zeros(n_times * n_times, heads))
        nn.init.trunc_normal_(self.spatial, std=0.02)

    @property
    def length(self) -> int:
        return self.spatial_index.shape[0]

    def forward(self) -> torch.Tensor:
        bias = self.spatial[self.spatial_index] + self.sequence[self.pair_seq] + self.time[self.pair_time]  # (L, L, h)
        return bias.permute(2, 0, 1).unsqueeze(0)                                # (1, h, L, L)


class SelfAttentionLayer(nn.Module):
    """Pre-norm transformer layer: x + MHA(LN x; bias), then x + FFN(LN x)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, ffn_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_ratio, dropout)

    def forward(self, x, bias=None):
        y, weights = self.attn(self.norm1(x), bias=bias)                         # (B, L, d), (B, h, L, L)
        x = x + y                                                                 # (B, L, d)
        return x + self.ffn(self.norm2(x)), weights                               # (B, L, d)


class AttentionPooling(nn.Module):
    """K learned seed queries attend over a bag of patch features → (B, K, d) and the weights."""

    def __init__(self, dim: int, seeds: int = 16, heads: int = 8, dropout: float = 0.0):
        super().__init__()
        self.seeds = nn.Parameter(torch.randn(seeds, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)

    def forward(self, patches, key_mask=None):
        seeds = self.seeds.unsqueeze(0).expand(patches.shape[0], -1, -1)          # (B, K, d)
        pooled, weights = self.attn(seeds, self.norm(patches), key_mask=key_mask)  # (B, K, d), (B, h, K, N)
        return pooled + seeds, weights                                            # (B, K, d)


class CrossAttentionLayer(nn.Module):
    """Queries from the slide tokens, keys/values from the MRI tokens (Eqs. 6–7).

    ``residual=False`` returns A·V_MRI exactly as Eq. 7; ``residual=True`` adds the queries back
    and a feed-forward sub-layer, as a transformer decoder layer does.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, scale: str = "head", residual: bool = True):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout, scale=scale)
        self.residual = residual
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, 4.0, dropout)

    def forward(self, queries, context):
        fused, weights = self.attn(self.norm_q(queries), self.norm_kv(context))  # (B, K, d), (B, h, K, L)
        if not self.residual:
            return fused, weights
        x = queries + fused                                                       # (B, K, d)
        return x + self.ffn(self.norm2(x)), weights                               # (B, K, d)


class ConvHead(nn.Module):
    """Two Conv1d + ReLU over the token axis, global average pooling, MLP → one logit."""

    def __init__(self, dim: int, channels=(256, 128), hidden: int = 64, dropout: float = 0.0, kernel: int = 3):
        super().__init__()
        c1, c2 = channels
        self.conv = nn.Sequential(nn.Conv1d(dim, c1, kernel, padding=kernel // 2), nn.ReLU(inplace=True),
                                  nn.Conv1d(c1, c2, kernel, padding=kernel // 2), nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(nn.Linear(c2, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.conv(tokens.transpose(1, 2))                                     # (B, c2, T)
        return self.mlp(x.mean(dim=-1)).squeeze(-1)                               # (B,)
