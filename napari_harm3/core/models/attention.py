"""Multi-head attention that is cheap when nobody looks at the weights.

Three ways to run the same layer (same parameters, same output up to float rounding):

* ``weights=None`` — :func:`torch.nn.functional.scaled_dot_product_attention`, which on CPU and
  GPU uses a fused, memory-efficient kernel: no (Nq × Nk) matrix is ever held, so a slide with
  35,000 query tokens and 140,000 context tokens fits in a few GiB.
* ``weights="maps"`` — the full per-head attention matrix (B, heads, Nq, Nk) is returned too;
  meant for small bags (tests, the reference check, a tile of a slide).
* ``weights="scores"`` — the output is computed chunk by chunk over the queries, and only the
  per-key summary a heatmap needs is kept: the attention each key receives, averaged over heads
  and queries (B, Nk), and the first query's row averaged over heads (B, Nk) — the class-token
  row when a class token sits first. Memory is bounded by ``chunk_elements``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_MODES = (None, "maps", "scores")


@dataclass(frozen=True)
class AttentionScores:
    """Per-key summary of one attention layer (no Nq × Nk matrix kept)."""

    received: torch.Tensor   # (B, Nk) mean over heads and queries of the weight each key gets
    first_row: torch.Tensor  # (B, Nk) mean over heads of query 0's weights (class-token row)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product multi-head attention with separate q, k, v and output projections."""

    def __init__(self, dim: int, num_heads: int, attn_dropout: float = 0.0,
                 chunk_elements: int = 1 << 25):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_dropout = attn_dropout
        self.chunk_elements = chunk_elements
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, dh)

    def forward(self, query: torch.Tensor, context: torch.Tensor | None = None, weights: str | None = None):
        """``query`` (B, Nq, D), ``context`` (B, Nk, D) (self-attention when None).

        Returns ``(out (B, Nq, D), w)`` where ``w`` is None, the maps (B, h, Nq, Nk) or an
        :class:`AttentionScores`, following ``weights``.
        """
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {weights!r}")
        context = query if context is None else context
        b, nq, d = query.shape
        q = self._heads(self.q(query))    # (B, h, Nq, dh)
        k = self._heads(self.k(context))  # (B, h, Nk, dh)
        v = self._heads(self.v(context))  # (B, h, Nk, dh)
        p = self.attn_dropout if self.training else 0.0
        w = None
        if weights is None:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, Nq, dh)
        elif weights == "maps":
            a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)  # (B, h, Nq, Nk)
            w = a
            o = F.dropout(a, p, self.training) @ v  # (B, h, Nq, dh)
        else:
            o, w = self._chunked_scores(q, k, v, p)  # (B, h, Nq, dh), AttentionScores
        o = o.transpose(1, 2).reshape(b, nq, d)  # (B, Nq, D)
        return self.out(o), w  # (B, Nq, D)

    def _chunked_scores(self, q, k, v, p: float):
        b, h, nq, dh = q.shape
        nk = k.shape[2]
        step = max(1, self.chunk_elements // max(1, b * h * nk))
        outs = []
        received = q.new_zeros(b, nk)  # (B, Nk)
        first_row = None
        scale = 1.0 / math.sqrt(dh)
        for start in range(0, nq, step):
            qc = q[:, :, start:start + step]                              # (B, h, c, dh)
            a = torch.softmax(qc @ k.transpose(-2, -1) * scale, dim=-1)   # (B, h, c, Nk)
            received += a.sum(dim=2).mean(dim=1)                          # (B, Nk)
            if start == 0:
                first_row = a[:, :, 0].mean(dim=1)                        # (B, Nk)
            outs.append(F.dropout(a, p, self.training) @ v)               # (B, h, c, dh)
        o = torch.cat(outs, dim=2)  # (B, h, Nq, dh)
        return o, AttentionScores(received=received / nq, first_row=first_row)
