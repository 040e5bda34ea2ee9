"""Build a :class:`~.model.Report`: from results already computed, or by running the models.

:func:`build_report_from_results` is the core (used by the GUI, which holds the results of
its run buttons, and by :func:`build_report`). :func:`build_report` loads a case folder or
manifest, picks the models (explicit folders, else the zoo by card kind), runs the real
prediction code of each model and builds the report; an analysis that cannot run (no model
in the zoo, inputs missing) is stated in the report's notes instead of failing the report.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import Harm3Error
from ..hashing import sha256_path
from ..progress import ProgressFn, report as report_progress
from .figures import PatchAttention, mri_figure, paint_attention, slide_thumbnail, top_patch_tiles
from .model import (CaseSummary, InputFile, ModelProvenance, PcrSection, Report, SlideFigure, SurvivalSection,
                    WeightHash)
from .results import VOLUME_ROLES, CaseSlide, CaseVolume, PcrResult, SurvivalResult

#: card kinds of the pCR model ("harm3-fusion" as written by training; "harm3" as named in the issue)
PCR_KIND = ("harm3-fusion", "harm3")
SURVIVAL_KIND = ("crossfusion",)
TOP_K_PATCHES = 4


def model_provenance(folder) -> ModelProvenance:
    """Card facts and weight sha256 of a zoo :class:`~napari_harm3.core.models.zoo.ModelFolder`."""
    from ..hashing import sha256_file

    card = folder.card
    sums = folder.sha256()
    weights = []
    for path in folder.weight_files:
        relative = str(Path(path).resolve().relative_to(Path(folder.path).resolve()))
        weights.append(WeightHash(file=relative, sha256=sums.get(relative) or sha256_file(path)))
    summary = card.get("summary") or card.get("intended_use") or ""
    if card.get("warning"):
        summary = f"{card['warning']} {summary}".strip()
    return ModelProvenance(name=folder.name, kind=folder.kind, version=folder.version, card_summary=str(summary),
                           weights=tuple(weights), path=str(folder.path))


def select_model(kinds, explicit=None, zoo=None) -> tuple:
    """(ModelFolder or None, note): the folder given, else the zoo's model of one of ``kinds``.

    An explicit folder that is not a model of ``kind`` is an error (a typo must not silently
    drop an analysis); an empty zoo gives None and the reason, so the report says why.
    """
    from ..models.zoo import list_models, read_model_folder
    from ..resources import models_dir

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    kind = kinds[0]
    if explicit is not None:
        folder = read_model_folder(explicit)
        if folder.kind not in kinds:
            raise Harm3Error(f"{explicit} holds a {folder.kind!r} model, not a {kind!r} one")
        return folder, ""
    root = Path(zoo) if zoo is not None else models_dir()
    found = [m for m in list_models(root) if m.kind in kinds]
    if not found:
        return None, f"no {kind!r} model in the model zoo ({root}); pass a model folder to run it"
    note = "" if len(found) == 1 else (f"{len(found)} {kind!r} models in the zoo; used {found[0].name} "
                                       f"(choose another with its folder)")
    return found[0], note


def _survival_section(result: SurvivalResult, model_name: str, card: dict) -> SurvivalSection:
    from ..survival.bins import survival_curve

    t_max = result.t_max_months if result.t_max_months is not None else card.get("t_max_months")
    times, curve = survival_curve(np.asarray(result.survival_per_bin, dtype=float),
                                  np.asarray(result.cuts_months, dtype=float), t_max=t_max)
    threshold = result.risk_threshold if result.risk_threshold is not None else card.get("risk_threshold")
    group = None if threshold is None else ("high" if result.risk >= float(threshold) else "low")
    return SurvivalSection(
        model_name=model_name,
        risk=float(result.risk),
        times_months=tuple(float(t) for t in times),
        survival=tuple(float(s) for s in curve),
        risk_group=group,
        risk_threshold=None if threshold is None else float(threshold),
        fold_risks=tuple(float(r) for r in result.fold_risks),
        tail_open=len(times) == len(result.cuts_months) + 1,
        missing_inputs=tuple(result.missing_inputs),
    )


def _mri_figures(volumes, pcr: PcrResult | None) -> tuple:
    """Key slices in report order; a Grad-CAM map on another grid is left out with a note."""
    figures, notes = [], []
    order = {role: i for i, role in enumerate(VOLUME_ROLES)}
    for volume in sorted(volumes, key=lambda v: order.get(v.role, len(order))):
        cam = None if pcr is None else pcr.gradcam.get(volume.role)
        if cam is not None and np.shape(cam) != np.shape(volume.data):
            notes.append(f"Grad-CAM of {volume.role} not shown: its grid {np.shape(cam)} differs from the volume's "
                         f"{np.shape(volume.data)}")
            cam = None
        mask = volume.mask if volume.mask is not None and np.shape(volume.mask) == np.shape(volume.data) else None
        figures.append(mri_figure(_role_label(volume.role), volume.data, volume.spacing, overlay=cam, mask=mask))
    return tuple(figures), notes


def _role_label(role: str) -> str:
    """``t1_pre`` → ``T1 pre``."""
    parts = role.split("_")
    return " ".join([parts[0].upper()] + parts[1:])


def _slide_figure(slide: CaseSlide, maps, top_k: int) -> SlideFigure:
    thumbnail, downsample = slide_thumbnail(slide.reader)
    heatmaps, patches = {}, {}
    for attention in maps:
        heatmaps[attention.label] = paint_attention(attention, thumbnail.shape, downsample)
        patches[attention.label] = top_patch_tiles(slide.reader, attention, k=top_k)
    return SlideFigure(slide_name=slide.path, thumbnail=thumbnail, downsample=float(downsample),
                       heatmaps=heatmaps, top_patches=patches)


def input_files(volumes, slide: CaseSlide | None, extra=()) -> tuple:
    """(InputFile, ...) with sha256 of every file the report is computed from (folders: see hashing)."""
    entries = [(v.role, v.path) for v in volumes] + ([("slide", slide.path)] if slide else []) + list(extra)
    return tuple(InputFile(role=role, path=str(path), sha256=sha256_path(path)) for role, path in entries)


def build_report_from_results(case: CaseSummary, volumes=(), slide: CaseSlide | None = None,
                              pcr: PcrResult | None = None, survival: SurvivalResult | None = None,
                              pcr_model=None, survival_model=None, notes=(), extra_inputs=(),
                              created: datetime | None = None, top_k: int = TOP_K_PATCHES,
                              progress: ProgressFn | None = None) -> Report:
    """A report from a case and results already computed.

    ``pcr_model`` / ``survival_model``: the zoo ``ModelFolder`` each result came from (for
    provenance; a survival model's card may hold ``risk_threshold`` and ``t_max_months``).
    ``notes``: sentences to show, e.g. why an analysis was not run.
    """
    from ... import __version__

    report_progress(progress, 0.0, "report: figures")
    models = tuple(model_provenance(m) for m in (pcr_model, survival_model) if m is not None)
    pcr_name = pcr_model.name if pcr_model is not None else "HARM3-Fusion"
    mri, figure_notes = _mri_figures(volumes, pcr)
    report_progress(progress, 0.3, "report: slide")
    maps = list(survival.attention if survival else ()) + ([pcr.slide_attention] if pcr and pcr.slide_attention else [])
    slide_figure = _slide_figure(slide, maps, top_k) if slide is not None else None
    report_progress(progress, 0.7, "report: hashing inputs")
    inputs = input_files(volumes, slide, extra_inputs)
    pcr_section = None
    if pcr is not None:
        pcr_section = PcrSection(
            model_name=pcr_name,
            probability=float(pcr.probability), spread=float(pcr.spread),
            fold_probabilities=tuple(float(p) for p in pcr.fold_probabilities),
            threshold=float(pcr.threshold), missing_inputs=tuple(pcr.missing_inputs),
            gradcam_method=str(getattr(pcr, "gradcam_method", "")))
    survival_section = None
    if survival is not None:
        card = survival_model.card if survival_model is not None else {}
        survival_section = _survival_section(survival, survival_model.name if survival_model else "CrossFusion", card)
    report_progress(progress, 1.0, "report: ready")
    return Report(
        case=case,
        pcr=pcr_section,
        survival=survival_section,
        mri_figures=mri,
        slide_figure=slide_figure,
        models=models,
        inputs=inputs,
        created=created or datetime.now().astimezone().replace(microsecond=0),
        software_version=__version__,
        notes=tuple(notes) + tuple(figure_notes),
    )


def patient_identity(dicom_path) -> dict:
    """Patient name, ID, birth date and study date from the first DICOM file of a file/folder.

    Empty dict for non-DICOM inputs (NIfTI carries no patient metadata).
    """
    import pydicom

    path = Path(dicom_path)
    candidates = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for candidate in candidates[:16]:
        try:
            ds = pydicom.dcmread(candidate, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: try the next file
            continue
        return {key: str(ds.get(tag)) for key, tag in (("patient_name", "PatientName"), ("patient_id", "PatientID"),
                                                       ("birth_date", "PatientBirthDate"), ("study_date", "StudyDate"))
                if ds.get(tag) not in (None, "")}
    return {}


def case_summary(case_id: str, volumes=(), slide: CaseSlide | None = None, expected=VOLUME_ROLES,
                 expect_slide: bool = True) -> CaseSummary:
    """The case block: identity from DICOM metadata (first volume that has it), inputs present/missing."""
    identity, study_dates = {}, []
    for volume in volumes:
        found = patient_identity(volume.path)
        if found.get("study_date"):
            study_dates.append((volume.role, _iso_date(found["study_date"])))
        for key in ("patient_name", "patient_id", "birth_date"):
            if found.get(key):
                identity.setdefault(key, found[key])
    present = {v.role for v in volumes}
    missing = [role for role in expected if role not in present] + (["slide"] if expect_slide and slide is None else [])
    return CaseSummary(
        case_id=case_id,
        patient_name=identity.get("patient_name"),
        patient_id=identity.get("patient_id"),
        birth_date=_iso_date(identity["birth_date"]) if identity.get("birth_date") else None,
        study_dates=tuple(study_dates),
        sequences=tuple(v.role for v in volumes),
        slide=slide.path if slide else None,
        missing_inputs=tuple(missing),
    )


def _iso_date(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) == 8 else value


__all__ = ["build_report_from_results", "select_model", "model_provenance", "case_summary", "patient_identity",
           "input_files", "PatchAttention", "CaseVolume", "CaseSlide", "PcrResult", "SurvivalResult"]


# -- running the models on a case (integration with the case loader and the predictors) -------

def build_report(case_path, pcr_model_dir=None, survival_model_dir=None, device: str = "auto",
                 progress: ProgressFn | None = None, run_pcr: bool = True, run_survival: bool = True,
                 zoo=None) -> Report:
    """Load the case at ``case_path`` (folder or manifest), run the models, build the report.

    Models: the folders given, else the zoo's model of card kind ``harm3`` / ``crossfusion``.
    A model that is absent, or a prediction that cannot run on this case, becomes a note
    saying which analysis was not run and why; the report is still built.
    """
    from ..progress import scaled
    from .integration import load_case_inputs, run_pcr_model, run_survival_model

    from ..device import pick_device

    pick_device(device)  # a wrong --device is an error before any work
    report_progress(progress, 0.0, "loading the case")
    loaded = load_case_inputs(case_path)
    notes = []
    pcr_model, pcr = _run_analysis("pCR", run_pcr, PCR_KIND, pcr_model_dir, zoo, run_pcr_model, loaded, device,
                                   scaled(progress, 0.1, 0.5), notes)
    survival_model, survival = _run_analysis("Survival", run_survival, SURVIVAL_KIND, survival_model_dir, zoo,
                                             run_survival_model, loaded, device, scaled(progress, 0.5, 0.85), notes)
    return build_report_from_results(
        loaded.summary, loaded.volumes, loaded.slide, pcr=pcr, survival=survival,
        pcr_model=pcr_model, survival_model=survival_model, notes=notes, extra_inputs=loaded.extra_inputs,
        progress=scaled(progress, 0.85, 1.0))


def _run_analysis(label, wanted, kind, explicit, zoo, runner, loaded, device, progress, notes) -> tuple:
    """(model folder, result), both None when the analysis did not run; the reason goes to ``notes``."""
    if not wanted:
        notes.append(f"{label} analysis not run: not asked for")
        return None, None
    model, note = select_model(kind, explicit, zoo)
    if model is None:
        notes.append(f"{label} analysis not run: {note}")
        return None, None
    if note:
        notes.append(note)
    result, reason = runner(model, loaded, device, progress)
    if result is None:
        notes.append(f"{label} analysis not run: {reason}")
        return None, None
    return model, result
