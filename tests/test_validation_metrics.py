"""External validation metrics against scikit-learn, lifelines, scikit-survival and published values."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3.core.cohort.validation import (harrell_cindex, risk_groups, stratified_resamples, validate_pcr,
                                                 validate_survival)
from napari_harm3.core.errors import Harm3Error

lifelines = pytest.importorskip("lifelines")


def hanley_mcneil_ratings():
    """Hanley & McNeil (Radiology 1982;143:29–36), Table 1: 5-point CT ratings of 58 normal and
    51 abnormal cases; published ROC area 0.893, standard error 0.032."""
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = np.arange(1, 6)
    p = np.concatenate([np.repeat(ratings, normal), np.repeat(ratings, abnormal)]) / 5.0
    y = np.r_[np.zeros(sum(normal)), np.ones(sum(abnormal))].astype(int)
    return y, p


def synthetic_pcr(n, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1.2, n))))
    return y, p


def synthetic_survival(n, seed):
    rng = np.random.default_rng(seed)
    risk = rng.normal(0, 1, n)
    event_time = rng.exponential(20 * np.exp(-0.8 * risk))
    censor = rng.uniform(5, 60, n)
    return np.minimum(event_time, censor), (event_time <= censor).astype(int), risk


def test_auc_reproduces_hanley_mcneil_and_agrees_with_sklearn_and_mann_whitney():
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    y, p = hanley_mcneil_ratings()
    result = validate_pcr(y, p)
    assert result.auc.estimate == pytest.approx(0.893, abs=5e-4)
    assert result.auc.estimate == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert result.auc.estimate == pytest.approx(mannwhitneyu(p[y == 1], p[y == 0]).statistic / (51 * 58), abs=1e-12)
    # the percentile interval is close to the published estimate ± 1.96 SE (0.830–0.956)
    assert result.auc.low < result.auc.estimate < result.auc.high
    assert 0.81 < result.auc.low < 0.85 and 0.93 < result.auc.high < 0.97
    assert result.auc.n_resamples == 2000 and (result.n, result.n_positive) == (109, 51)


def test_brier_calibration_and_roc_agree_with_sklearn():
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, roc_curve

    y, p = synthetic_pcr(150, seed=3)
    result = validate_pcr(y, p, n_resamples=300)
    assert result.brier.estimate == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert result.brier.low < result.brier.estimate < result.brier.high
    observed, predicted = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(result.calibration.observed, observed)
    np.testing.assert_allclose(result.calibration.mean_predicted, predicted)
    assert result.calibration.counts.sum() == 150 and len(result.calibration.counts) == len(observed)
    # the counts are the bins' sizes: observed rate × count = pCR cases per bin
    positives = result.calibration.observed * result.calibration.counts
    np.testing.assert_allclose(positives, np.round(positives), atol=1e-9)
    assert positives.sum() == pytest.approx(y.sum())
    fpr, tpr, _ = roc_curve(y, p)
    np.testing.assert_array_equal(result.roc.fpr, fpr)
    inside = np.interp(result.roc.grid, fpr, tpr)
    assert np.mean((result.roc.tpr_low <= inside + 1e-9) & (inside <= result.roc.tpr_high + 1e-9)) > 0.95


def test_stratified_resamples_keep_the_class_counts_and_are_seeded():
    y = np.r_[np.zeros(7), np.ones(3)].astype(int)
    index = stratified_resamples(y, 50, seed=1)
    assert index.shape == (50, 10) and np.all(y[index].sum(axis=1) == 3)
    np.testing.assert_array_equal(index, stratified_resamples(y, 50, seed=1))
    assert not np.array_equal(index, stratified_resamples(y, 50, seed=2))


def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_n():
    widths = {}
    for n in (60, 600):
        y, p = synthetic_pcr(n, seed=n)
        auc = validate_pcr(y, p, n_resamples=400, seed=0).auc
        times, events, risk = synthetic_survival(n, seed=n)
        cindex = validate_survival(times, events, risk, n_resamples=300, seed=0).cindex
        for interval in (auc, cindex):
            assert interval.low <= interval.estimate <= interval.high
        widths[n] = (auc.high - auc.low, cindex.high - cindex.low)
    # ten times the cases: about a third of the width (1 / sqrt(10))
    assert widths[600][0] < 0.5 * widths[60][0] and widths[600][1] < 0.5 * widths[60][1]


def test_cindex_reproduces_rossi_cox_concordance_and_agrees_with_scikit_survival():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    sksurv_metrics = pytest.importorskip("sksurv.metrics")
    rossi = load_rossi()
    cox = CoxPHFitter().fit(rossi, "week", "arrest")
    risk = cox.predict_partial_hazard(rossi).to_numpy()
    ours = harrell_cindex(rossi["week"], rossi["arrest"], risk)
    assert round(ours, 2) == 0.64  # lifelines' documentation of this model: "Concordance = 0.64"
    assert ours == pytest.approx(cox.concordance_index_, abs=1e-12)
    theirs = sksurv_metrics.concordance_index_censored(rossi["arrest"].to_numpy().astype(bool),
                                                       rossi["week"].to_numpy().astype(float), risk)[0]
    assert ours == pytest.approx(theirs, abs=1e-12)
    result = validate_survival(rossi["week"], rossi["arrest"], risk, threshold=float(np.median(risk)), n_resamples=200)
    assert result.cindex.estimate == ours and result.cindex.low < ours < result.cindex.high
    assert (result.n, result.n_events) == (432, 114)


def test_logrank_and_km_reproduce_waltons_and_agree_with_scikit_survival():
    from lifelines.datasets import load_waltons

    compare = pytest.importorskip("sksurv.compare")
    nonparametric = pytest.importorskip("sksurv.nonparametric")
    waltons = load_waltons()
    treated = (waltons["group"] == "miR-137").to_numpy()
    times, events = waltons["T"].to_numpy(float), waltons["E"].to_numpy(int)
    groups = risk_groups(times, events, treated.astype(float), threshold=1.0)  # miR-137 = "high"
    # lifelines' documentation (survival analysis intro, logrank_test on waltons): 122.25, -log2(p) 91.99
    assert groups.logrank_statistic == pytest.approx(122.25, abs=5e-3)
    assert -np.log2(groups.logrank_p) == pytest.approx(91.99, abs=5e-3)
    structured = np.array(list(zip(events.astype(bool), times)), dtype=[("event", bool), ("time", float)])
    chisq, p_value = compare.compare_survival(structured, treated.astype(int))
    assert groups.logrank_statistic == pytest.approx(chisq, rel=1e-9) and groups.logrank_p == pytest.approx(p_value, rel=1e-6)
    assert (groups.high.n, groups.low.n) == (int(treated.sum()), int((~treated).sum()))
    for curve, members in ((groups.high, treated), (groups.low, ~treated)):
        t, s = nonparametric.kaplan_meier_estimator(events[members].astype(bool), times[members])
        np.testing.assert_allclose(np.interp(t, curve.times, curve.survival), s, atol=1e-12)


def test_risk_groups_use_the_predictors_rule_risk_at_threshold_is_high():
    times, events, risk = np.array([5.0, 9.0, 14.0, 20.0]), np.array([1, 1, 0, 1]), np.array([-2.0, -2.5, -3.0, -2.5])
    groups = risk_groups(times, events, risk, threshold=-2.5)  # core/predict/survival.py: risk >= threshold
    assert (groups.high.n, groups.low.n) == (3, 1)
    with pytest.raises(Harm3Error, match="all 4 cases are in the high-risk group"):
        risk_groups(times, events, risk, threshold=-3.0)


def test_undefined_metrics_are_one_line_errors_or_notes():
    with pytest.raises(Harm3Error, match="all 3 labelled cases are pCR"):
        validate_pcr([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(Harm3Error, match="no event"):
        validate_survival([3.0, 4.0], [0, 0], [0.1, 0.2])
    times, events, risk = synthetic_survival(30, seed=1)
    result = validate_survival(times, events, risk, threshold=None, n_resamples=50)
    assert result.groups is None and "no training-cohort risk threshold" in result.groups_note
