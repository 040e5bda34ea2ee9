"""Survival prediction for one case with a CrossFusion model folder (the fold ensemble).

``predict_case(model_folder, case)`` reads the model card's feature contract (encoder, 5×/10×/20×,
256-px patches, tissue preset), computes the slide's features once with the slide pipeline and
caches them (``<case folder>/features`` unless ``features_root`` is given), runs every fold
model and returns a :class:`SurvivalPrediction`: risk (−ΣS, mean and spread over folds), S per
bin and S(t) against months with its min–max band over folds, the risk group relative to the
training cohort, and per-patch attention at each magnification (level-0 coordinates, scores in
[0, 1]) with the top patches. The per-patient report and the napari widget both call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import Harm3Error
from ..progress import ProgressFn, report, scaled

KIND = "crossfusion"
#: attention map per magnification (see ``explain/crossfusion_attention.py``): 5× and 20× patches
#: scored by the cross-attention they receive, 10× by the source branch's self-attention,
#: ``final`` = the final transformer's class-token row over the 10× patches
ATTENTION_MAPS = {"5x": "x5_cross", "10x": "x10_source", "20x": "x20_cross", "final": "x10_final"}
_MAG_OF = {"5x": 5, "10x": 10, "20x": 20, "final": 10}


class PatchScores(NamedTuple):
    """Per-patch scores of one map: unpacks as ``(coords, scores, patch_size)``."""

    coords: np.ndarray   # (N, 2) int64 level-0 (x, y) top-left of each patch
    scores: np.ndarray   # (N,) float32 in [0, 1]
    patch_size: int      # patch width in level-0 pixels

    @property
    def patch_size_level0(self) -> int:
        return self.patch_size


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
    top_patches: dict              # same keys → (TopPatch, ...) best first
    n_patches: dict                # {5: N5, 10: N10, 20: N20}
    features_root: Path | None = None
    fold_cuts_months: tuple = field(default=())  # per fold, the edges it was trained with

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
            "top_patches": {k: [{"x": p.x, "y": p.y, "score": p.score} for p in v] for k, v in self.top_patches.items()},
        }


@dataclass(frozen=True, eq=False)
class CrossFusionEnsemble:
    name: str
    models: tuple
    card: dict
    encoder: str
    tissue_preset: str
    patch_size: int


def load_model(model_folder, device="auto") -> CrossFusionEnsemble:
    """The fold models of a CrossFusion folder on ``device`` with the card's feature contract."""
    from ..device import pick_device
    from ..models.crossfusion import load_ensemble
    from ..train.bags import MAGNIFICATIONS, TISSUE_PRESET

    models, card = load_ensemble(model_folder, device=pick_device(device) if isinstance(device, str) else device)
    inputs = card.get("inputs", {})
    mags = tuple(int(m) for m in inputs.get("magnifications", MAGNIFICATIONS))
    if mags != MAGNIFICATIONS:
        raise Harm3Error(f"{model_folder}: the card asks for magnifications {list(mags)}; CrossFusion here takes 5x, 10x, 20x")
    return CrossFusionEnsemble(name=str(card.get("name", Path(model_folder).name)), models=tuple(models), card=card,
                               encoder=str(inputs.get("encoder", "texture_stats")),
                               tissue_preset=str(inputs.get("tissue_preset", TISSUE_PRESET)),
                               patch_size=int(inputs.get("patch_size_px", 256)))


def _as_case(case):
    """A ``core.io.case.Case`` from a Case, a case folder or its manifest."""
    if isinstance(case, (str, Path)):
        from ..io.case import load_case

        return load_case(Path(case))
    return case


def case_features(ensemble: CrossFusionEnsemble, case, features_root=None, progress: ProgressFn | None = None):
    """(SlideBags with coords, {mag: level-0 patch size}, features root) of one case, from the
    cache or computed with the slide pipeline; no slide and no cached features → Harm3Error."""
    from ..train.bags import MAGNIFICATIONS, case_bags, empty_magnifications, feature_file, slide_features

    case_id = str(case.case_id)
    root = Path(features_root) if features_root is not None else Path(case.root) / "features"
    cached = all(feature_file(root, ensemble.encoder, m, case_id).is_file() for m in MAGNIFICATIONS)
    if not cached:
        if case.slide is None or not Path(case.slide).exists():
            raise Harm3Error(f"case {case_id}: CrossFusion survival needs the biopsy slide, and the case has "
                             f"{'no slide' if case.slide is None else f'no file at {case.slide}'}")
        if ensemble.patch_size != 256:
            raise Harm3Error(f"{ensemble.name}: the card asks for {ensemble.patch_size}-px patches; the CrossFusion "
                             "feature layout here holds 256-px patches")
        slide_features(case.slide, case_id, root, ensemble.encoder, mpp=case.slide_mpp,
                       tissue_preset=ensemble.tissue_preset, progress=progress)
    empty = empty_magnifications(root, ensemble.encoder, case_id)
    if empty:
        raise Harm3Error(f"case {case_id}: no tissue patch at {', '.join(f'{m}x' for m in empty)} in its slide "
                         f"(tissue preset {ensemble.tissue_preset!r}); CrossFusion needs 5x, 10x and 20x patches")
    bags = case_bags(root, ensemble.encoder, case_id, with_coords=True)
    want = int(ensemble.models[0].cfg.backbone_dim)
    if bags.dim != want:
        raise Harm3Error(f"case {case_id}: {bags.dim}-d features under {root / ensemble.encoder}, but the model "
                         f"expects {want}-d ({ensemble.encoder})")
    sizes = {m: _patch_size_level0(feature_file(root, ensemble.encoder, m, case_id, "patches")) for m in MAGNIFICATIONS}
    for mag, n in ((5, len(bags.x5)), (10, len(bags.x10)), (20, len(bags.x20))):
        if bags.coords is None or bags.coords.get(mag) is None or len(bags.coords[mag]) != n:
            raise Harm3Error(f"case {case_id}: {mag}x patch coordinates missing or not matching the features under {root}")
    return bags, sizes, root


def _patch_size_level0(patch_file: Path) -> int | None:
    """Level-0 patch width recorded by the pipeline in the patch file (None when absent)."""
    import h5py

    if not patch_file.is_file():
        return None
    with h5py.File(patch_file, "r") as handle:
        value = handle["coords"].attrs.get("patch_size_level0") if "coords" in handle else None
    return None if value is None else int(value)


def _ensemble_bins(card: dict, survival_per_fold: np.ndarray) -> tuple:
    """(mean interior edges, per-fold edges, t_max) from the card; per-bin indices when it has none."""
    from ..survival.ensemble import fold_edges

    edges = fold_edges(card, len(survival_per_fold))
    if edges is None:
        n = survival_per_fold.shape[1] - 1
        cuts = tuple(float(k + 1) for k in range(n))
        return cuts, (cuts,) * len(survival_per_fold), None
    per_fold = tuple(tuple(float(c) for c in e) for e, _ in edges)
    t_max = card.get("t_max_months")
    if t_max is None:
        fold_t = [t for _, t in edges if t is not None]
        t_max = float(np.mean(fold_t)) if fold_t else None
    return tuple(np.mean(per_fold, axis=0).tolist()), per_fold, (None if t_max is None else float(t_max))


def predict_features(ensemble: CrossFusionEnsemble, bags, sizes: dict, case_id: str = "", top_k: int = 10,
                     progress: ProgressFn | None = None) -> SurvivalPrediction:
    """Risk, S(t) and attention of one slide's bags (``SlideBags`` with coords) through the ensemble."""
    from ..explain.crossfusion_attention import explain_slide, patch_step
    from ..survival.ensemble import predict_slide

    report(progress, 0.0, f"{len(ensemble.models)} fold model(s)")
    pred = predict_slide(list(ensemble.models), ensemble.card, bags.x5, bags.x10, bags.x20)
    report(progress, 0.4, "attention maps")
    explanation = explain_slide(list(ensemble.models), bags.x5, bags.x10, bags.x20, bags.coords,
                                patch_size_level0={m: s for m, s in sizes.items() if s}, top_k=top_k)
    attention, top = {}, {}
    for key, name in ATTENTION_MAPS.items():
        if name in explanation.scores:
            mag = _MAG_OF[key]
            size = int(sizes.get(mag) or patch_step(bags.coords[mag]))
            attention[key] = PatchScores(np.asarray(bags.coords[mag], dtype=np.int64),
                                         np.asarray(explanation.scores[name], dtype=np.float32), size)
            top[key] = explanation.top[name]
    cuts, fold_cuts, t_max = _ensemble_bins(ensemble.card, pred.survival_per_fold)
    if pred.times is None:
        months, curve = np.arange(pred.curve.size, dtype=float), pred.curve_per_fold
    else:
        months, curve = pred.times, pred.curve_per_fold
    threshold = ensemble.card.get("risk_threshold")
    threshold = None if threshold is None else float(threshold)
    report(progress, 1.0, "survival prediction done")
    return SurvivalPrediction(
        case_id=case_id, model=ensemble.name, risk=pred.risk, risk_spread=pred.risk_sd,
        fold_risks=tuple(float(r) for r in pred.risk_per_fold), survival=pred.survival_per_fold.mean(axis=0),
        cuts_months=cuts, months=np.asarray(months, dtype=float), survival_curve=curve.mean(axis=0),
        survival_low=curve.min(axis=0), survival_high=curve.max(axis=0), t_max_months=t_max,
        risk_threshold=threshold,
        risk_group=None if threshold is None else ("high" if pred.risk >= threshold else "low"),
        missing_inputs=(), attention=attention, top_patches=top,
        n_patches={5: len(bags.x5), 10: len(bags.x10), 20: len(bags.x20)}, fold_cuts_months=fold_cuts)


def predict_case(model_folder, case, progress: ProgressFn | None = None, device="auto",
                 features_root=None) -> SurvivalPrediction:
    """Survival prediction of one case (a ``Case``, a case folder or its manifest).

    Features are read from ``features_root`` (default ``<case folder>/features``) or computed
    there from the case's slide; a case without a slide (and without cached features) raises
    :class:`Harm3Error`: CrossFusion has no other input.
    """
    ensemble = model_folder if isinstance(model_folder, CrossFusionEnsemble) else load_model(model_folder, device)
    if ensemble.card.get("kind", KIND) != KIND:
        raise Harm3Error(f"{ensemble.name} is a {ensemble.card.get('kind')!r} model, not a CrossFusion one")
    case = _as_case(case)
    report(progress, 0.0, f"{case.case_id}: slide features")
    bags, sizes, root = case_features(ensemble, case, features_root, progress=scaled(progress, 0.0, 0.7))
    result = predict_features(ensemble, bags, sizes, case_id=str(case.case_id), progress=scaled(progress, 0.7, 1.0))
    return _with_root(result, root)


def _with_root(result: SurvivalPrediction, root: Path) -> SurvivalPrediction:
    from dataclasses import replace

    return replace(result, features_root=root)
