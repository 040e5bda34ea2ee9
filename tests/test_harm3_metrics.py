"""Classification metrics of the pCR model against hand-computed values."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from napari_harm3.core.train.classification_metrics import (binary_metrics, plot_calibration, plot_roc,  # noqa: E402
                                                            summarise, youden_threshold)


def test_binary_metrics_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.3, 0.55, 0.1, 0.2, 0.8])
    m = binary_metrics(y, p, 0.5)
    # predicted positive: 0.9, 0.6, 0.55, 0.8 → TP 3, FP 1, FN 1, TN 3
    assert m["sensitivity"] == pytest.approx(3 / 4) and m["specificity"] == pytest.approx(3 / 4)
    assert m["accuracy"] == pytest.approx(6 / 8) and m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # AUC: fraction of (pos, neg) pairs ranked correctly = 15/16
    assert m["auc"] == pytest.approx(15 / 16)
    t = youden_threshold(y, p)
    assert binary_metrics(y, p, t)["sensitivity"] + binary_metrics(y, p, t)["specificity"] >= 1.5 + 1e-9
    assert np.isnan(binary_metrics([1, 1], [0.2, 0.9])["auc"])


def test_summary_and_plots():
    s = summarise([{"auc": 0.8}, {"auc": 0.9}, {"auc": float("nan")}], keys=("auc",))
    assert s["auc"]["mean"] == pytest.approx(0.85) and s["auc"]["sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = np.clip(y * 0.4 + rng.random(40) * 0.6, 0, 1)
    ax = plot_roc(Figure().add_subplot(), [(y[:20], p[:20]), (y[20:], p[20:])])
    assert len(ax.lines) == 3
    ax = plot_calibration(Figure().add_subplot(), y, p, n_bins=4)
    assert len(ax.lines) == 2
