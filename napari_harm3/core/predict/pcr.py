"""pCR prediction for one case with a HARM3-Fusion fold ensemble.

:func:`predict_case` prepares the MRI by the card's preparation contract (volumes through the
case's seam, registration applied), reads or computes the slide features by the card's feature
contract (20×, 224-px patches, cached under the case's features folder), runs the K fold models
and returns a :class:`PcrPrediction`: mean probability and spread, which inputs were missing,
a map per MRI volume on that volume's voxels, and the slide's pooling attention as
:class:`~napari_harm3.core.explain.patch_scores.PatchScores`.

Two thresholds can apply: the fixed 0.5 and the training cohort's Youden threshold (mean over
folds). Where they disagree about the probability, no class is named (:meth:`PcrPrediction.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import Harm3Error
from ..explain.gradcam import maps_on_volumes, mri_gradcam, slide_patch_scores
from ..explain.patch_scores import PatchScores
from ..io.case import load_case
from ..models.harm3_fusion import INPUTS
from ..models.registry import Ensemble, load_ensemble
from ..progress import report
from ..train.harm3_data import SLIDE_MAGNIFICATION, SLIDE_PATCH_SIZE, Harm3Sample, collate, sample_from_case
from ..vocabulary import FEATURES_DIR, POOLING_MAP, SEQUENCES

THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class PcrPrediction:
    case_id: str
    model: str
    probability: float             # mean over the fold models
    spread: float                  # sd over the fold models
    fold_probabilities: tuple
    missing_inputs: tuple          # names from INPUTS that were absent (placeholders used)
    gradcam: dict                  # {sequence: VolumeMap | None}, on each volume's own voxels
    slide_attention: PatchScores | None
    threshold: float = THRESHOLD
    youden_threshold: float | None = None
    gradcam_method: str = ""       # what the MRI maps show, e.g. "hirescam, evidence both" (core.explain.gradcam)
    case_ref: object = None        # the case session's identity of the case it was computed for
    slide_mpp: float | None = None  # µm/px the slide features were computed at

    def verdict(self) -> str:
        """"pCR likely" / "pCR unlikely", or no class where 0.5 and the Youden threshold disagree."""
        cuts = [self.threshold] + ([self.youden_threshold] if self.youden_threshold is not None else [])
        above = [self.probability >= t for t in cuts]
        if all(above):
            return "pCR likely"
        if not any(above):
            return "pCR unlikely"
        low, high = sorted(cuts)
        return f"indeterminate (between the thresholds {low:.2f} and {high:.2f})"

    @property
    def predicted_pcr(self) -> bool | None:
        """True/False where every threshold agrees, else None."""
        verdict = self.verdict()
        return True if verdict == "pCR likely" else False if verdict == "pCR unlikely" else None

    def to_dict(self) -> dict:
        return {
            "case_id": self.case_id, "model": self.model, "probability": self.probability, "spread": self.spread,
            "fold_probabilities": list(self.fold_probabilities), "missing_inputs": list(self.missing_inputs),
            "threshold": self.threshold, "youden_threshold": self.youden_threshold,
            "verdict": self.verdict(), "predicted_pcr": self.predicted_pcr,
            "gradcam_volumes": sorted(k for k, v in (self.gradcam or {}).items() if v is not None),
            "gradcam_method": self.gradcam_method, "slide_mpp": self.slide_mpp,
            "slide_patches_scored": 0 if self.slide_attention is None else len(self.slide_attention),
        }


def _check_contract(ensemble: Ensemble, sample: Harm3Sample) -> None:
    cfg = ensemble.harm3_config
    if sample.features is not None and sample.features.shape[1] != cfg.slide_dim:
        raise Harm3Error(f"{sample.case_id}: slide features are {sample.features.shape[1]}-wide, the model expects "
                         f"{cfg.slide_dim} ({ensemble.card.encoder} at 20×, 224-px patches)")
    if tuple(sample.images.shape[1:]) != tuple(cfg.mri_size):
        raise Harm3Error(f"{sample.case_id}: MRI crop {sample.images.shape[1:]} does not match the model's {cfg.mri_size}")


def _pooling_scores(scores: list, sample: Harm3Sample) -> PatchScores | None:
    if not scores or sample.coords is None:
        return None
    mean = np.mean(scores, axis=0)
    mean = mean / mean.max() if mean.max() > 0 else mean
    return PatchScores(key=POOLING_MAP, label="HARM3-Fusion pooling attention", coords=sample.coords, scores=mean,
                       footprint=sample.patch_footprint or SLIDE_PATCH_SIZE, magnification=SLIDE_MAGNIFICATION)


def predict_sample(ensemble: Ensemble, sample: Harm3Sample, gradcam: bool = True, progress=None,
                   case_ref=None, slide_mpp: float | None = None) -> PcrPrediction:
    """The ensemble on one prepared sample (maps mapped back onto the sample's volumes)."""
    _check_contract(ensemble, sample)
    cfg = ensemble.harm3_config
    inputs, _ = collate([sample])
    device = next(ensemble.models[0].parameters()).device
    inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
    probs, cams, scores, missing = [], [], [], None
    for k, model in enumerate(ensemble.models):
        report(progress, 0.2 + 0.8 * k / len(ensemble.models), f"fold model {k + 1}/{len(ensemble.models)}")
        with torch.no_grad():
            out = model(**inputs)
        probs.append(float(out.probability[0]))
        missing = out.missing[0].cpu().numpy()
        if out.slide_attention is not None and inputs["slide"] is not None and bool(inputs["slide_present"][0]):
            scores.append(slide_patch_scores(out.slide_attention[0].cpu()))
        if gradcam and cfg.use_mri and any(sample.present):
            cams.append(mri_gradcam(model, inputs["mri"], inputs["present"], inputs["slide"], inputs["slide_mask"],
                                    inputs["slide_present"])[0])
    maps = {}
    if cams and sample.prep is not None and sample.volumes:
        mean_cam = np.mean(cams, axis=0)                                         # (4, D, H, W)
        peak = mean_cam.reshape(len(SEQUENCES), -1).max(1)[:, None, None, None]
        mean_cam = np.where(peak > 0, mean_cam / np.where(peak > 0, peak, 1), 0)
        maps = maps_on_volumes(mean_cam, sample.prep, sample.volumes, sample.present)
    report(progress, 1.0, "done")
    return PcrPrediction(
        case_id=sample.case_id, model=ensemble.name, probability=float(np.mean(probs)),
        spread=float(np.std(probs, ddof=1)) if len(probs) > 1 else 0.0, fold_probabilities=tuple(probs),
        missing_inputs=tuple(name for name, m in zip(INPUTS, missing) if m), gradcam=maps,
        slide_attention=_pooling_scores(scores, sample), youden_threshold=ensemble.card.youden_threshold,
        gradcam_method=f"{cfg.gradcam_method}, evidence {cfg.gradcam_evidence}" if maps else "",
        case_ref=case_ref, slide_mpp=slide_mpp)


def predict_case(model, case, progress=None, gradcam: bool = True, features_root=None, device="auto",
                 volumes=None, slide_mpp: float | None = None, case_ref=None) -> PcrPrediction:
    """pCR of one case: ``case`` a ``Case``, a case folder/manifest path or a prepared
    ``Harm3Sample``; ``model`` a model
    folder or a loaded :class:`Ensemble` (which keeps its own device). ``features_root`` defaults
    to ``<case folder>/features``; ``volumes`` (a ``CaseVolumes``) spares reading them again;
    ``slide_mpp`` is the µm/px to use (default: the manifest's, else the slide's own)."""
    ensemble = model if isinstance(model, Ensemble) else load_ensemble(model, device, analysis="pcr")
    if ensemble.analysis != "pcr":
        raise Harm3Error(f"{ensemble.name} is a {ensemble.card.kind!r} model, not a HARM3-Fusion one")
    if isinstance(case, Harm3Sample):  # already prepared (training, tests)
        return predict_sample(ensemble, case, gradcam=gradcam, progress=progress, case_ref=case_ref)
    if isinstance(case, (str, Path)):
        case = load_case(case)
    report(progress, 0.0, "preparing the case")
    root = Path(features_root) if features_root is not None else Path(case.root) / FEATURES_DIR
    sample = sample_from_case(case, ensemble.prep_config, root, ensemble.card.encoder,
                              use_slide=ensemble.harm3_config.use_slide, volumes=volumes, mpp=slide_mpp,
                              own_cache=True)
    return predict_sample(ensemble, sample, gradcam=gradcam, progress=progress, case_ref=case_ref,
                          slide_mpp=slide_mpp if slide_mpp is not None else case.slide_mpp)
