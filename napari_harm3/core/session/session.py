"""The case session: one evented, Qt-free object that owns the open case and everything about it.

The viewer's panels, the report and the command line all go through one :class:`CaseSession`,
so they cannot disagree about a number or a map. It holds:

- the open case (:class:`~.case_data.OpenedCase`: manifest, volumes through the registration
  seam, slide, the case's one µm/px with its source);
- the predictions of both models, each carrying the :class:`~.case_data.CaseRef` it was computed
  for — a result for another case is refused (:meth:`accept`), and closing a case cancels its runs;
- the explanation maps as data (Grad-CAM :class:`VolumeMap` s, :class:`PatchScores`, and the
  one painter's :class:`HeatmapRaster` s), the model cache, and report export.

Threads: :meth:`start_run` returns a :class:`~.runs.PredictionRun` whose ``execute`` may run in a
worker; everything that changes the session (``show``, ``accept``, ``set_slide_mpp``, ``close``)
runs on the caller's thread — the GUI thread in the viewer — and emits its event there.

Events (psygnal): ``case_opened(OpenedCase)``, ``case_closed(CaseRef)``,
``scale_changed(SlideScale)``, ``prediction_changed(analysis, prediction | None)``,
``run_started(PredictionRun)``, ``run_ended(PredictionRun, outcome)`` with outcome one of
``"done"``, ``"cancelled"``, ``"discarded"`` (the case changed), ``"failed: <message>"``, and
``report_written((pdf, json))``, ``masks_changed(CaseRef)`` (a mask drawn in the viewer).
"""

from __future__ import annotations

from psygnal import Signal

from ..device import pick_device
from ..errors import Cancelled, Harm3Error, user_message
from ..explain.heatmap import HeatmapRaster, paint_heatmap
from ..models.registry import select_model
from ..models.zoo import ModelFolder
from ..progress import ProgressFn
from ..vocabulary import ANALYSES
from ..mri.drawn_mask import drawn_mask
from ..mri.tumour_response import TumourResponseReport, case_tumour_response
from . import dicom_results, reporting
from .case_data import MPP_FROM_USER, OpenedCase, SlideScale, open_case_data
from .model_cache import ModelCache
from .runs import PredictionRun


def prediction_patch_scores(analysis: str, prediction) -> dict:
    """{map key: PatchScores} of one prediction's slide maps (survival's attention, pCR's pooling)."""
    if prediction is None:
        return {}
    if analysis == "survival":
        return dict(prediction.attention)
    return {} if prediction.slide_attention is None else {prediction.slide_attention.key: prediction.slide_attention}


def paint_prediction_heatmaps(opened: OpenedCase | None, analysis: str, prediction) -> dict:
    """{(analysis, map key): HeatmapRaster} of ``prediction`` over ``opened``'s slide, for
    :meth:`CaseSession.accept` (pure: a worker paints them, not the viewer's thread)."""
    if opened is None or opened.slide is None or prediction is None:
        return {}
    size = opened.slide.dimensions
    return {(analysis, key): paint_heatmap(scores, size)
            for key, scores in prediction_patch_scores(analysis, prediction).items()}


class CaseSession:
    case_opened = Signal(object)
    case_closed = Signal(object)
    scale_changed = Signal(object)
    prediction_changed = Signal(str, object)
    run_started = Signal(object)
    run_ended = Signal(object, str)
    report_written = Signal(object)
    masks_changed = Signal(object)

    def __init__(self, zoo=None, device: str = "auto"):
        self.zoo = zoo
        self.device = device
        self.models = ModelCache()
        self._opened: OpenedCase | None = None
        self._scale = SlideScale()
        self._predictions: dict = {}
        self._models_used: dict = {}
        self._runs: list = []
        self._heatmaps: dict = {}
        self._response = None

    # -- the open case ----------------------------------------------------------------------
    @property
    def opened(self) -> OpenedCase | None:
        return self._opened

    @property
    def ref(self):
        return None if self._opened is None else self._opened.ref

    @property
    def case(self):
        return None if self._opened is None else self._opened.case

    @property
    def scale(self) -> SlideScale:
        return self._scale

    @property
    def slide(self):
        """The open slide with the case's µm/px (None without a slide)."""
        if self._opened is None or self._opened.slide is None:
            return None
        slide = self._opened.slide
        if self._scale.mpp is not None and slide.mpp != self._scale.mpp:
            return slide.with_mpp(self._scale.mpp)
        return slide

    def open(self, source, progress: ProgressFn | None = None) -> OpenedCase:
        """Read ``source`` (manifest, case folder or ``Case``) and show it (command line, tests)."""
        opened = open_case_data(source, progress=progress)
        self.show(opened)
        return opened

    def show(self, opened: OpenedCase, tumour_response: TumourResponseReport | None = None) -> None:
        """Make ``opened`` the session's case: the previous one's runs are cancelled and its
        results dropped. ``tumour_response``: ``case_tumour_response(opened.volumes)`` measured
        beforehand (in the viewer's reading worker), else measured when first asked for."""
        self.close()
        self._opened = opened
        self._scale = opened.scale
        self._response = tumour_response
        self.case_opened.emit(opened)

    def close(self) -> None:
        """Close the open case (if any): cancel its runs, drop its results, release its slide."""
        if self._opened is None:
            return
        old = self._opened
        for run in list(self._runs):
            run.cancel()
        for analysis in list(self._predictions):
            self._set_prediction(analysis, None)
        self._opened, self._scale, self._heatmaps, self._response = None, SlideScale(), {}, None
        old.close()
        self.case_closed.emit(old.ref)

    def set_slide_mpp(self, mpp: float) -> SlideScale:
        """The user's µm/px for the case's slide: used from now on by every computation; maps
        already shown keep their level-0 geometry and follow the new scale."""
        if self._opened is None or self._opened.slide is None:
            raise Harm3Error("open a case with a slide first")
        try:
            value = float(mpp)
        except (TypeError, ValueError):
            value = float("nan")
        if not (value > 0 and value < 1000):
            raise Harm3Error(f"µm/px must be a positive number (e.g. 0.25 for a 40x scan), got {mpp!r}")
        self._scale = SlideScale(value, MPP_FROM_USER)
        self.scale_changed.emit(self._scale)
        return self._scale

    # -- models and runs --------------------------------------------------------------------
    def model_for(self, analysis: str, folder=None) -> ModelFolder:
        """The model folder to run for ``analysis``: ``folder`` if given, else the zoo's."""
        model, note = select_model(analysis, folder, self.zoo)
        if model is None:
            raise Harm3Error(note)
        return model

    def start_run(self, analysis: str, model=None, device: str | None = None, gradcam: bool = True) -> PredictionRun:
        """A run of ``analysis`` on the open case; call ``run.execute()`` (any thread), then :meth:`accept`."""
        if analysis not in ANALYSES:
            raise Harm3Error(f"unknown analysis {analysis!r}; choose one of {', '.join(ANALYSES)}")
        if self._opened is None:
            raise Harm3Error("open a case first")
        folder = model if isinstance(model, ModelFolder) else self.model_for(analysis, model)
        device = str(pick_device(device or self.device))
        run = PredictionRun(analysis, self._opened, folder, device, self._scale, self.models, gradcam=gradcam)
        self._runs.append(run)
        self.run_started.emit(run)
        return run

    def accept(self, run: PredictionRun, prediction, heatmaps: dict | None = None) -> bool:
        """Keep ``prediction`` if its run belongs to the open case; otherwise drop it (False).
        ``heatmaps``: its rasters painted beforehand (:func:`paint_prediction_heatmaps`, in a worker)."""
        self._forget(run)
        if self._opened is None or prediction.case_ref != self._opened.ref or run.cancelled:
            self.run_ended.emit(run, "discarded")
            return False
        self._models_used[run.analysis] = run.model
        self._set_prediction(run.analysis, prediction, heatmaps)
        self.run_ended.emit(run, "done")
        return True

    def fail(self, run: PredictionRun, exc: BaseException) -> str:
        """Record that ``run`` ended with ``exc``; returns the outcome (``cancelled`` / ``failed: …``)."""
        self._forget(run)
        outcome = "cancelled" if isinstance(exc, Cancelled) else f"failed: {user_message(exc, 'viewer')}"
        self.run_ended.emit(run, outcome)
        return outcome

    def predict(self, analysis: str, model=None, device: str | None = None, progress: ProgressFn | None = None,
                gradcam: bool = True):
        """Run ``analysis`` to the end on this thread and keep the result (command line, batch, tests)."""
        run = self.start_run(analysis, model, device, gradcam=gradcam)
        try:
            prediction = run.execute(progress)
        except BaseException as exc:
            self.fail(run, exc)
            raise
        self.accept(run, prediction)
        return prediction

    def cancel_runs(self) -> None:
        for run in list(self._runs):
            run.cancel()

    @property
    def running(self) -> tuple:
        return tuple(self._runs)

    def _forget(self, run) -> None:
        if run in self._runs:
            self._runs.remove(run)

    def _set_prediction(self, analysis: str, prediction, heatmaps: dict | None = None) -> None:
        if prediction is None:
            self._predictions.pop(analysis, None)
            self._models_used.pop(analysis, None)
        else:
            self._predictions[analysis] = prediction
        self._heatmaps = {k: v for k, v in self._heatmaps.items() if k[0] != analysis}
        if prediction is not None:
            self._heatmaps.update({k: v for k, v in (heatmaps or {}).items() if k[0] == analysis})
        self.prediction_changed.emit(analysis, prediction)

    # -- results as data --------------------------------------------------------------------
    def prediction(self, analysis: str):
        return self._predictions.get(analysis)

    @property
    def predictions(self) -> dict:
        return dict(self._predictions)

    def model_used(self, analysis: str) -> ModelFolder | None:
        return self._models_used.get(analysis)

    def gradcam_maps(self) -> dict:
        """{sequence: VolumeMap} of the pCR prediction (empty without one)."""
        pcr = self._predictions.get("pcr")
        return {} if pcr is None else {k: v for k, v in (pcr.gradcam or {}).items() if v is not None}

    def patch_scores(self) -> dict:
        """{map key: PatchScores} of every slide map held: survival's 5x/10x/20x/final, pCR's pooling."""
        out = prediction_patch_scores("survival", self._predictions.get("survival"))
        out.update(prediction_patch_scores("pcr", self._predictions.get("pcr")))
        return out

    def heatmaps(self) -> dict:
        """{map key: HeatmapRaster} painted by the one painter (cached until the prediction changes)."""
        if self._opened is None or self._opened.slide is None:
            return {}
        size = self._opened.slide.dimensions
        out = {}
        for key, scores in self.patch_scores().items():
            analysis = "pcr" if key == "pooling" else "survival"
            cache_key = (analysis, key)
            if cache_key not in self._heatmaps:
                self._heatmaps[cache_key] = paint_heatmap(scores, size)
            out[key] = self._heatmaps[cache_key]
        return out

    def heatmap(self, key: str) -> HeatmapRaster | None:
        return self.heatmaps().get(key)

    def tumour_response(self):
        """The tumour response of the open case's masks (volume, longest axial diameter, change),
        measured once per case (see ``core/mri/tumour_response.py``)."""
        if self._opened is None:
            return TumourResponseReport()
        if self._response is None:
            self._response = case_tumour_response(self._opened.volumes)
        return self._response

    def set_drawn_mask(self, sequence: str, labels, grid_affine, case_ref=None):
        """The tumour mask the user painted on ``sequence``'s panel (``labels`` on the display grid
        ``grid_affine``) replaces that sequence's mask: the tumour response, the report and the
        DICOM segmentation use it, its origin "drawn". ``case_ref``: the case it was drawn on
        (refused when another case is open). Returns the new tumour response."""
        if self._opened is None or (case_ref is not None and case_ref != self._opened.ref):
            raise Harm3Error("the mask was drawn on a case that is no longer open")
        volumes = self._opened.volumes
        if sequence not in volumes.volumes:
            raise Harm3Error(f"the case has no {sequence} volume to draw a mask on")
        volumes.masks[sequence] = drawn_mask(labels, grid_affine, volumes.volumes[sequence])
        self._response = None
        self.masks_changed.emit(self._opened.ref)
        return self.tumour_response()

    # -- report -----------------------------------------------------------------------------
    def report(self, notes=(), progress: ProgressFn | None = None):
        """The report of the open case from the results held (see :mod:`.reporting`)."""
        return reporting.session_report(self, notes=notes, progress=progress)

    def export_report(self, pdf_path, json_path=None, **options) -> tuple:
        """Write the report's PDF + JSON (atomic, never overwriting unless ``overwrite=True``)."""
        return reporting.export_report(self, pdf_path, json_path, **options)

    def results_text(self, notes=()) -> str:
        return reporting.results_text(self, notes)

    def export_dicom(self, out_dir, **options) -> tuple:
        """Write the results as DICOM SR, SEG, parametric maps and encapsulated PDF (see :mod:`.dicom_results`)."""
        return dicom_results.export_dicom(self, out_dir, **options)

