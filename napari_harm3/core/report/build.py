"""Build a :class:`~.model.Report` from what the case session holds: the case, its predictions,
the maps the one painter made. No model runs here (the session runs them).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom

from ... import __version__
from ..explain.heatmap import HeatmapRaster, tissue_coverage
from ..hashing import sha256_path
from ..progress import ProgressFn, report as report_progress
from ..vocabulary import SEQUENCES, ordered_sequences, sequence_title
from .figures import mri_figure, slide_thumbnail, tissue_pixels, top_patch_tiles
from .model import CaseSummary, InputFile, ModelProvenance, PcrSection, Report, SlideFigure, SurvivalSection, WeightHash

TOP_K_PATCHES = 4
NORMALISATION = ("colour = the patch's percentile rank among this slide's patches (0 = least, 1 = most "
                 "attended); each patch covers its whole footprint; no colour where no patch lies")


def model_provenance(folder) -> ModelProvenance:
    """Card facts and weight sha256 of a zoo ``ModelFolder``."""
    card = folder.card
    return ModelProvenance(name=card.name, kind=card.kind, version=card.version, card_summary=card.summary,
                           weights=tuple(WeightHash(w.file, w.sha256) for w in card.weights), path=str(folder.path))


def pcr_section(prediction) -> PcrSection:
    return PcrSection(
        model_name=prediction.model, probability=float(prediction.probability), spread=float(prediction.spread),
        fold_probabilities=tuple(float(p) for p in prediction.fold_probabilities),
        threshold=float(prediction.threshold), missing_inputs=tuple(prediction.missing_inputs),
        gradcam_method=prediction.gradcam_method, youden_threshold=prediction.youden_threshold,
        verdict=prediction.verdict())


def survival_section(prediction) -> SurvivalSection:
    """The survival block: the prediction's own ensemble curve, group and landmarks (no recomputation)."""
    return SurvivalSection(
        model_name=prediction.model, risk=float(prediction.risk),
        times_months=tuple(float(t) for t in prediction.months),
        survival=tuple(float(s) for s in prediction.survival_curve),
        risk_group=prediction.risk_group, risk_threshold=prediction.risk_threshold,
        fold_risks=tuple(float(r) for r in prediction.fold_risks), tail_open=prediction.t_max_months is None,
        missing_inputs=tuple(prediction.missing_inputs), risk_spread=float(prediction.risk_spread),
        risk_percentile=prediction.risk_percentile, landmarks=tuple(prediction.landmarks().items()))


def mri_figures(volumes, masks, gradcam) -> tuple:
    """Key slices in sequence order: each volume with its Grad-CAM map and tumour mask where they
    share its grid; a map or mask on another grid is left out with a note."""
    figures, notes = [], []
    for seq in ordered_sequences(volumes):
        volume = volumes[seq]
        data = np.asarray(volume.data)
        cam = gradcam.get(seq)
        cam = None if cam is None else np.asarray(cam.data)
        if cam is not None and cam.shape != data.shape:
            notes.append(f"Grad-CAM of {seq} not shown: its grid {cam.shape} differs from the volume's {data.shape}")
            cam = None
        mask = masks.get(seq)
        mask = None if mask is None else np.asarray(mask.data) > 0
        if mask is not None and mask.shape != data.shape:
            mask = None
        figures.append(mri_figure(sequence_title(seq), data, volume.spacing, overlay=cam, mask=mask))
    return tuple(figures), notes


def slide_figure(slide_path, slide, heatmaps: dict, patch_scores: dict, top_k: int = TOP_K_PATCHES) -> SlideFigure:
    """Thumbnail, the painter's rasters (by label) with their tissue coverage, top patches per map."""
    thumbnail, downsample = slide_thumbnail(slide)
    tissue = tissue_pixels(thumbnail)
    rasters, coverage, tiles = {}, {}, {}
    for key, raster in heatmaps.items():
        raster: HeatmapRaster
        rasters[raster.label] = raster
        coverage[raster.label] = round(tissue_coverage(raster, tissue, downsample), 4)
        tiles[raster.label] = top_patch_tiles(slide, patch_scores[key], k=top_k)
    return SlideFigure(slide_name=str(slide_path), thumbnail=thumbnail, downsample=float(downsample),
                       heatmaps=rasters, top_patches=tiles, coverage=coverage, normalisation=NORMALISATION)


def input_files(volumes: dict, slide_path=None, extra=()) -> tuple:
    """(InputFile, ...) with sha256 of every file the report is computed from (folders: see hashing)."""
    entries = [(seq, volumes[seq].source) for seq in ordered_sequences(volumes)]
    entries += [("slide", str(slide_path))] if slide_path else []
    entries += list(extra)
    return tuple(InputFile(role=role, path=str(path), sha256=sha256_path(path)) for role, path in entries)


def patient_identity(dicom_path) -> dict:
    """Patient name, ID, birth date and study date from the first DICOM file of a file/folder
    (empty for NIfTI, which carries no patient metadata)."""
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


def case_summary(case_id: str, volumes: dict, slide_path=None, expect_slide: bool = True) -> CaseSummary:
    """The case block: identity from DICOM metadata (first volume that has it), inputs present/missing."""
    identity, study_dates = {}, []
    for seq in ordered_sequences(volumes):
        found = patient_identity(volumes[seq].source)
        if found.get("study_date"):
            study_dates.append((seq, _iso_date(found["study_date"])))
        for key in ("patient_name", "patient_id", "birth_date"):
            if found.get(key):
                identity.setdefault(key, found[key])
    missing = [seq for seq in SEQUENCES if seq not in volumes] + (["slide"] if expect_slide and not slide_path else [])
    return CaseSummary(case_id=case_id, patient_name=identity.get("patient_name"),
                       patient_id=identity.get("patient_id"),
                       birth_date=_iso_date(identity["birth_date"]) if identity.get("birth_date") else None,
                       study_dates=tuple(study_dates), sequences=tuple(ordered_sequences(volumes)),
                       slide=str(slide_path) if slide_path else None, missing_inputs=tuple(missing))


def _iso_date(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) == 8 else value


def build_report(case_id: str, volumes: dict, masks: dict | None = None, slide_path=None, slide=None,
                 pcr=None, survival=None, pcr_model=None, survival_model=None, heatmaps: dict | None = None,
                 patch_scores: dict | None = None, notes=(), extra_inputs=(), created: datetime | None = None,
                 top_k: int = TOP_K_PATCHES, tumour_response=None, progress: ProgressFn | None = None) -> Report:
    """A report from a case (``volumes``/``masks``: {sequence: Volume}) and the predictions held.

    ``pcr_model`` / ``survival_model``: the ``ModelFolder`` each prediction came from (provenance);
    ``heatmaps`` / ``patch_scores``: {map key: HeatmapRaster / PatchScores} of the slide maps;
    ``notes``: sentences to show (e.g. why an analysis was not run)."""
    report_progress(progress, 0.0, "report: figures")
    mri, figure_notes = mri_figures(volumes, masks or {}, {} if pcr is None else dict(pcr.gradcam or {}))
    report_progress(progress, 0.3, "report: slide")
    figure = None
    if slide is not None:
        figure = slide_figure(slide_path, slide, heatmaps or {}, patch_scores or {}, top_k)
    report_progress(progress, 0.7, "report: hashing inputs")
    inputs = input_files(volumes, slide_path, extra_inputs)
    models = tuple(model_provenance(m) for m in (pcr_model, survival_model) if m is not None)
    report_progress(progress, 1.0, "report: ready")
    return Report(
        case=case_summary(case_id, volumes, slide_path),
        pcr=None if pcr is None else pcr_section(pcr),
        survival=None if survival is None else survival_section(survival),
        mri_figures=mri, slide_figure=figure, models=models, inputs=inputs,
        created=created or datetime.now().astimezone().replace(microsecond=0),
        software_version=__version__, notes=tuple(notes) + tuple(figure_notes), tumour_response=tumour_response,
    )
