"""Plots of a cohort's external validation (matplotlib). Each takes an ``ax`` (made when None)
and returns it."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..survival.plots import plot_km
from .validation import Calibration, Interval, RocCurve


def _axes(ax):
    if ax is None:
        ax = Figure(figsize=(5, 4)).add_subplot()
    return ax


def plot_roc_interval(roc: RocCurve, auc: Interval, ax=None, title: str = "ROC, pCR"):
    """The cohort's ROC curve with its pointwise bootstrap band and the AUC with its interval."""
    ax = _axes(ax)
    ax.fill_between(roc.grid, roc.tpr_low, roc.tpr_high, step=None, color="tab:blue", alpha=0.2,
                    label=f"{auc.confidence * 100:.0f} % bootstrap band")
    ax.plot(roc.fpr, roc.tpr, color="tab:blue", lw=1.8, label=f"AUC {auc.text(2)}")
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="chance")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_calibration_bins(calibration: Calibration, brier: Interval | None = None, ax=None,
                          title: str = "Calibration, pCR"):
    """Observed pCR rate against mean predicted probability per bin, marker area ∝ cases in the bin."""
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    counts = np.asarray(calibration.counts, dtype=float)
    sizes = 20 + 180 * counts / counts.max() if counts.size else 20
    ax.plot(calibration.mean_predicted, calibration.observed, color="tab:orange", lw=1.2)
    ax.scatter(calibration.mean_predicted, calibration.observed, s=sizes, color="tab:orange", zorder=3,
               label=f"model ({calibration.n_bins} equal-width bins)")
    for x, y, n in zip(calibration.mean_predicted, calibration.observed, counts):
        ax.annotate(f"{int(n)}", (x, y), textcoords="offset points", xytext=(5, -10), fontsize="x-small")
    ax.set_xlabel("predicted probability of pCR")
    ax.set_ylabel("observed pCR rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title if brier is None else f"{title} — Brier {brier.text(3)}", fontsize="medium")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_km_groups(groups, ax=None):
    """Kaplan–Meier of the predicted risk groups (``risk >= threshold`` is high) with the log-rank p."""
    ax = _axes(ax)
    plot_km(groups, ax=ax, title=f"Predicted risk groups (risk ≥ {groups.threshold:.3g} is high) — "
                                 f"log-rank p = {groups.logrank_p:.3g}")
    ax.title.set_fontsize("medium")
    return ax
