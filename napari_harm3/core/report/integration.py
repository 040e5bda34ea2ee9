"""Where the report meets the other parts of the package: the case loader and the predictors.

Each function imports its partner module when it runs and turns the partner's objects into
the report's plain inputs (:mod:`.results`); the viewer's report (``_workflow.build_gui_report``) uses the
same conversions (:func:`case_inputs`, :func:`pcr_result`, :func:`survival_result`). A partner module absent from this installation is
stated, never guessed around: the case loader is required (:class:`Harm3Error`), a predictor
gives ``(None, reason)`` so the report says which analysis was not run and why.

Partners:

- ``napari_harm3.core.io.case.load_case(path)`` → ``Case`` (``case_id``, ``mri`` and ``masks``
  role → path, ``slide``, ``slide_mpp``, ``manifest``); volumes are read with
  ``io.mri.read_volume``, masks with ``io.masks.read_mask`` (on the volume's grid), the slide
  with ``wsi.slide_source.open_wsi``;
- ``napari_harm3.core.predict.pcr.predict_case(model_folder, case, progress=None)`` →
  ``PcrPrediction`` (probability, spread, fold_probabilities, missing_inputs, threshold,
  gradcam: role → VolumeMap on that volume's voxels, slide_attention: coords/scores/patch_size);
- ``napari_harm3.core.predict.survival.predict_case(model_folder, case, progress=None)`` →
  ``risk``, ``survival`` (per bin), ``cuts_months``, ``fold_risks``, ``missing_inputs``,
  ``attention`` (scale → object with ``coords``, ``scores``, ``patch_size``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from ..errors import Harm3Error
from .figures import PatchAttention
from .results import VOLUME_ROLES, CaseSlide, CaseVolume, PcrResult, SurvivalResult

CASE_MODULE = "napari_harm3.core.io.case"
PCR_MODULE = "napari_harm3.core.predict.pcr"
SURVIVAL_MODULE = "napari_harm3.core.predict.survival"


@dataclass(frozen=True, eq=False)
class LoadedCase:
    """A case as the report needs it, plus the loader's own object for the predictors."""

    case: object
    summary: object  # CaseSummary
    volumes: tuple  # (CaseVolume, ...)
    slide: CaseSlide | None
    extra_inputs: tuple  # ((role, path), ...), e.g. the manifest


def _partner(module_name: str):
    """The partner module, or None when this installation does not have it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def load_case_inputs(case_path) -> LoadedCase:
    """Load a case folder or manifest with the project's case loader, and read its images."""
    module = _partner(CASE_MODULE)
    if module is None:
        raise Harm3Error(f"cannot load {case_path}: the case loader ({CASE_MODULE}) is not part of this installation")
    return case_inputs(module.load_case(case_path))


def case_inputs(case) -> LoadedCase:
    """Read the images of a loaded ``Case`` as the report takes them (command line and viewer; no model run)."""
    from ..io.mri import read_volume
    from .build import case_summary

    volumes, extra = [], []
    for role in sorted(case.mri, key=lambda r: VOLUME_ROLES.index(r) if r in VOLUME_ROLES else len(VOLUME_ROLES)):
        path, series_uid = case.mri_source(role)
        volume = read_volume(path, series_uid=series_uid)
        mask = None
        if role in (case.masks or {}):
            mask, mask_path = _read_mask_on(case, role, volume)
            extra.append((f"{role}_mask", mask_path))
        volumes.append(CaseVolume(role=role, data=np.asarray(volume.data), spacing=volume.spacing,
                                  path=str(path), mask=mask))
    slide = None
    if case.slide is not None:
        from ..wsi.slide_source import open_wsi

        slide = CaseSlide(path=str(case.slide), reader=open_wsi(case.slide, mpp=case.slide_mpp))
    if case.manifest is not None:
        extra.insert(0, ("manifest", str(case.manifest)))
    return LoadedCase(case=case, summary=case_summary(str(case.case_id), volumes, slide), volumes=tuple(volumes),
                      slide=slide, extra_inputs=tuple(extra))


def _read_mask_on(case, role: str, volume) -> tuple:
    """(boolean mask on ``volume``'s grid or None when its grid differs, mask path)."""
    from ..io.masks import read_mask

    path, _ = case.mask_source(role)
    labels = read_mask(path, reference=volume)
    data = np.asarray(labels.data)
    return (data > 0 if data.shape == np.shape(volume.data) else None), str(path)


def _predict(module, model_folder, loaded: LoadedCase, device: str, progress):
    """Call the partner's ``predict_case``; ``device`` is passed only where it takes one."""
    import inspect

    options = {"progress": progress}
    if "device" in inspect.signature(module.predict_case).parameters:
        options["device"] = device
    return module.predict_case(model_folder, loaded.case, **options)


def _patch_attention(label: str, attention, default_size: int = 256) -> PatchAttention:
    """Patch scores for the report; the drawn size is the coordinates' grid step (level-0 pixels) when
    there are two positions or more, else the map's own ``patch_size`` (a 20× patch on a 40× slide
    covers twice its size at level 0)."""
    from ..explain.crossfusion_attention import patch_step

    coords = np.asarray(attention.coords)
    size = patch_step(coords) if len(np.unique(coords, axis=0)) > 1 else int(getattr(attention, "patch_size", default_size))
    return PatchAttention(label=label, coords=coords, scores=np.asarray(attention.scores, float), patch_size=size)


def pcr_result(prediction) -> PcrResult:
    """The report's :class:`PcrResult` from a ``core.predict.pcr.PcrPrediction`` (command line and viewer)."""
    gradcam = {role: np.asarray(getattr(cam, "data", cam)) for role, cam in dict(prediction.gradcam or {}).items()
               if cam is not None}
    slide = prediction.slide_attention
    if slide is not None and getattr(slide, "coords", None) is None:
        slide = None  # scores without patch positions cannot be drawn
    return PcrResult(
        probability=float(prediction.probability), spread=float(prediction.spread),
        fold_probabilities=tuple(float(p) for p in prediction.fold_probabilities),
        threshold=float(getattr(prediction, "threshold", 0.5)),
        missing_inputs=tuple(prediction.missing_inputs), gradcam=gradcam,
        slide_attention=None if slide is None else _patch_attention("HARM3-Fusion pooling", slide, 224),
        gradcam_method=str(getattr(prediction, "gradcam_method", "")),
    )


def survival_result(prediction) -> SurvivalResult:
    """The report's :class:`SurvivalResult` from a ``core.predict.survival`` prediction (command line and viewer)."""
    attention = tuple(_patch_attention(f"CrossFusion {scale}", maps)
                      for scale, maps in dict(prediction.attention or {}).items())
    return SurvivalResult(
        risk=float(prediction.risk), survival_per_bin=tuple(float(s) for s in prediction.survival),
        cuts_months=tuple(float(c) for c in prediction.cuts_months),
        fold_risks=tuple(float(r) for r in prediction.fold_risks),
        missing_inputs=tuple(prediction.missing_inputs), attention=attention,
        t_max_months=getattr(prediction, "t_max_months", None),
        risk_threshold=getattr(prediction, "risk_threshold", None),
    )


def _run_model(module_name: str, title: str, convert, model_folder, loaded: LoadedCase, device: str, progress):
    module = _partner(module_name)
    if module is None:
        return None, f"the {title} prediction code ({module_name}) is not part of this installation"
    try:
        prediction = _predict(module, model_folder, loaded, device, progress)
    except Harm3Error as exc:
        return None, str(exc)
    return convert(prediction), ""


def run_pcr_model(model_folder, loaded: LoadedCase, device: str, progress) -> tuple:
    """(PcrResult, "") or (None, why not)."""
    return _run_model(PCR_MODULE, "HARM3-Fusion", pcr_result, model_folder, loaded, device, progress)


def run_survival_model(model_folder, loaded: LoadedCase, device: str, progress) -> tuple:
    """(SurvivalResult, "") or (None, why not)."""
    return _run_model(SURVIVAL_MODULE, "CrossFusion", survival_result, model_folder, loaded, device, progress)
