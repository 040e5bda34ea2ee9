"""A cross-validated CrossFusion as a model folder: metrics, the training cohort's risk reference,
the model card, and the folder itself (weights, card, metrics.json, predictions.csv, plots).

Split from :mod:`.crossfusion_train` (the training loop); training code calls
:func:`save_cv_model` with the :class:`~.crossfusion_train.CVResult`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..atomic import atomic_path
from ..errors import Harm3Error
from ..models.crossfusion import CITATION, DEVIATIONS, create_model
from ..models.zoo import write_model_folder
from ..survival.km import km_by_risk
from ..survival.plots import plot_fold_cindex, plot_km
from .crossfusion_train import CVResult, TrainConfig, _to_device, predict_risk


def cv_metrics(result: CVResult) -> dict:
    """Per-fold and pooled metrics: C-index (mean ± sd), KM of high vs low risk with log-rank p."""
    mean, sd = result.cindex_mean_sd
    folds = []
    for f in result.folds:
        entry = {"fold": f.index, "test_cindex": f.test_cindex, "validation_cindex": f.validation_cindex,
                 "best_epoch": f.best_epoch, "n_test": int(len(f.test_index)),
                 "n_test_events": int(result.events[f.test_index].sum()), "bin_edges_months": f.cuts.tolist()}
        try:
            entry["km"] = km_by_risk(result.times[f.test_index], result.events[f.test_index], f.test_risk).to_dict()
        except Harm3Error as exc:
            entry["km"] = {"skipped": str(exc)}
        folds.append(entry)
    pooled = km_by_risk(result.times, result.events, _fold_centred_risk(result))
    return {"cindex_mean": mean, "cindex_sd": sd, "cindex_per_fold": result.cindices, "folds": folds,
            "km_out_of_fold": pooled.to_dict(),
            "note": "C-index: Harrell's, continuous times, risk = −ΣS, each fold's test set. "
                    "KM: out-of-fold risk, split at the median of each fold's test risks."}


def _fold_centred_risk(result: CVResult) -> np.ndarray:
    """Out-of-fold risk, each fold's scores centred on their median (fold models are not on one scale)."""
    risk = np.full(len(result.times), np.nan)
    for f in result.folds:
        risk[f.test_index] = f.test_risk - np.median(f.test_risk)
    return risk


def ensemble_risks(result: CVResult, bags, model: str, model_overrides: dict, n_bins: int) -> np.ndarray:
    """Risk of every cohort case under the whole fold ensemble (mean of the fold models' −ΣS),
    the scale on which a new case's ensemble risk is compared with the training cohort."""
    tensors = _to_device(bags, "cpu")
    per_fold = []
    for f in result.folds:
        net = create_model(model, weights=f.state_dict, backbone_dim=bags[0].dim, n_bins=n_bins, **model_overrides)
        per_fold.append(predict_risk(net, tensors)[0])
    return np.mean(per_fold, axis=0)


def risk_reference(risks) -> dict:
    """Card fields placing a new case in the training cohort: the median ensemble risk splits
    high from low risk (the paper's median split), with the quartiles for context."""
    risks = np.asarray(risks, dtype=float)
    q25, q50, q75 = np.percentile(risks, [25, 50, 75])
    return {"risk_threshold": float(q50),
            "risk_reference": {"n_cases": int(risks.size), "median": float(q50), "q25": float(q25), "q75": float(q75),
                               "min": float(risks.min()), "max": float(risks.max()),
                               "note": "ensemble risk (mean over fold models of −ΣS) of the training cohort; "
                                       "risk ≥ median → 'high' risk group"}}


def save_cv_model(out, result: CVResult, card: dict, overwrite: bool = False, bags=None):
    """Write the fold ensemble as a model folder with metrics.json, predictions.csv and plots.

    With the cohort's ``bags``, the card also gets the training cohort's ensemble-risk median
    (``risk_threshold``) so that a new case is placed in a high or low risk group."""
    out = Path(out)
    if (out / "card.json").exists() and not overwrite:
        raise Harm3Error(f"{out} already holds a model; pass --overwrite or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    metrics = cv_metrics(result)
    with atomic_path(out / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float))
    with atomic_path(out / "predictions.csv", overwrite=True) as tmp:
        rows = ["case_index,fold,time_months,event,risk"]
        for f in result.folds:
            rows += [f"{i},{f.index},{result.times[i]},{result.events[i]},{r:.6f}" for i, r in zip(f.test_index, f.test_risk)]
        tmp.write_text("\n".join(rows) + "\n")
    for name, draw in (("km.png", lambda ax: plot_km(km_by_risk(result.times, result.events, _fold_centred_risk(result)), ax)),
                       ("cindex.png", lambda ax: plot_fold_cindex(result.cindices, ax))):
        fig = Figure(figsize=(5, 4))
        draw(fig.add_subplot())
        fig.tight_layout()
        with atomic_path(out / name, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    card = dict(card)
    card["bin_edges_months"] = [f.cuts.tolist() for f in result.folds]
    card["max_follow_up_months"] = [f.t_max for f in result.folds]
    card["t_max_months"] = float(np.mean([f.t_max for f in result.folds]))
    if bags is not None:
        training = card.get("training", {})
        card.update(risk_reference(ensemble_risks(result, bags, training.get("model", "crossfusion"),
                                                  training.get("model_overrides", {}), training.get("n_bins", 4))))
    card["metrics"] = {k: metrics[k] for k in ("cindex_mean", "cindex_sd", "cindex_per_fold")} | {
        "km_logrank_p": metrics["km_out_of_fold"]["logrank_p"], "details": "metrics.json"}
    return write_model_folder(out, card, [f.state_dict for f in result.folds], overwrite=overwrite)


def crossfusion_card(name: str, model_config: dict, train_config: TrainConfig, encoder: str,
                     training_data: dict, warning: str | None = None, intended_use: str | None = None,
                     tissue_preset: str = "biopsy") -> dict:
    """The model card of a CrossFusion model (bin edges and metrics are added when saving)."""
    card = {
        "name": name,
        "kind": "crossfusion",
        "version": "1",
        "summary": "CrossFusion survival model: patch features at 5×, 10× and 20× of one slide → "
                   "discrete-time hazards, survival S over the bins, risk = −ΣS; one model per CV fold (ensemble).",
        "intended_use": intended_use or "Research use only: ranking slides by predicted survival risk in a "
                                        "cohort like the training one. Not for clinical decisions.",
        "inputs": {"encoder": encoder, "feature_dim": model_config["backbone_dim"], "magnifications": [5, 10, 20],
                   "patch_size_px": 256, "tissue_preset": tissue_preset,
                   "layout": "<features>/<encoder>/x{5,10,20}/pt_files/<slide>.pt, (N, D) tensors in patch-coordinate order"},
        "config": model_config,
        "training": train_config.to_dict(),
        "training_data": training_data,
        "deviations": list(DEVIATIONS),
        "citation": CITATION,
        "licence": "BSD-3-Clause (weights trained by napari-harm3)",
    }
    if warning:
        card["warning"] = warning
    return card
