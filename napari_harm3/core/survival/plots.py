"""Survival plots (matplotlib figures, no pyplot). Each takes an ``ax`` (made when None) and returns it."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _axes(ax):
    """``ax``, or the axes of a new bare figure (no pyplot: no global backend, nothing to close)."""
    return ax if ax is not None else Figure(figsize=(5, 4)).add_subplot()


def plot_km(result, ax=None, title: str | None = None):
    """Kaplan–Meier curves of a :class:`~.km.RiskGroupKM` with their 95 % bands and the log-rank p."""
    ax = _axes(ax)
    for curve, colour in ((result.low, "tab:blue"), (result.high, "tab:red")):
        ax.step(curve.times, curve.survival, where="post", color=colour, label=f"{curve.label} (n={curve.n})")
        ax.fill_between(curve.times, curve.lower, curve.upper, step="post", color=colour, alpha=0.15)
    ax.set_xlabel("time (months)")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or f"Predicted risk groups — log-rank p = {result.logrank_p:.3g}")
    ax.legend(loc="lower left")
    return ax


def plot_survival_curve(times, survival, ax=None, label: str | None = None, spread=None):
    """A model's S(t) step curve (from ``bins.survival_curve``); ``spread`` (lo, hi) shades a band."""
    ax = _axes(ax)
    times = np.asarray(times, dtype=float)
    line = ax.step(times, survival, where="post", label=label)[0]
    if spread is not None:
        ax.fill_between(times, spread[0], spread[1], step="post", alpha=0.2, color=line.get_color())
    ax.set_xlabel("time (months)")
    ax.set_ylabel("S(t)")
    ax.set_ylim(0, 1.02)
    if label:
        ax.legend()
    return ax


def plot_fold_cindex(cindices, ax=None, labels=None):
    """Bar chart of the C-index per fold with the mean as a line."""
    ax = _axes(ax)
    values = np.asarray(cindices, dtype=float)
    names = labels or [f"fold {k}" for k in range(len(values))]
    ax.bar(names, values, color="tab:gray")
    ax.axhline(values.mean(), color="k", linestyle="--", label=f"mean {values.mean():.3f}")
    ax.axhline(0.5, color="tab:red", linestyle=":", label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("C-index")
    ax.legend()
    return ax
