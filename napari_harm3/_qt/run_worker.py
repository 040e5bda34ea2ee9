"""The worker-thread bodies of the Models tab: a model run, and everything its display needs that
takes time — the slide heatmaps painted, the gallery's top patches read off the slide — so the
viewer's thread only adds layers when the result lands; and the report export."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..core.session.session import paint_prediction_heatmaps, prediction_patch_scores
from .patch_inspector import gallery_tiles


#: the most progress reports per second a run sends to the viewer's thread
PROGRESS_RATE_HZ = 4.0


class ThrottledProgress:
    """A progress callback that forwards at most ``rate_hz`` reports a second (always the final
    one): feature extraction reports per batch, and every report repaints the window."""

    def __init__(self, emit, rate_hz: float = PROGRESS_RATE_HZ):
        self._emit = emit
        self._interval = 1.0 / rate_hz
        self._last = float("-inf")

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self._interval:
            return
        self._last = now
        self._emit(fraction, message)


@dataclass(frozen=True, eq=False)
class RunResult:
    run: object
    prediction: object
    heatmaps: dict = field(default_factory=dict)   # {(analysis, map key): HeatmapRaster}
    gallery: dict | None = None                    # survival: gallery_tiles(...)
    seconds: float = 0.0                           # the worker's time: the run and its display data


def execute_run(run, progress=None) -> RunResult:
    """Worker body: the run's prediction and its display data; an exception carries its run."""
    started = time.perf_counter()
    try:
        prediction = run.execute(progress)
        heatmaps = paint_prediction_heatmaps(run.opened, run.analysis, prediction)
        gallery = None
        if run.analysis == "survival":
            gallery = gallery_tiles(run.opened.slide, prediction_patch_scores(run.analysis, prediction))
        return RunResult(run, prediction, heatmaps, gallery, time.perf_counter() - started)
    except BaseException as exc:
        exc.harm3_run = run
        raise


def write_report(session, pdf, overwrite: bool, deidentify: bool, case_ref, writer=None):
    """Worker body of *Export report…*: ``case_ref`` is the case the user asked for (read on the
    GUI thread), so a case opened meanwhile is refused rather than exported. ``writer``: the
    panel's report process (``ReportWriterProcess.write``): the PDF is rendered there, not in
    this process, whose GIL the window needs."""
    return session.export_report(pdf, overwrite=overwrite, deidentify=deidentify, require_results=True,
                                 case_ref=case_ref, writer=writer)
