"""The Worklist tab's batch row: *Predict selected*, *Predict all*, *Export reports*, *Cancel*,
and the worker that runs the core's worklist batch (``core/cohort/worklist_batch.py``) with its
progress. It knows no worklist: the tab asks for a batch (:attr:`BatchBox.requested`), gives it
the cases and the per-case task (:meth:`BatchBox.start`) and takes the rows as they come
(:attr:`BatchBox.row_done`, delivered on the GUI thread, each naming its case)."""

from __future__ import annotations

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.cohort.worklist_batch import run_worklist_batch
from ..core.errors import user_message
from ..core.progress import CancelToken

#: what a button asks for
SELECTED, ALL, REPORTS = "predict selected", "predict all", "reports"


class BatchBox(QWidget):
    """Buttons, progress bar and status line of the worklist's batches."""

    #: one of SELECTED, ALL, REPORTS (a button was pressed)
    requested = Signal(str)
    #: a CaseRow, as each case finishes
    row_done = Signal(object)
    #: (rows, cancelled) when the batch ended; ([], False) when it stopped on an error
    finished = Signal(object, bool)
    _progress_signal = Signal(float, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = None
        self._token: CancelToken | None = None
        self._progress_signal.connect(self._on_progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.buttons = {}
        for kind, title in ((SELECTED, "Predict selected"), (ALL, "Predict all"), (REPORTS, "Export reports (selected)")):
            button = QPushButton(title)
            button.setProperty("harm3_batch", kind)
            button.clicked.connect(self._button_clicked)
            row.addWidget(button)
            self.buttons[kind] = button
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._set_busy(False)

    def _button_clicked(self) -> None:
        self.requested.emit(str(self.sender().property("harm3_batch")))

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, cases, task, label: str):
        """Run ``task`` on each of ``cases`` in a worker; returns it (None while another runs)."""
        if self.worker is not None:
            show_warning("a batch is already running: wait for it or cancel it")
            return None
        token = CancelToken()
        emit_row, emit_progress = self.row_done.emit, self._progress_signal.emit
        worker = thread_worker(run_worklist_batch, ignore_errors=True)(
            cases, task, on_row=emit_row, token=token, progress=lambda f, m: emit_progress(f, m))
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        self.worker, self._token = worker, token
        self._set_busy(True)
        self.status.setText(f"{label} {len(cases)} cases…")
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the batch before its next case (the case in flight finishes)."""
        if self._token is not None:
            self._token.cancel()
            self.status.setText("Cancelling after the case in flight…")

    def _on_progress(self, fraction: float, message: str) -> None:
        if self.worker is not None:
            self.progress.setValue(round(100 * fraction))
            self.status.setText(message)

    def _ended(self) -> bool:
        cancelled = self._token is not None and self._token.cancelled
        self.worker, self._token = None, None
        self._set_busy(False)
        return cancelled

    def _on_done(self, rows) -> None:
        cancelled = self._ended()
        failed = [r for r in rows if r.status not in ("ok", "partial")]
        text = (f"{len(rows)} cases run" + (" (cancelled)" if cancelled else "")
                + (f", {len(failed)} not predicted (see their rows)" if failed else ""))
        self.status.setText(text)
        show_info(text)
        self.finished.emit(rows, cancelled)

    def _on_error(self, exc: BaseException) -> None:
        self._ended()
        message = user_message(exc, "viewer")
        self.status.setText(f"Batch stopped: {message}")
        show_error(message)
        self.finished.emit([], False)

    def _set_busy(self, busy: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)
