"""Multi-scale attention heatmaps of CrossFusion, as data.

Per-patch scores, every one averaged over heads (and over fold models for an ensemble):

``x5_cross``    coarse cross-attention, mean over the N10 queries → one score per 5× patch
``x20_cross``   fine cross-attention, mean over the N10 queries → one score per 20× patch
``x10_coarse``, ``x10_source``, ``x10_fine``   each branch's Pad-Transformer self-attention
                (attention each token receives, mean over queries and the blocks), padding
                tokens folded back onto the patches they repeat → one score per 10× patch
``x10_final``   the final transformer's class-token row (last block), padding folded → per 10× patch

Scores come from the model's ``attention="scores"`` mode, which is computed in chunks over the
queries, so no N × N matrix is held. Each map is percentile-normalised to [0, 1] and painted at
the patches' level-0 coordinates on a low-resolution raster with its level-0 scale and
translation (napari's pixel-centre convention: multiply both by µm/px for the layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Harm3Error

MAPS = {"x5_cross": 5, "x20_cross": 20, "x10_coarse": 10, "x10_source": 10, "x10_fine": 10, "x10_final": 10}


@dataclass(frozen=True)
class HeatmapLayer:
    name: str
    magnification: int
    data: np.ndarray        # (rows, cols) float32 in [0, 1]; 0 where there is no patch
    scale: tuple            # (row, col) level-0 pixels per raster pixel
    translate: tuple        # (row, col) level-0 position of raster pixel (0, 0)'s centre


@dataclass(frozen=True)
class TopPatch:
    x: int                  # level-0 top-left of the patch
    y: int
    score: float
    index: int              # position in the bag


@dataclass(frozen=True)
class CrossFusionExplanation:
    scores: dict            # name → (N,) float in [0, 1], bag order
    layers: dict            # name → HeatmapLayer
    top: dict               # name → tuple of TopPatch, best first


def fold_padding(scores: np.ndarray, n: int) -> np.ndarray:
    """Per-token scores over the padded grid (M ≥ n) → per patch: token n + j repeats patch j."""
    scores = np.asarray(scores, dtype=np.float64)
    out = scores[:n].copy()
    extra = scores[n:]
    out[:len(extra)] += extra
    return out


def percentile_normalise(scores, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map the [low, high] percentiles to [0, 1], clipped; a constant map becomes 0.5."""
    scores = np.asarray(scores, dtype=np.float64)
    lo, hi = np.percentile(scores, [low, high])
    if not hi > lo:
        return np.full(scores.shape, 0.5, dtype=np.float32)
    return np.clip((scores - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def attention_scores(model, x5, x10, x20) -> dict:
    """Raw per-patch scores (see the module docstring) from one model; bags are (N, D) tensors."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        out = model.eval()(x5[None].to(device), x10[None].to(device), x20[None].to(device), attention="scores")
    att = out.attention
    n10 = att.n10
    scores = {}
    if "coarse" in att.cross:
        scores["x5_cross"] = att.cross["coarse"].received[0].cpu().numpy()
        scores["x20_cross"] = att.cross["fine"].received[0].cpu().numpy()
    for scale, blocks in att.branch.items():
        received = torch.stack([b.received[0] for b in blocks]).mean(0).cpu().numpy()  # (M,)
        scores[f"x10_{scale}"] = fold_padding(received, n10)
    scores["x10_final"] = fold_padding(att.final[-1].first_row[0, 1:].cpu().numpy(), n10)  # cls row without itself
    return scores


def patch_step(coords) -> int:
    """Grid step of level-0 patch coordinates: the smallest positive gap between distinct x or y."""
    coords = np.asarray(coords)
    gaps = []
    for axis in (0, 1):
        values = np.unique(coords[:, axis])
        if len(values) > 1:
            gaps.append(np.diff(values).min())
    if not gaps:
        raise Harm3Error("cannot infer the patch size from a single patch position; give the level-0 patch size")
    return int(min(gaps))


def paint(name: str, magnification: int, coords, scores, patch_size_level0: int, oversample: int = 4) -> HeatmapLayer:
    """Paint per-patch scores on a raster of ``patch_size_level0 / oversample`` level-0 px per pixel
    (oversampling keeps per-contour grids with different origins in place); overlaps keep the max."""
    coords = np.asarray(coords, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if len(coords) != len(scores):
        raise Harm3Error(f"{name}: {len(scores)} scores for {len(coords)} patch coordinates")
    pixel = max(1.0, patch_size_level0 / oversample)
    x0, y0 = coords[:, 0].min(), coords[:, 1].min()
    span = int(np.ceil(patch_size_level0 / pixel))
    cols = int(np.ceil((coords[:, 0].max() - x0) / pixel)) + span
    rows = int(np.ceil((coords[:, 1].max() - y0) / pixel)) + span
    raster = np.zeros((rows, cols), dtype=np.float32)
    c0 = np.floor((coords[:, 0] - x0) / pixel).astype(int)
    r0 = np.floor((coords[:, 1] - y0) / pixel).astype(int)
    for dr in range(span):
        for dc in range(span):
            np.maximum.at(raster, (r0 + dr, c0 + dc), scores)
    half = pixel / 2 - 0.5
    return HeatmapLayer(name=name, magnification=magnification, data=raster, scale=(pixel, pixel),
                        translate=(float(y0 + half), float(x0 + half)))


def top_patches(coords, scores, k: int = 10) -> tuple:
    order = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return tuple(TopPatch(x=int(coords[i][0]), y=int(coords[i][1]), score=float(scores[i]), index=int(i)) for i in order)


def explain_slide(models, x5, x10, x20, coords: dict, patch_size_level0: dict | None = None,
                  top_k: int = 10) -> CrossFusionExplanation:
    """Heatmaps of one slide. ``models``: one model or a fold ensemble (normalised maps averaged,
    then normalised again); ``coords``: {5|10|20: (N, 2) level-0 (x, y)} in bag order;
    ``patch_size_level0``: {mag: level-0 patch width} (inferred from the coordinate grid when absent)."""
    models = models if isinstance(models, (list, tuple)) else [models]
    sizes = dict(patch_size_level0 or {})
    for mag, n in ((5, len(x5)), (10, len(x10)), (20, len(x20))):
        if mag not in coords or len(coords[mag]) != n:
            raise Harm3Error(f"{mag}x: coordinates are missing or do not match the {n} features")
    per_model = [attention_scores(m, x5, x10, x20) for m in models]
    scores = {name: percentile_normalise(np.mean([percentile_normalise(s[name]) for s in per_model], axis=0))
              for name in per_model[0]}
    layers, top = {}, {}
    for name, values in scores.items():
        mag = MAPS[name]
        size = sizes.get(mag) or patch_step(coords[mag])
        layers[name] = paint(name, mag, coords[mag], values, size)
        top[name] = top_patches(coords[mag], values, top_k)
    return CrossFusionExplanation(scores=scores, layers=layers, top=top)
