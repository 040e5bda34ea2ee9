"""External validation of the models on a labelled cohort (scikit-learn and lifelines).

pCR (cases with a p(pCR) and a pCR label):

- **AUC** — ``sklearn.metrics.roc_auc_score`` (per resample ``auc(*roc_curve(...))``, the same
  number), with a 95 % percentile interval from a
  **stratified bootstrap**: each of :data:`N_RESAMPLES` resamples draws the pCR cases and the
  non-pCR cases with replacement separately (so every resample has both classes and the
  cohort's prevalence), from ``numpy.random.default_rng(seed)`` (seed 0 by default);
- **ROC** — ``sklearn.metrics.roc_curve``; its band is the pointwise 2.5–97.5 percentiles of the
  resamples' sensitivity on a fixed grid of 1 − specificity;
- **Brier score** — ``sklearn.metrics.brier_score_loss`` (same resamples for its interval);
- **calibration** — ``sklearn.calibration.calibration_curve`` with :data:`CALIBRATION_BINS`
  equal-width bins of predicted probability (empty bins left out), with each bin's case count.

Survival (cases with a risk, a follow-up time and an event flag):

- **Harrell's C-index** — ``lifelines.utils.concordance_index`` of the risk (higher = worse,
  ties count ½), with a percentile interval from a bootstrap stratified by event status
  (resamples without a comparable pair are dropped and the count kept);
- **Kaplan–Meier by predicted risk group** — groups at the model card's training-cohort
  median risk, ``risk >= threshold`` is "high" (the rule of ``core/predict/survival.py``),
  ``lifelines.KaplanMeierFitter`` per group and the log-rank test
  (``lifelines.statistics.logrank_test``) between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc, brier_score_loss, roc_auc_score, roc_curve

from ..errors import Harm3Error
from ..survival.km import KMCurve, RiskGroupKM

N_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
CALIBRATION_BINS = 10
ROC_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    n_resamples: int          # resamples that gave a value
    confidence: float = CONFIDENCE

    def text(self, digits: int = 3) -> str:
        """``0.812 (95 % CI 0.701–0.905)``."""
        return (f"{self.estimate:.{digits}f} ({self.confidence * 100:.0f} % CI "
                f"{self.low:.{digits}f}–{self.high:.{digits}f})")


@dataclass(frozen=True, eq=False)
class Calibration:
    mean_predicted: np.ndarray   # per non-empty bin
    observed: np.ndarray         # observed pCR rate per bin
    counts: np.ndarray           # cases per bin
    n_bins: int


@dataclass(frozen=True, eq=False)
class RocCurve:
    fpr: np.ndarray
    tpr: np.ndarray
    grid: np.ndarray             # 1 − specificity where the band is given
    tpr_low: np.ndarray
    tpr_high: np.ndarray


@dataclass(frozen=True, eq=False)
class PcrValidation:
    n: int
    n_positive: int
    auc: Interval
    brier: Interval
    roc: RocCurve
    calibration: Calibration


@dataclass(frozen=True, eq=False)
class SurvivalValidation:
    n: int
    n_events: int
    cindex: Interval
    threshold: float | None
    groups: RiskGroupKM | None    # None when the threshold is unknown or one group is empty
    groups_note: str = ""


def _as_arrays(*arrays):
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    if len({a.size for a in out}) != 1:
        raise Harm3Error(f"arrays of different lengths: {', '.join(str(a.size) for a in out)}")
    return out


def percentile_interval(estimate: float, values, confidence: float = CONFIDENCE) -> Interval:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(float(estimate), float("nan"), float("nan"), 0, confidence)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), int(values.size), confidence)


def stratified_resamples(strata, n_resamples: int = N_RESAMPLES, seed: int = SEED):
    """(n_resamples, n) indices: each stratum (value of ``strata``) drawn with replacement on its own."""
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    parts = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        parts.append(members[rng.integers(0, members.size, size=(n_resamples, members.size))])
    return np.concatenate(parts, axis=1)


def validate_pcr(y, p, n_resamples: int = N_RESAMPLES, seed: int = SEED, n_bins: int = CALIBRATION_BINS,
                 confidence: float = CONFIDENCE) -> PcrValidation:
    """AUC and Brier score with stratified-bootstrap intervals, ROC with its band, calibration."""

    y, p = _as_arrays(y, p)
    y = y.astype(int)
    if not set(np.unique(y)) <= {0, 1}:
        raise Harm3Error("pCR labels must be 0 or 1")
    if y.min() == y.max():
        raise Harm3Error(f"all {y.size} labelled cases are {'pCR' if y[0] else 'non-pCR'}: the AUC is undefined")
    resamples = stratified_resamples(y, n_resamples, seed)
    aucs, bands = [], []
    for index in resamples:
        fpr, tpr, _ = roc_curve(y[index], p[index])
        aucs.append(auc(fpr, tpr))  # = roc_auc_score, without its input checks (3x faster)
        bands.append(np.interp(ROC_GRID, fpr, tpr))
    briers = np.mean((p[resamples] - y[resamples]) ** 2, axis=1)  # = brier_score_loss, all resamples at once
    fpr, tpr, _ = roc_curve(y, p)
    band = np.percentile(np.asarray(bands), [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100], axis=0)
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)  # calibration_curve's binning
    return PcrValidation(
        n=int(y.size), n_positive=int(y.sum()),
        auc=percentile_interval(roc_auc_score(y, p), aucs, confidence),
        brier=percentile_interval(brier_score_loss(y, p, pos_label=1), briers, confidence),
        roc=RocCurve(fpr=fpr, tpr=tpr, grid=ROC_GRID, tpr_low=band[0], tpr_high=band[1]),
        calibration=Calibration(mean_predicted=predicted, observed=observed, counts=counts[counts > 0], n_bins=n_bins))


def harrell_cindex(times, events, risk) -> float:
    """Harrell's C-index of ``risk`` (higher = earlier event) with lifelines; NaN without a comparable pair."""

    try:
        return float(concordance_index(times, -np.asarray(risk, dtype=float), events))
    except ZeroDivisionError:  # lifelines: "No admissable pairs in the dataset"
        return float("nan")


def _km_curve(label: str, times, events) -> KMCurve:

    kmf = KaplanMeierFitter(label=label).fit(times, events)
    band = kmf.confidence_interval_survival_function_
    return KMCurve(label=label, n=int(len(times)), times=kmf.survival_function_.index.to_numpy(float),
                   survival=kmf.survival_function_.iloc[:, 0].to_numpy(float),
                   lower=band.iloc[:, 0].to_numpy(float), upper=band.iloc[:, 1].to_numpy(float))


def risk_groups(times, events, risk, threshold: float) -> RiskGroupKM:
    """KM of the predicted high-risk (``risk >= threshold``) and low-risk groups, log-rank p."""

    times, events, risk = _as_arrays(times, events, risk)
    high = risk >= float(threshold)
    if high.all() or not high.any():
        raise Harm3Error(f"all {risk.size} cases are in the {'high' if high.all() else 'low'}-risk group "
                         f"(threshold {float(threshold):.4g}); no log-rank test")
    test = logrank_test(times[high], times[~high], events[high], events[~high])
    return RiskGroupKM(threshold=float(threshold), high=_km_curve("high risk", times[high], events[high]),
                       low=_km_curve("low risk", times[~high], events[~high]),
                       logrank_p=float(test.p_value), logrank_statistic=float(test.test_statistic))


def validate_survival(times, events, risk, threshold: float | None = None, n_resamples: int = N_RESAMPLES,
                      seed: int = SEED, confidence: float = CONFIDENCE) -> SurvivalValidation:
    """C-index with a bootstrap interval; KM by risk group and log-rank p when ``threshold`` is given."""
    times, events, risk = _as_arrays(times, events, risk)
    events = events.astype(int)
    if events.sum() == 0:
        raise Harm3Error(f"no event among the {events.size} cases with follow-up: the C-index is undefined")
    estimate = harrell_cindex(times, events, risk)
    if not np.isfinite(estimate):
        raise Harm3Error("no comparable pair of cases (an event before another case's follow-up): no C-index")
    values = [harrell_cindex(times[i], events[i], risk[i]) for i in stratified_resamples(events, n_resamples, seed)]
    groups, note = None, ""
    if threshold is None:
        note = "the survival model's card has no training-cohort risk threshold: no risk groups"
    else:
        try:
            groups = risk_groups(times, events, risk, threshold)
        except Harm3Error as exc:
            note = str(exc)
    return SurvivalValidation(n=int(events.size), n_events=int(events.sum()),
                              cindex=percentile_interval(estimate, values, confidence),
                              threshold=None if threshold is None else float(threshold), groups=groups,
                              groups_note=note)
