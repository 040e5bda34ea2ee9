"""Survival metrics: Harrell's C-index on continuous times, and fold summaries."""

from __future__ import annotations

import numpy as np
from lifelines.utils import concordance_index as lifelines_cindex

from ..errors import Harm3Error


def concordance_index(times, risk, events) -> float:
    """Harrell's C-index (lifelines): the fraction of comparable pairs whose higher risk had the
    earlier event. ``risk``: higher = worse (for CrossFusion, −ΣS). Ties in risk count ½."""
    times = np.asarray(times, dtype=float)
    risk = np.asarray(risk, dtype=float)
    events = np.asarray(events).astype(bool)
    if not (len(times) == len(risk) == len(events)):
        raise Harm3Error("times, risk and events must have the same length")
    if not np.all(np.isfinite(risk)):
        raise Harm3Error("risk scores contain NaN or infinity")
    if events.sum() == 0:
        raise Harm3Error("no events: the C-index is undefined")
    # lifelines ranks predicted *survival times*: a higher risk means a shorter time
    return float(lifelines_cindex(times, -risk, events))


def mean_sd(values) -> tuple:
    """(mean, sample standard deviation) of per-fold values (sd 0 for one value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
