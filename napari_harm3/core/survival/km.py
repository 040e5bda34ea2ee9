"""Kaplan–Meier curves of predicted high- and low-risk groups, split at the median risk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test

from ..errors import Harm3Error


@dataclass(frozen=True)
class KMCurve:
    label: str
    n: int
    times: np.ndarray     # event-time grid of the step curve (months)
    survival: np.ndarray  # KM estimate at ``times``
    lower: np.ndarray     # 95 % confidence band
    upper: np.ndarray


@dataclass(frozen=True)
class RiskGroupKM:
    threshold: float      # median risk; risk > threshold is "high"
    high: KMCurve
    low: KMCurve
    logrank_p: float
    logrank_statistic: float

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "logrank_p": self.logrank_p,
                "logrank_statistic": self.logrank_statistic,
                "n_high": self.high.n, "n_low": self.low.n}


def _curve(label, times, events) -> KMCurve:
    kmf = KaplanMeierFitter(label=label).fit(times, events)
    ci = kmf.confidence_interval_survival_function_
    return KMCurve(label=label, n=int(len(times)), times=kmf.survival_function_.index.to_numpy(float),
                   survival=kmf.survival_function_.iloc[:, 0].to_numpy(float),
                   lower=ci.iloc[:, 0].to_numpy(float), upper=ci.iloc[:, 1].to_numpy(float))


def km_by_risk(times, events, risk, threshold: float | None = None) -> RiskGroupKM:
    """Split patients at the median predicted risk (or ``threshold``); KM per group and log-rank p."""
    times = np.asarray(times, dtype=float)
    events = np.asarray(events).astype(bool)
    risk = np.asarray(risk, dtype=float)
    threshold = float(np.median(risk)) if threshold is None else float(threshold)
    high = risk > threshold
    if high.all() or not high.any():
        raise Harm3Error("all patients fall in one risk group; cannot compare high and low risk")
    test = logrank_test(times[high], times[~high], events[high], events[~high])
    return RiskGroupKM(threshold=threshold, high=_curve("high risk", times[high], events[high]),
                       low=_curve("low risk", times[~high], events[~high]),
                       logrank_p=float(test.p_value), logrank_statistic=float(test.test_statistic))
