"""Binary classification metrics (scikit-learn) and their plots, for the pCR model.

Per fold: AUC, accuracy, F1, sensitivity, specificity at a threshold (0.5, or the Youden
threshold chosen on the training data), and the Brier score; summaries are mean ± sd over folds.
Plots take a matplotlib ``ax`` and return it (use the Agg backend when writing files).
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, f1_score, roc_auc_score, roc_curve

METRICS = ("auc", "accuracy", "f1", "sensitivity", "specificity", "brier")


def _check(y, p):
    y = np.asarray(y, dtype=int).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} probabilities")
    return y, p


def roc_auc(y, p) -> float:
    """ROC AUC, or NaN when only one class is present."""
    y, p = _check(y, p)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def youden_threshold(y, p) -> float:
    """The threshold maximising sensitivity + specificity − 1 on (y, p); 0.5 when undefined."""
    y, p = _check(y, p)
    if len(np.unique(y)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(1.0, thresholds[best]))


def binary_metrics(y, p, threshold: float = 0.5) -> dict:
    """AUC, accuracy, F1, sensitivity, specificity (predicted positive: p ≥ threshold), Brier."""
    y, p = _check(y, p)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "auc": roc_auc(y, p),
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "sensitivity": float(tp / (tp + fn)) if (tp + fn) else float("nan"),
        "specificity": float(tn / (tn + fp)) if (tn + fp) else float("nan"),
        "brier": float(brier_score_loss(y, p, pos_label=1)) if y.size else float("nan"),
        "threshold": float(threshold),
        "n": int(y.size),
        "n_positive": int(y.sum()),
    }


def summarise(per_fold: list, keys=METRICS) -> dict:
    """{metric: {"mean", "sd"}} over folds (NaN folds ignored; sd with ddof=1)."""
    out = {}
    for key in keys:
        values = np.array([f[key] for f in per_fold if key in f], dtype=float)
        values = values[np.isfinite(values)]
        out[key] = {"mean": float(values.mean()) if values.size else float("nan"),
                    "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0}
    return out


def format_summary(summary: dict) -> str:
    return ", ".join(f"{k.upper()} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in summary.items())


def plot_roc(ax, folds: list, title: str = "ROC per fold"):
    """``folds``: list of (y, p) pairs, one ROC curve each, with its AUC in the legend."""
    for k, (y, p) in enumerate(folds):
        y, p = _check(y, p)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.5, label=f"fold {k} (AUC {roc_auc(y, p):.2f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_calibration(ax, y, p, n_bins: int = 10, title: str = "Calibration (out-of-fold)"):
    """Reliability diagram: mean predicted probability vs observed pCR rate per bin."""
    y, p = _check(y, p)
    frac, mean_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    ax.plot(mean_pred, frac, marker="o", lw=1.5, label="model")
    ax.set_xlabel("predicted probability of pCR")
    ax.set_ylabel("observed pCR rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return ax
