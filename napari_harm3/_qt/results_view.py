"""Results of the model runs: copyable text and the survival curve S(t) (matplotlib, drawn off
the GUI thread).

``ResultsView.show_session(session)`` shows every number the case session holds (its
``results_text``, the same words as the command line) in a read-only box with a *Copy* button,
and draws S(t) against months with the fold band and the risk group.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (QApplication, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QVBoxLayout,
                            QWidget)

log = logging.getLogger(__name__)

#: the curve's height on screen (logical pixels); its width follows the panel
PLOT_HEIGHT = 200
#: matplotlib dots per logical pixel-inch (its fonts are sized in points)
PLOT_DPI = 100
#: a resize draws the curve again once the size has been still this long
RESIZE_SETTLE_MS = 150


def draw_survival(survival, width_px: int, height_px: int, dpi: float) -> np.ndarray:
    """S(t) of a survival result as an (h, w, 4) uint8 RGBA picture: the ensemble's step curve,
    the fold band, the follow-up beyond the last bin dotted, the risk group in the title. A bare
    ``Figure`` on an Agg canvas (no pyplot, no Qt): it can be drawn in any thread."""
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    # fixed margins, not tight_layout: its text measurements took ~70 ms of every draw
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.88)
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot(111)
    months, curve = survival.months, survival.survival_curve
    ax.fill_between(months, survival.survival_low, survival.survival_high, step="post", alpha=0.25,
                    color="tab:blue", label="fold range")
    ax.step(months, curve, where="post", color="tab:blue", label="S(t), ensemble mean")
    if survival.t_max_months is not None and survival.t_max_months > months[-1]:
        ax.hlines(curve[-1], months[-1], survival.t_max_months, colors="tab:blue", linestyles="dotted")
    group = survival.risk_group
    title = f"{survival.case_id}: {group} risk" if group else f"{survival.case_id}: risk group unknown"
    if survival.risk_threshold is not None:
        title += f" (risk {survival.risk:.2f} vs cohort median {survival.risk_threshold:.2f})"
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("months", fontsize=8)
    ax.set_ylabel("S(t)", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="lower left")
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)  # a copy: the figure goes with this call


class SurvivalPicture(QLabel):
    """The survival curve, drawn by matplotlib in a thread of its own and shown as a picture.

    Drawn on the GUI thread (a Qt matplotlib canvas), each new survival result froze the window
    150–240 ms (``benchmarks/bench_viewer_latency.py --stalls``: axis ticks and text). Each
    request gets a number; a picture that arrives after a newer request (another result, no
    result, a resize) is dropped, so a curve never shows under a result it was not drawn for.
    """

    #: (request number, QImage, device pixel ratio) from the drawing thread
    _drawn = Signal(int, object, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_survival_plot")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(PLOT_HEIGHT)
        self.survival = None
        self.request = 0  # the newest request's number
        self.shown = 0  # the number of the request whose picture is shown (0: none)
        self._drawn.connect(self._on_drawn)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(RESIZE_SETTLE_MS)
        self._settle.timeout.connect(self._draw)
        self.setVisible(False)

    def show_survival(self, survival) -> None:
        """Draw ``survival``'s curve (in the background); None hides the picture."""
        if survival is not None and survival is self.survival:
            return  # shown or on its way (the results are refreshed on many events)
        self.survival = survival
        if survival is None:
            self.request += 1  # a picture still on its way is dropped
            self.clear()
            self.shown = 0
            self.setVisible(False)
            return
        self.setVisible(True)
        self._draw()

    @property
    def up_to_date(self) -> bool:
        """True when the picture shown is the newest request's (or nothing is to be shown)."""
        return self.survival is None or self.shown == self.request

    def _draw(self) -> None:
        if self.survival is None:
            return
        self.request += 1
        ratio = float(self.devicePixelRatioF())
        width = max(self.width(), 240)
        args = (self.request, self.survival, round(width * ratio), round(PLOT_HEIGHT * ratio), PLOT_DPI * ratio, ratio)
        threading.Thread(target=self._draw_in_thread, args=args, name="harm3-survival-plot", daemon=True).start()

    def _draw_in_thread(self, request: int, survival, width: int, height: int, dpi: float, ratio: float) -> None:
        try:
            rgba = draw_survival(survival, width, height, dpi)
            image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], 4 * rgba.shape[1],
                           QImage.Format.Format_RGBA8888).copy()  # owns its pixels (rgba goes)
        except Exception:  # a curve that cannot be drawn leaves the numbers (the text) standing
            log.exception("the survival curve could not be drawn")
            return
        try:
            self._drawn.emit(request, image, ratio)  # queued to the GUI thread
        except RuntimeError:  # the widget was deleted meanwhile
            pass

    def _on_drawn(self, request: int, image, ratio: float) -> None:
        if request != self.request:
            return  # a newer request is on its way
        image.setDevicePixelRatio(ratio)
        self.setPixmap(QPixmap.fromImage(image))
        self.shown = request

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.survival is not None and event.size().width() != event.oldSize().width():
            self._settle.start()


class ResultsView(QWidget):
    """Read-only results text + copy button + survival curve."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_results")
        self.summary = QLabel("No results yet: run a model.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-weight: bold;")
        self.text = QPlainTextEdit()
        self.text.setObjectName("harm3_results_text")
        self.text.setReadOnly(True)
        self.text.setMinimumHeight(120)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy all numbers to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        self.plot = SurvivalPicture()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot)
        row = QHBoxLayout()
        row.addWidget(QLabel("All numbers (copyable):"))
        row.addStretch(1)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        layout.addWidget(self.text, 1)

    def show_session(self, session, notes=()) -> str:
        """Show the session's results (nothing but the open case's)."""
        pcr, survival = session.prediction("pcr"), session.prediction("survival")
        text = session.results_text(notes)
        self.text.setPlainText(text)
        parts = []
        if pcr is not None:
            parts.append(f"p(pCR) {pcr.probability:.2f} ± {pcr.spread:.2f}: {pcr.verdict()}"
                         + (f" — missing: {', '.join(pcr.missing_inputs)}" if pcr.missing_inputs else ""))
        if survival is not None:
            where = f", {survival.risk_percentile:.0f}th percentile" if survival.risk_percentile is not None else ""
            parts.append(f"risk {survival.risk:.2f} ({survival.risk_group or 'group unknown'} risk{where})")
        self.summary.setText(" · ".join(parts) or "No results yet: run a model.")
        self.plot_survival(survival)
        return text

    def plot_survival(self, survival) -> None:
        self.plot.show_survival(survival)

    def copy(self) -> str:
        text = self.text.toPlainText()
        QApplication.clipboard().setText(text)
        return text
