"""Survival metrics, loss, bins, Kaplan–Meier and plots, checked against published values and libraries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.survival.bins import assign_bins, quantile_cuts, survival_curve
from napari_harm3.core.survival.km import km_by_risk
from napari_harm3.core.survival.loss import nll_survival_loss
from napari_harm3.core.survival.metrics import concordance_index, mean_sd


def test_cindex_equals_scikit_survival_with_ties_and_censoring():
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(3)
    times = np.round(rng.exponential(30, 200))            # tied times
    events = rng.random(200) < 0.6
    risk = np.round(rng.normal(size=200) - times / 40, 1)  # tied, informative risks
    ours = concordance_index(times, risk, events)
    theirs = concordance_index_censored(events, times, risk)[0]
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert 0.5 < ours < 1.0


def test_cindex_on_rossi_with_a_cox_model_is_the_published_value():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    cox = CoxPHFitter().fit(rossi, "week", "arrest")
    risk = cox.predict_partial_hazard(rossi).to_numpy()
    assert concordance_index(rossi["week"], risk, rossi["arrest"]) == pytest.approx(0.640329, abs=1e-6)


def test_cindex_rejects_no_events_and_nan():
    with pytest.raises(Harm3Error):
        concordance_index([1, 2], [0.1, 0.2], [0, 0])
    with pytest.raises(Harm3Error):
        concordance_index([1, 2], [np.nan, 0.2], [1, 1])
    assert mean_sd([0.6, 0.8]) == pytest.approx((0.7, np.sqrt(0.02)))


def test_loss_matches_a_hand_computation():
    hazards = torch.tensor([[0.2, 0.5, 0.4, 0.9], [0.1, 0.3, 0.6, 0.5]])
    s = torch.cumprod(1 - hazards, 1)
    # patient 0: event in bin 2; patient 1: censored in bin 1
    event_term = -(torch.log(s[0, 1]) + torch.log(hazards[0, 2]))
    censored_term = -torch.log(s[1, 1])
    alpha = 0.2
    expected = ((1 - alpha) * event_term + alpha * event_term + (1 - alpha) * censored_term) / 2
    got = nll_survival_loss(hazards, torch.tensor([2, 1]), torch.tensor([0.0, 1.0]), alpha=alpha)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_is_minimised_at_the_discrete_hazards():
    """With no censoring the NLL is minimised by the empirical conditional hazards of the bins:
    its gradient vanishes there and any step away increases it."""
    counts = np.array([40, 30, 20, 10])
    bins = torch.as_tensor(np.repeat(np.arange(4), counts))
    at_risk = counts[::-1].cumsum()[::-1]
    best = torch.tensor(counts / at_risk, dtype=torch.float64).clamp(max=1 - 1e-9)  # 0.4, 0.5, 0.667, ~1

    def loss_at(logits):
        hazards = torch.sigmoid(logits).expand(len(bins), 4)
        return nll_survival_loss(hazards, bins, torch.zeros(len(bins)), alpha=0.2, eps=1e-12)

    logits = torch.logit(best).clone().requires_grad_(True)
    loss = loss_at(logits)
    loss.backward()
    assert torch.allclose(logits.grad[:3], torch.zeros(3, dtype=torch.float64), atol=1e-6)
    for k in range(3):
        for step in (-0.2, 0.2):
            moved = torch.logit(best).clone()
            moved[k] += step
            assert loss_at(moved) > loss


def test_bins_use_uncensored_times_only():
    times = np.array([1, 2, 3, 4, 5, 6, 7, 8, 100, 200, 300])
    events = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    cuts = quantile_cuts(times, events, 4)
    assert np.allclose(cuts, np.quantile(np.arange(1, 9), [0.25, 0.5, 0.75]))
    assert assign_bins([0.5, cuts[0], 4.6, 1000], cuts).tolist() == [0, 1, 2, 3]
    with pytest.raises(Harm3Error):
        quantile_cuts([1, 2, 3], [1, 0, 1], 4)


def test_survival_curve_against_months():
    t, s = survival_curve([0.9, 0.7, 0.4, 0.2], [10, 20, 30], t_max=60)
    assert t.tolist() == [0, 10, 20, 30, 60]
    assert s.tolist() == [1, 0.9, 0.7, 0.4, 0.2]
    t, s = survival_curve(np.array([[0.9, 0.7, 0.4, 0.2]] * 2), [10, 20, 30])
    assert s.shape == (2, 4)


def test_km_by_risk_hand_example():
    times = np.array([1.0, 2.0, 3.0, 4.0])
    events = np.array([1, 1, 1, 1])
    result = km_by_risk(times, events, risk=[4.0, 3.0, 2.0, 1.0])  # median 2.5 → high = first two
    assert result.high.n == 2 and result.low.n == 2
    assert np.interp(1.0, result.high.times, result.high.survival) == pytest.approx(0.5)
    assert result.high.survival[-1] == pytest.approx(0.0) and result.low.survival[-1] == pytest.approx(0.0)
    assert 0 < result.logrank_p < 1
    with pytest.raises(Harm3Error):
        km_by_risk(times, events, risk=[1, 1, 1, 1])


def test_km_on_rossi_separates_cox_risk_groups():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    risk = CoxPHFitter().fit(rossi, "week", "arrest").predict_partial_hazard(rossi).to_numpy()
    result = km_by_risk(rossi["week"], rossi["arrest"], risk)
    assert result.logrank_p < 1e-3
    assert result.high.survival[-1] < result.low.survival[-1]


def test_plots_take_an_axis_and_return_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_harm3.core.survival.plots import plot_fold_cindex, plot_km, plot_survival_curve

    fig, axes = plt.subplots(1, 3)
    result = km_by_risk(np.arange(1.0, 9.0), np.ones(8), np.arange(8.0))
    assert plot_km(result, ax=axes[0]) is axes[0]
    t, s = survival_curve([0.9, 0.7, 0.4, 0.2], [10, 20, 30], 50)
    assert plot_survival_curve(t, s, ax=axes[1], label="slide", spread=(s - 0.05, s + 0.05)) is axes[1]
    assert plot_fold_cindex([0.7, 0.8], ax=axes[2]) is axes[2]
    assert len(axes[0].lines) == 2
    plt.close(fig)
