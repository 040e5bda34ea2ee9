"""pCR prediction for one case with a HARM3-Fusion model folder (the fold ensemble).

``predict_case(model_folder, case)`` prepares the MRI by the card's preparation contract, reads
(or computes) the slide features by the card's feature contract, runs the K fold models and
returns the mean probability with its spread, which inputs were missing, a Grad-CAM map per
volume on that volume's own voxel grid, and the slide's per-patch attention scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Harm3Error
from ..progress import report

KIND = "harm3-fusion"


@dataclass(frozen=True, eq=False)
class SlideAttention:
    coords: np.ndarray | None      # (N, 2) level-0 (x, y) of the patches
    scores: np.ndarray             # (N,) in [0, 1]
    patch_size: int = 224
    magnification: int = 20


@dataclass(frozen=True, eq=False)
class PcrPrediction:
    case_id: str
    probability: float             # mean over the fold models
    spread: float                  # sd over the fold models
    fold_probabilities: tuple
    missing_inputs: tuple          # names from INPUTS that were absent (placeholders used)
    gradcam: dict                  # {sequence: VolumeMap | None}
    slide_attention: SlideAttention | None
    threshold: float = 0.5
    youden_threshold: float | None = None
    model: str = ""
    gradcam_method: str = ""       # what the MRI maps show, e.g. "hirescam, evidence both" (core.explain.gradcam)

    def to_dict(self) -> dict:
        return {
            "case_id": self.case_id, "model": self.model, "probability": self.probability, "spread": self.spread,
            "fold_probabilities": list(self.fold_probabilities), "missing_inputs": list(self.missing_inputs),
            "threshold": self.threshold, "youden_threshold": self.youden_threshold,
            "predicted_pcr": bool(self.probability >= self.threshold),
            "gradcam_volumes": sorted(k for k, v in (self.gradcam or {}).items() if v is not None),
            "gradcam_method": self.gradcam_method,
            "slide_patches_scored": 0 if self.slide_attention is None else int(self.slide_attention.scores.size),
        }


@dataclass(frozen=True, eq=False)
class Harm3Ensemble:
    name: str
    models: tuple
    model_config: object
    prep_config: object
    encoder: str
    youden_threshold: float | None
    card: dict


def load_ensemble(model_folder, device="cpu") -> Harm3Ensemble:
    """The fold models of a HARM3-Fusion folder on ``device`` ("cpu", "cuda", "auto" or a torch.device)."""
    from ..device import pick_device
    from ..models.harm3_fusion import Harm3Config, create_model
    from ..models.zoo import ModelFolder, read_model_folder
    from ..mri.prep import MriPrepConfig

    folder = model_folder if isinstance(model_folder, ModelFolder) else read_model_folder(model_folder)
    if folder.kind != KIND:
        raise Harm3Error(f"{folder.path} holds a {folder.kind!r} model, not a HARM3-Fusion ({KIND}) model")
    config = folder.card.get("config", {})
    try:
        model_config = Harm3Config.from_dict(config["model"])
        prep = dict(config.get("preprocessing", {}))
        prep_config = MriPrepConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in prep.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise Harm3Error(f"{folder.path}: the model card's config is not a HARM3-Fusion config ({exc})") from exc
    device = pick_device(device) if isinstance(device, str) else device
    models = []
    for state in folder.load_state_dicts():
        model = create_model(config=model_config, weights=state).to(device)
        model.eval()
        models.append(model)
    slide = folder.card.get("inputs", {}).get("slide", {})
    thresholds = [f.get("threshold_youden") for f in folder.card.get("metrics", {}).get("folds", [])]
    thresholds = [t for t in thresholds if t is not None]
    return Harm3Ensemble(name=folder.name, models=tuple(models), model_config=model_config, prep_config=prep_config,
                         encoder=slide.get("encoder", "texture_stats"),
                         youden_threshold=float(np.mean(thresholds)) if thresholds else None, card=folder.card)


def _as_sample(case, ensemble: Harm3Ensemble, features_root, progress):
    from ..train.harm3_data import Harm3Sample, sample_from_case

    if isinstance(case, Harm3Sample):
        return case
    if isinstance(case, (str, Path)):
        from ..io.case import load_case

        path = Path(case)
        case = load_case(path)
        if features_root is None:
            base = path.parent if path.is_file() else path
            features_root = base.parent / "features"
    if features_root is None:
        root = getattr(case, "root", None) or getattr(case, "path", None) or getattr(case, "directory", None)
        features_root = (Path(root).parent / "features") if root is not None else None
    return sample_from_case(case, ensemble.prep_config, features_root, ensemble.encoder,
                            use_slide=ensemble.model_config.use_slide, progress=progress)


def predict_sample(ensemble: Harm3Ensemble, sample, gradcam: bool = True, progress=None) -> PcrPrediction:
    import torch

    from ..explain.gradcam import maps_on_volumes, mri_gradcam, slide_patch_scores
    from ..models.harm3_fusion import INPUTS
    from ..train.harm3_data import collate

    cfg = ensemble.model_config
    if sample.features is not None and sample.features.shape[1] != cfg.slide_dim:
        raise Harm3Error(f"{sample.case_id}: slide features are {sample.features.shape[1]}-wide, the model expects "
                         f"{cfg.slide_dim} ({ensemble.encoder} at 20×, 224-px patches)")
    if tuple(sample.images.shape[1:]) != tuple(cfg.mri_size):
        raise Harm3Error(f"{sample.case_id}: MRI crop {sample.images.shape[1:]} does not match the model's {cfg.mri_size}")
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
        peak = mean_cam.reshape(4, -1).max(1)[:, None, None, None]
        mean_cam = np.where(peak > 0, mean_cam / np.where(peak > 0, peak, 1), 0)
        maps = maps_on_volumes(mean_cam, sample.prep, sample.volumes, sample.present)
    slide_att = None
    if scores:
        s = np.mean(scores, axis=0)
        slide_att = SlideAttention(coords=sample.coords, scores=(s / s.max()).astype(np.float32) if s.max() > 0 else s)
    report(progress, 1.0, "done")
    return PcrPrediction(
        case_id=sample.case_id, probability=float(np.mean(probs)),
        spread=float(np.std(probs, ddof=1)) if len(probs) > 1 else 0.0, fold_probabilities=tuple(probs),
        missing_inputs=tuple(name for name, m in zip(INPUTS, missing) if m), gradcam=maps, slide_attention=slide_att,
        youden_threshold=ensemble.youden_threshold, model=ensemble.name,
        gradcam_method=f"{cfg.gradcam_method}, evidence {cfg.gradcam_evidence}" if maps else "")


def predict_case(model_folder, case, progress=None, gradcam: bool = True, features_root=None,
                 device="cpu") -> PcrPrediction:
    """pCR probability of one case (a Case, a case folder/manifest path, or a prepared sample);
    ``device`` applies when ``model_folder`` is a folder (a loaded ensemble keeps its own)."""
    ensemble = model_folder if isinstance(model_folder, Harm3Ensemble) else load_ensemble(model_folder, device)
    report(progress, 0.0, "preparing the case")
    sample = _as_sample(case, ensemble, features_root, progress=None)
    return predict_sample(ensemble, sample, gradcam=gradcam, progress=progress)
