"""Discrete survival bins: quartiles of the uncensored times of the training fold.

``cuts`` are the n_bins − 1 interior edges in months; bin k holds times in [cut_{k-1}, cut_k)
(bin 0 from 0, the last bin open-ended). The cuts are computed on the training fold only and
saved with the model, so that a model's survival S (one value per bin) can be drawn against
months: S_k is the probability of surviving past the end of bin k.
"""

from __future__ import annotations

import numpy as np

from ..errors import Harm3Error


def quantile_cuts(times, events, n_bins: int = 4) -> np.ndarray:
    """Interior bin edges: the 1/n, 2/n, … quantiles of the times with an event."""
    times = np.asarray(times, dtype=float)
    events = np.asarray(events).astype(bool)
    observed = times[events]
    if observed.size < n_bins:
        raise Harm3Error(f"only {observed.size} uncensored times; need at least {n_bins} to make {n_bins} survival bins")
    cuts = np.quantile(observed, np.arange(1, n_bins) / n_bins)
    if np.any(np.diff(cuts) <= 0):
        raise Harm3Error(f"survival bin edges are not increasing ({cuts.tolist()}); too many tied event times for {n_bins} bins")
    return cuts


def assign_bins(times, cuts) -> np.ndarray:
    """Bin index of each time (0 … len(cuts)): number of cuts at or below it."""
    return np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(times, dtype=float), side="right")


def survival_curve(survival, cuts, t_max: float | None = None) -> tuple:
    """Step curve of S(t) in months from per-bin survival: (times, S), S(0) = 1.

    ``survival`` (n_bins,) or (B, n_bins). The value S_k holds from the end of bin k; the last
    bin has no end, so it is placed at ``t_max`` (e.g. the longest follow-up in training)
    when given, and left out otherwise.
    """
    s = np.atleast_2d(np.asarray(survival, dtype=float))
    cuts = np.asarray(cuts, dtype=float)
    if s.shape[1] != cuts.size + 1:
        raise Harm3Error(f"{s.shape[1]} survival bins do not match {cuts.size} bin edges")
    times = [0.0, *cuts.tolist()]
    values = [np.ones(len(s)), *[s[:, k] for k in range(cuts.size)]]
    if t_max is not None and t_max > cuts[-1]:
        times.append(float(t_max))
        values.append(s[:, -1])
    curve = np.stack(values, axis=1)
    return np.asarray(times), (curve[0] if np.ndim(survival) == 1 else curve)
