"""Multi-scale attention heatmaps of CrossFusion, as data.

Per-patch scores, every one averaged over heads (and over fold models for an ensemble):

``x5_cross``    coarse cross-attention, mean over the N10 queries → one score per 5× patch
``x20_cross``   fine cross-attention, mean over the N10 queries → one score per 20× patch
``x10_coarse``, ``x10_source``, ``x10_fine``   each branch's Pad-Transformer self-attention
                (attention each token receives, mean over queries and the blocks), padding
                tokens folded back onto the patches they repeat → one score per 10× patch
``x10_final``   the final transformer's class-token row (last block), padding folded → per 10× patch

Scores come from the model's ``attention="scores"`` mode, which is computed in chunks over the
queries, so no N × N matrix is held. Each map is percentile-normalised to [0, 1] and returned as
:class:`~.patch_scores.PatchScores` (level-0 corners, the patches' recorded footprint); the one
painter (:mod:`.heatmap`) turns them into rasters for the viewer and the report.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import Harm3Error
from .patch_scores import PatchScores

MAPS = {"x5_cross": 5, "x20_cross": 20, "x10_coarse": 10, "x10_source": 10, "x10_fine": 10, "x10_final": 10}


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


def explain_slide(models, x5, x10, x20, coords: dict, footprints: dict) -> dict:
    """{map name: PatchScores} of one slide (names: :data:`MAPS`). ``models``: one model or a fold
    ensemble (normalised maps averaged, then normalised again); ``coords``: {5|10|20: (N, 2)
    level-0 (x, y)} in bag order; ``footprints``: {5|10|20: the patches' side in level-0 px}."""
    models = models if isinstance(models, (list, tuple)) else [models]
    for mag, n in ((5, len(x5)), (10, len(x10)), (20, len(x20))):
        if mag not in coords or len(coords[mag]) != n:
            raise Harm3Error(f"{mag}x: coordinates are missing or do not match the {n} features")
        if not footprints.get(mag):
            raise Harm3Error(f"{mag}x: the patches' level-0 footprint is not recorded; extract the features again")
    per_model = [attention_scores(m, x5, x10, x20) for m in models]
    out = {}
    for name in per_model[0]:
        values = percentile_normalise(np.mean([percentile_normalise(s[name]) for s in per_model], axis=0))
        mag = MAPS[name]
        out[name] = PatchScores(key=name, label=f"CrossFusion {name}", coords=coords[mag], scores=values,
                                footprint=int(footprints[mag]), magnification=mag)
    return out
