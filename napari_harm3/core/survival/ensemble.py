"""One slide through a CrossFusion fold ensemble: risk and S(t) in months, mean and spread.

Each fold model has its own survival bins (quartiles of its training fold), saved in the model
card as ``bin_edges_months`` (one list per fold, or one list shared by all) with
``max_follow_up_months``. Each fold's S is turned into a step curve against months with its own
edges, the curves are evaluated on the union of all edges, and the ensemble reports their mean
and min–max; risk = −ΣS per fold, mean ± sd over folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import Harm3Error
from .bins import survival_curve


@dataclass(frozen=True)
class SurvivalPrediction:
    risk_per_fold: np.ndarray      # (F,) −ΣS
    survival_per_fold: np.ndarray  # (F, n_bins)
    times: np.ndarray | None       # (T,) months, starts at 0; None when the bin edges are unknown
    curve_per_fold: np.ndarray     # (F, T) S(t) step values (per bin when times is None)
    hazards_per_fold: np.ndarray   # (F, n_bins)

    @property
    def risk(self) -> float:
        return float(self.risk_per_fold.mean())

    @property
    def risk_sd(self) -> float:
        return float(self.risk_per_fold.std(ddof=1)) if len(self.risk_per_fold) > 1 else 0.0

    @property
    def curve(self) -> np.ndarray:
        return self.curve_per_fold.mean(axis=0)

    @property
    def curve_range(self) -> tuple:
        return self.curve_per_fold.min(axis=0), self.curve_per_fold.max(axis=0)

    def to_dict(self) -> dict:
        low, high = self.curve_range
        return {
            "risk": self.risk, "risk_sd": self.risk_sd, "risk_per_fold": self.risk_per_fold.tolist(),
            "survival_per_fold": self.survival_per_fold.tolist(),
            "hazards_per_fold": self.hazards_per_fold.tolist(),
            "times_months": None if self.times is None else self.times.tolist(), "survival_mean": self.curve.tolist(),
            "survival_min": low.tolist(), "survival_max": high.tolist(),
        }


def _step_at(times, values, grid) -> np.ndarray:
    """Right-continuous step function through (times, values) evaluated on ``grid``."""
    index = np.searchsorted(times, grid, side="right") - 1
    return np.asarray(values)[np.clip(index, 0, len(values) - 1)]


def predict_slide(models, card, x5, x10, x20) -> SurvivalPrediction:
    """Run every fold model on one slide's bags ((N, D) tensors) and combine; ``card`` is the
    folder's :class:`~napari_harm3.core.models.card.ModelCard` (its per-fold bin edges)."""
    edges = card.fold_bin_edges()
    if edges is not None and len(edges) != len(models):
        raise Harm3Error(f"{card.name}: bin edges for {len(edges)} folds, {len(models)} models given")
    risks, survs, hazards, curves = [], [], [], []
    with torch.no_grad():
        for model in models:
            device = next(model.parameters()).device
            out = model.eval()(x5[None].to(device), x10[None].to(device), x20[None].to(device))
            risks.append(float(out.risk[0]))
            survs.append(out.survival[0].cpu().numpy())
            hazards.append(out.hazards[0].cpu().numpy())
    if edges is None:  # no months: S per bin only
        return SurvivalPrediction(risk_per_fold=np.asarray(risks), survival_per_fold=np.stack(survs), times=None,
                                  curve_per_fold=np.stack(survs), hazards_per_fold=np.stack(hazards))
    for s, (cuts, t_max) in zip(survs, edges):
        curves.append(survival_curve(s, cuts, t_max))
    grid = np.unique(np.concatenate([t for t, _ in curves]))
    per_fold = np.stack([_step_at(t, v, grid) for t, v in curves])
    return SurvivalPrediction(risk_per_fold=np.asarray(risks), survival_per_fold=np.stack(survs), times=grid,
                              curve_per_fold=per_fold, hazards_per_fold=np.stack(hazards))
