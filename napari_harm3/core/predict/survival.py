"""Survival prediction for one case with a CrossFusion model folder (the fold ensemble).

``predict_case(model_folder, case)`` reads the model card's feature contract (encoder, 5×/10×/20×,
256-px patches, tissue preset), computes the slide's features once with the slide pipeline and
caches them (``<case folder>/features`` unless ``features_root`` is given), runs every fold
model and returns a :class:`SurvivalPrediction`: risk (−ΣS, mean and spread over folds), S per
bin and S(t) against months with its min–max band over folds, the risk group relative to the
training cohort, and per-patch attention at each magnification (level-0 coordinates, scores in
[0, 1], their level-0 footprint recorded by the patch files). The case session calls it for the
viewer, the report and the command line alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from ..errors import Harm3Error
from ..explain.crossfusion_attention import explain_slide
from ..io.case import load_case
from ..models.registry import Ensemble, load_ensemble
from ..progress import ProgressFn, report, scaled
from ..survival.ensemble import predict_slide
from ..train.bags import MAGNIFICATIONS, case_bags, empty_magnifications, feature_file, slide_features
from ..vocabulary import FEATURES_DIR

#: the maps shown (see ``explain/crossfusion_attention.py``): 5× and 20× patches scored by the
#: cross-attention they receive, 10× by the source branch's self-attention, ``final`` = the final
#: transformer's class-token row over the 10× patches
ATTENTION_MAPS = {"5x": "x5_cross", "10x": "x10_source", "20x": "x20_cross", "final": "x10_final"}
ATTENTION_LABELS = {"5x": "CrossFusion 5x attention", "10x": "CrossFusion 10x attention",
                    "20x": "CrossFusion 20x attention", "final": "CrossFusion final (class token over 10x)"}
#: months at which S(t) is read out for people
LANDMARK_MONTHS = (12.0, 24.0)


@dataclass(frozen=True, eq=False)
class SurvivalPrediction:
    """A CrossFusion ensemble prediction for one case (a result object, never mutated)."""

    case_id: str
    model: str
    risk: float                    # mean over folds of −ΣS (higher = worse)
    risk_spread: float             # sd over folds (0 for one model)
    fold_risks: tuple
    survival: np.ndarray           # (n_bins,) mean over folds of S after each bin
    cuts_months: tuple             # interior bin edges (mean of the folds' edges)
    months: np.ndarray             # (T,) month grid from 0: union of every fold's edges
    survival_curve: np.ndarray     # (T,) mean S(t) over folds (right-continuous steps)
    survival_low: np.ndarray       # (T,) min over folds
    survival_high: np.ndarray      # (T,) max over folds
    t_max_months: float | None     # where the last bin is drawn to (training follow-up)
    risk_threshold: float | None   # median ensemble risk of the training cohort
    risk_group: str | None         # "high" (risk ≥ threshold) / "low"; None when the card lacks it
    missing_inputs: tuple          # always () here: without the slide no prediction is made
    attention: dict                # "5x" | "10x" | "20x" | "final" → PatchScores
    n_patches: dict                # {5: N5, 10: N10, 20: N20}
    features_root: Path | None = None
    fold_cuts_months: tuple = field(default=())  # per fold, the edges it was trained with
    risk_percentile: float | None = None  # where the risk falls in the training cohort (0–100)
    case_ref: object = None        # the case session's identity of the case it was computed for
    slide_mpp: float | None = None  # µm/px the slide features were computed at

    def survival_at(self, months: float) -> float | None:
        """S(months) of the mean curve; None beyond the follow-up the model was trained on."""
        end = self.t_max_months if self.t_max_months is not None else float(self.months[-1])
        if months > end:
            return None
        index = int(np.searchsorted(self.months, months, side="right")) - 1
        return float(self.survival_curve[max(index, 0)])

    def landmarks(self) -> dict:
        """{months: S} at :data:`LANDMARK_MONTHS` where the curve reaches them."""
        return {m: s for m in LANDMARK_MONTHS if (s := self.survival_at(m)) is not None}

    def to_dict(self) -> dict:
        """JSON-ready summary (attention as patch counts, top patches as positions)."""
        return {
            "case_id": self.case_id, "model": self.model, "risk": self.risk, "risk_spread": self.risk_spread,
            "fold_risks": list(self.fold_risks), "survival_per_bin": self.survival.tolist(),
            "cuts_months": list(self.cuts_months), "months": self.months.tolist(),
            "survival_curve": self.survival_curve.tolist(), "survival_low": self.survival_low.tolist(),
            "survival_high": self.survival_high.tolist(), "t_max_months": self.t_max_months,
            "risk_threshold": self.risk_threshold, "risk_group": self.risk_group,
            "missing_inputs": list(self.missing_inputs), "n_patches": {f"x{m}": n for m, n in self.n_patches.items()},
            "risk_percentile": self.risk_percentile, "survival_at_months": {f"{m:g}": s for m, s in self.landmarks().items()},
            "slide_mpp": self.slide_mpp,
            "attention": {k: v.to_json_dict() for k, v in self.attention.items()},
        }


def case_features(ensemble: Ensemble, case, features_root=None, progress: ProgressFn | None = None,
                  slide_mpp: float | None = None):
    """(SlideBags with coords, {mag: level-0 footprint}, features root) of one case, from the
    cache or computed with the slide pipeline; no slide and no cached features → Harm3Error."""
    case_id = str(case.case_id)
    card = ensemble.card
    encoder = card.encoder
    root = Path(features_root) if features_root is not None else Path(case.root) / FEATURES_DIR
    cached = all(feature_file(root, encoder, m, case_id).is_file() for m in MAGNIFICATIONS)
    if case.slide is not None and Path(case.slide).exists():
        cached = False  # the pipeline reuses the cache when it is this slide's, recomputes when the slide changed
    if not cached:
        if case.slide is None or not Path(case.slide).exists():
            raise Harm3Error(f"case {case_id}: CrossFusion survival needs the biopsy slide, and the case has "
                             f"{'no slide' if case.slide is None else f'no file at {case.slide}'}")
        if card.patch_size_px != 256:
            raise Harm3Error(f"{card.name}: the card asks for {card.patch_size_px}-px patches; the CrossFusion "
                             "feature layout here holds 256-px patches")
        slide_features(case.slide, case_id, root, encoder, mpp=slide_mpp if slide_mpp is not None else case.slide_mpp,
                       tissue_preset=card.tissue_preset, progress=progress, replace_other_slide=True)
    empty = empty_magnifications(root, encoder, case_id)
    if empty:
        raise Harm3Error(f"case {case_id}: no tissue patch at {', '.join(f'{m}x' for m in empty)} in its slide "
                         f"(tissue preset {card.tissue_preset!r}); CrossFusion needs 5x, 10x and 20x patches")
    bags = case_bags(root, encoder, case_id, with_coords=True)
    want = int(ensemble.models[0].cfg.backbone_dim)
    if bags.dim != want:
        raise Harm3Error(f"case {case_id}: {bags.dim}-d slide features, but the model expects {want}-d ({encoder})")
    sizes = {m: _patch_size_level0(feature_file(root, encoder, m, case_id, "patches")) for m in MAGNIFICATIONS}
    for mag, n in ((5, len(bags.x5)), (10, len(bags.x10)), (20, len(bags.x20))):
        if bags.coords is None or bags.coords.get(mag) is None or len(bags.coords[mag]) != n:
            raise Harm3Error(f"case {case_id}: {mag}x patch coordinates missing or not matching the features under {root}")
    return bags, sizes, root


def _patch_size_level0(patch_file: Path) -> int | None:
    """Level-0 patch width recorded by the pipeline in the patch file (None when absent)."""
    if not patch_file.is_file():
        return None
    with h5py.File(patch_file, "r") as handle:
        value = handle["coords"].attrs.get("patch_size_level0") if "coords" in handle else None
    return None if value is None else int(value)


def _ensemble_bins(card, survival_per_fold: np.ndarray) -> tuple:
    """(mean interior edges, per-fold edges, t_max) from the card; per-bin indices when it has none."""
    edges = card.fold_bin_edges()
    if edges is None:
        n = survival_per_fold.shape[1] - 1
        cuts = tuple(float(k + 1) for k in range(n))
        return cuts, (cuts,) * len(survival_per_fold), None
    per_fold = tuple(tuple(float(c) for c in e) for e, _ in edges)
    t_max = card.t_max_months
    if t_max is None:
        fold_t = [t for _, t in edges if t is not None]
        t_max = float(np.mean(fold_t)) if fold_t else None
    return tuple(np.mean(per_fold, axis=0).tolist()), per_fold, (None if t_max is None else float(t_max))


def predict_features(ensemble: Ensemble, bags, sizes: dict, case_id: str = "",
                     progress: ProgressFn | None = None) -> SurvivalPrediction:
    """Risk, S(t) and attention of one slide's bags (``SlideBags`` with coords) through the ensemble;
    ``sizes``: {mag: the patches' level-0 footprint}."""
    card = ensemble.card
    report(progress, 0.0, f"{len(ensemble.models)} fold model(s)")
    pred = predict_slide(list(ensemble.models), card, bags.x5, bags.x10, bags.x20)
    report(progress, 0.4, "attention maps")
    maps = explain_slide(list(ensemble.models), bags.x5, bags.x10, bags.x20, bags.coords, sizes)
    attention = {key: replace(maps[name], key=key, label=ATTENTION_LABELS[key])
                 for key, name in ATTENTION_MAPS.items() if name in maps}
    cuts, fold_cuts, t_max = _ensemble_bins(card, pred.survival_per_fold)
    if pred.times is None:
        months, curve = np.arange(pred.curve.size, dtype=float), pred.curve_per_fold
    else:
        months, curve = pred.times, pred.curve_per_fold
    threshold = card.risk_threshold
    report(progress, 1.0, "survival prediction done")
    return SurvivalPrediction(
        case_id=case_id, model=ensemble.name, risk=pred.risk, risk_spread=pred.risk_sd,
        fold_risks=tuple(float(r) for r in pred.risk_per_fold), survival=pred.survival_per_fold.mean(axis=0),
        cuts_months=cuts, months=np.asarray(months, dtype=float), survival_curve=curve.mean(axis=0),
        survival_low=curve.min(axis=0), survival_high=curve.max(axis=0), t_max_months=t_max,
        risk_threshold=threshold, risk_group=risk_group(pred.risk, threshold),
        missing_inputs=(), attention=attention,
        n_patches={5: len(bags.x5), 10: len(bags.x10), 20: len(bags.x20)}, fold_cuts_months=fold_cuts,
        risk_percentile=card.risk_percentile(pred.risk))


def risk_group(risk: float, threshold: float | None) -> str | None:
    """"high" when ``risk`` ≥ the training cohort's median risk, else "low" (the one rule, used by
    the viewer, the report, the batch table and the validation summary); None without a threshold."""
    if threshold is None:
        return None
    return "high" if float(risk) >= float(threshold) else "low"


def predict_case(model, case, progress: ProgressFn | None = None, device="auto", features_root=None,
                 slide_mpp: float | None = None, case_ref=None) -> SurvivalPrediction:
    """Survival prediction of one case (a ``Case``, a case folder or its manifest).

    ``model``: a model folder or a loaded :class:`Ensemble`. Features are read from
    ``features_root`` (default ``<case folder>/features``) or computed there from the case's
    slide at ``slide_mpp`` (default: the manifest's, else the slide's own); a case without a
    slide (and without cached features) raises :class:`Harm3Error`: CrossFusion has no other input.
    """
    ensemble = model if isinstance(model, Ensemble) else load_ensemble(model, device, analysis="survival")
    if ensemble.analysis != "survival":
        raise Harm3Error(f"{ensemble.name} is a {ensemble.card.kind!r} model, not a CrossFusion one")
    if isinstance(case, (str, Path)):
        case = load_case(case)
    report(progress, 0.0, f"{case.case_id}: slide features")
    bags, sizes, root = case_features(ensemble, case, features_root, progress=scaled(progress, 0.0, 0.7),
                                      slide_mpp=slide_mpp)
    result = predict_features(ensemble, bags, sizes, case_id=str(case.case_id), progress=scaled(progress, 0.7, 1.0))
    return replace(result, features_root=root, case_ref=case_ref,
                   slide_mpp=slide_mpp if slide_mpp is not None else case.slide_mpp)
