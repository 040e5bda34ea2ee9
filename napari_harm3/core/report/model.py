"""The report as data: every number, the provenance and the figure data of one case.

A :class:`Report` is built once (:mod:`.build`), then rendered: to a PDF for people
(:mod:`.render_pdf`) and to JSON for machines (:mod:`.render_json`, from :meth:`Report.to_json_dict`).
Figures are data here (2D float maps in [0, 1], RGB thumbnails); colour is applied by the renderer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Mapping

import numpy as np

from ..resources import resource
from .arrays import array_to_json

JSON_SCHEMA = "napari-harm3.report/1"


@lru_cache(maxsize=1)
def report_text() -> dict:
    """Fixed wording of the report (notice, section titles) from ``resources/templates``."""
    return json.loads(resource("templates", "report_text.json").read_text(encoding="utf-8"))


def research_use_notice() -> str:
    return report_text()["research_use_notice"]


@dataclass(frozen=True)
class CaseSummary:
    """Who and what the report is about. Identifying fields are ``None`` once de-identified."""

    case_id: str
    patient_name: str | None = None
    patient_id: str | None = None
    birth_date: str | None = None
    study_dates: tuple = ()  # ((what, "YYYY-MM-DD"), ...)
    sequences: tuple = ()  # MRI volumes present, e.g. ("t1_pre", "t1_post", ...)
    slide: str | None = None  # slide file name
    missing_inputs: tuple = ()  # what the case lacks, e.g. ("t2_post",)
    pseudonymised: bool = False


@dataclass(frozen=True)
class PcrSection:
    """HARM3-Fusion result: ensemble mean probability of pCR, its spread and each fold's value."""

    model_name: str
    probability: float
    spread: float
    fold_probabilities: tuple
    threshold: float = 0.5
    missing_inputs: tuple = ()
    gradcam_method: str = ""  # what the MRI maps show, e.g. "hirescam, evidence both"
    youden_threshold: float | None = None
    verdict: str = ""         # the prediction's own verdict (no class where the thresholds disagree)


@dataclass(frozen=True)
class SurvivalSection:
    """CrossFusion result: risk (= -sum S), its group and the survival curve S(t) in months.

    ``times_months[i]`` is where the step ``survival[i]`` starts (``times_months[0] = 0`` with
    S = 1); ``tail_open`` means the last bin has no finite end (S after it is not placed in time).
    """

    model_name: str
    risk: float
    times_months: tuple
    survival: tuple
    risk_group: str | None = None  # "high" / "low", or None when the model gives no threshold
    risk_threshold: float | None = None
    fold_risks: tuple = ()
    tail_open: bool = False
    missing_inputs: tuple = ()
    risk_spread: float = 0.0
    risk_percentile: float | None = None  # where the risk falls in the training cohort (0–100)
    landmarks: tuple = ()                 # ((months, S), ...) e.g. S at 12 and 24 months

    @property
    def median_survival_months(self) -> float | None:
        """First time S(t) drops to 0.5 or below, None when it stays above."""
        for time, value in zip(self.times_months, self.survival):
            if value <= 0.5:
                return float(time)
        return None


@dataclass(frozen=True, eq=False)
class MriFigure:
    """One key slice of one MRI volume with its Grad-CAM overlay and tumour mask (row, col)."""

    sequence: str
    slice_index: int
    slice_count: int
    slice_reason: str  # "largest tumour cross-section", "Grad-CAM peak" or "volume centre"
    image: np.ndarray  # (rows, cols) float
    overlay: np.ndarray | None = None  # (rows, cols) float in [0, 1]
    mask: np.ndarray | None = None  # (rows, cols) bool
    spacing: tuple = (1.0, 1.0)  # (row mm, col mm)


@dataclass(frozen=True, eq=False)
class PatchTile:
    """A top-attended slide patch: level-0 (x, y) of its corner, its size, score and pixels."""

    coords: tuple
    size: int                 # footprint: side in level-0 pixels
    score: float
    rgb: np.ndarray  # (h, w, 3) uint8
    magnification: int = 0


@dataclass(frozen=True, eq=False)
class SlideFigure:
    """Slide thumbnail with the attention maps and the top patches per map.

    ``heatmaps`` maps a label (e.g. ``"CrossFusion 5x attention"``) to the painter's
    :class:`~napari_harm3.core.explain.heatmap.HeatmapRaster` — the very raster the viewer
    shows — drawn over the thumbnail at its own resolution; ``coverage`` the share of the
    thumbnail's tissue each map covers; ``top_patches`` the same labels → tiles.
    """

    slide_name: str
    thumbnail: np.ndarray  # (H, W, 3) uint8
    downsample: float  # level-0 pixels per thumbnail pixel
    heatmaps: Mapping = field(default_factory=dict)
    top_patches: Mapping = field(default_factory=dict)
    coverage: Mapping = field(default_factory=dict)
    normalisation: str = ""  # what a map's value means (the painter's one choice)


@dataclass(frozen=True)
class WeightHash:
    file: str
    sha256: str


@dataclass(frozen=True)
class ModelProvenance:
    """Which model produced a section: card facts and the sha256 of every weight file."""

    name: str
    kind: str
    version: str
    card_summary: str
    weights: tuple = ()  # (WeightHash, ...)
    path: str = ""


@dataclass(frozen=True)
class InputFile:
    """An input of the case with its role (e.g. ``t1_pre``, ``slide``) and sha256."""

    role: str
    path: str
    sha256: str


@dataclass(frozen=True, eq=False)
class Report:
    """Everything a per-patient report shows; renderers add layout and colour only."""

    case: CaseSummary
    pcr: PcrSection | None
    survival: SurvivalSection | None
    mri_figures: tuple = ()  # (MriFigure, ...)
    slide_figure: SlideFigure | None = None
    models: tuple = ()  # (ModelProvenance, ...)
    inputs: tuple = ()  # (InputFile, ...)
    created: datetime | None = None  # None once de-identified
    software_version: str = ""
    notes: tuple = ()  # plain sentences: analyses not run and why, flags
    tumour_response: object = None  # core.mri.tumour_response.TumourResponseReport (masks measured)
    research_use_notice: str = field(default_factory=research_use_notice)
    is_deidentified: bool = False

    def deidentified(self, salt: str = "") -> "Report":
        """A copy without names, identifiers or dates; the case id becomes a stable pseudonym."""
        from .deidentify import deidentify_report  # lazy: import cycle (deidentify imports this module's types)

        return deidentify_report(self, salt=salt)

    def with_notes(self, *notes: str) -> "Report":
        return replace(self, notes=tuple(self.notes) + tuple(notes))

    def to_json_dict(self) -> dict:
        """The report as JSON-ready data: numbers as numbers, figures as shape + small previews."""
        return {
            "schema": JSON_SCHEMA,
            "research_use_notice": self.research_use_notice,
            "deidentified": self.is_deidentified,
            "created": self.created.isoformat(timespec="seconds") if self.created else None,
            "software_version": self.software_version,
            "case": _case_json(self.case),
            "pcr": _pcr_json(self.pcr),
            "survival": _survival_json(self.survival),
            "models": [_model_json(m) for m in self.models],
            "inputs": [{"role": f.role, "path": f.path, "sha256": f.sha256} for f in self.inputs],
            "notes": list(self.notes),
            "tumour_response": None if self.tumour_response is None else self.tumour_response.to_dict(),
            "figures": {
                "mri": [_mri_json(f) for f in self.mri_figures],
                "slide": _slide_json(self.slide_figure),
            },
        }


def _case_json(case: CaseSummary) -> dict:
    return {
        "case_id": case.case_id,
        "patient_name": case.patient_name,
        "patient_id": case.patient_id,
        "birth_date": case.birth_date,
        "study_dates": [{"what": what, "date": date} for what, date in case.study_dates],
        "sequences": list(case.sequences),
        "slide": case.slide,
        "missing_inputs": list(case.missing_inputs),
        "pseudonymised": case.pseudonymised,
    }


def _pcr_json(pcr: PcrSection | None) -> dict | None:
    if pcr is None:
        return None
    return {
        "model_name": pcr.model_name,
        "probability": float(pcr.probability),
        "spread": float(pcr.spread),
        "fold_probabilities": [float(p) for p in pcr.fold_probabilities],
        "threshold": float(pcr.threshold),
        "youden_threshold": pcr.youden_threshold,
        "verdict": pcr.verdict,
        "missing_inputs": list(pcr.missing_inputs),
        "gradcam_method": pcr.gradcam_method,
    }


def _survival_json(survival: SurvivalSection | None) -> dict | None:
    if survival is None:
        return None
    return {
        "model_name": survival.model_name,
        "risk": float(survival.risk),
        "risk_spread": float(survival.risk_spread),
        "risk_percentile": survival.risk_percentile,
        "survival_at_months": {f"{m:g}": float(v) for m, v in survival.landmarks},
        "risk_group": survival.risk_group,
        "risk_threshold": None if survival.risk_threshold is None else float(survival.risk_threshold),
        "fold_risks": [float(r) for r in survival.fold_risks],
        "times_months": [float(t) for t in survival.times_months],
        "survival": [float(s) for s in survival.survival],
        "tail_open": survival.tail_open,
        "median_survival_months": survival.median_survival_months,
        "missing_inputs": list(survival.missing_inputs),
    }


def _model_json(model: ModelProvenance) -> dict:
    return {
        "name": model.name,
        "kind": model.kind,
        "version": model.version,
        "card_summary": model.card_summary,
        "path": model.path,
        "weights": [{"file": w.file, "sha256": w.sha256} for w in model.weights],
    }


def _mri_json(figure: MriFigure) -> dict:
    return {
        "sequence": figure.sequence,
        "slice_index": int(figure.slice_index),
        "slice_count": int(figure.slice_count),
        "slice_reason": figure.slice_reason,
        "spacing_mm": [float(s) for s in figure.spacing],
        "image": array_to_json(figure.image),
        "overlay": array_to_json(figure.overlay),
        "mask": array_to_json(None if figure.mask is None else np.asarray(figure.mask, dtype=np.uint8)),
    }


def _slide_json(figure: SlideFigure | None) -> dict | None:
    if figure is None:
        return None
    return {
        "slide_name": figure.slide_name,
        "downsample": float(figure.downsample),
        "thumbnail": array_to_json(figure.thumbnail, max_side=96),
        "normalisation": figure.normalisation,
        "heatmaps": {label: {**array_to_json(raster.sample(figure.thumbnail.shape, figure.downsample)),
                             "raster_shape": list(raster.data.shape),
                             "raster_level0_px_per_pixel": float(raster.downsample),
                             "tissue_coverage": figure.coverage.get(label)}
                     for label, raster in figure.heatmaps.items()},
        "top_patches": {
            label: [{"coords": [int(c) for c in tile.coords], "size": int(tile.size), "score": float(tile.score),
                     "magnification": int(tile.magnification), "rgb": array_to_json(tile.rgb, max_side=24)}
                    for tile in tiles]
            for label, tiles in figure.top_patches.items()
        },
    }
