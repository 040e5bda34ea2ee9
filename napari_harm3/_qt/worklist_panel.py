"""The Worklist tab of the case panel: a cohort as a table, opened one case after another.

``install_worklist(case_panel)`` adds a :class:`WorklistPanel` (also ``case_panel.worklist``).
*Open cohort…* reads a cohort CSV (or a folder of case folders) into the core's
:class:`~napari_harm3.core.cohort.worklist.Worklist`; the table is a thin view of it (filter and
sort are the core's). **Enter** or a double-click opens the case in the case session (through
``case_panel.show_case``); **Next / Previous** (``Ctrl+Right`` / ``Ctrl+Left``) move along the
table's current order. After each case is shown the next one along the direction of travel is
read in the background by the core's one-case :class:`~napari_harm3.core.session.prefetch.Prefetcher`,
so switching to it only shows what was read; the case left behind is released by the session.

*Predict* (selected or all) and *Export reports* run the core's worklist batch in a worker with
progress and *Cancel*; each result carries its case id and fills that case's row, whatever is
open meanwhile. Predictions are kept in the worklist's ``predictions.csv``, reports in its
``reports/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.cohort.model_refs import choose_models
from ..core.cohort.worklist import open_worklist
from ..core.cohort.worklist_batch import predict_task, report_task
from ..core.cohort.worklist_filters import PRESET_FILTERS, neighbour
from ..core.errors import Harm3Error, user_message
from ..core.session.prefetch import Prefetcher
from .case_panel import _read_case
from .startup_gc import freeze_heap, unfreeze_heap
from .worklist_batches import ALL, REPORTS, BatchBox
from .worklist_table import CASE_ID_ROLE, WorklistModel, WorklistProxy, WorklistTable

NEXT_KEYS, PREVIOUS_KEYS = "Ctrl+Right", "Ctrl+Left"


def _take_or_read(prefetcher: Prefetcher, case_id: str, case, token):
    """Worker body: the prefetched layers of ``case_id`` if held, else read now; (token, layers, prefetched)."""
    layers = prefetcher.take(case_id)
    if layers is not None:
        return token, layers, True
    try:
        return token, _read_case(case), False
    except BaseException as exc:
        exc.harm3_token = token
        raise


class WorklistPanel(QWidget):
    """Cohort table, open / Next / Previous with prefetch, batch predict and report export."""

    #: case id, after its case is shown in the viewers (from the worklist)
    case_shown = Signal(str)
    #: (case id, one-line message) when a case could not be opened
    case_failed = Signal(str, str)
    #: (case id) after a batch row filled the table
    row_updated = Signal(str)
    #: the rows of a batch when it ended (done or cancelled)
    batch_finished = Signal(object)

    def __init__(self, case_panel, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_worklist")
        self.case_panel = case_panel
        self.session = case_panel.session
        self.worklist = None
        self.current: str | None = None
        self.direction = 1
        self.prefetch_enabled = True
        self.prefetcher = Prefetcher(load=_read_case)
        self.worker = None
        self._token = None
        self._showing = None  # (token, layers, prefetched) of the case being put into the viewers
        self._build()
        case_panel.case_loaded.connect(self._on_panel_loaded)
        case_panel.case_failed.connect(self._on_panel_failed)

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open cohort…")
        self.open_button.setToolTip("A cohort table (cohort.csv); Cancel to pick a folder of case folders instead")
        self.open_button.clicked.connect(self._choose_cohort)
        row.addWidget(self.open_button)
        self.source_label = QLabel("No cohort open.")
        self.source_label.setWordWrap(True)
        row.addWidget(self.source_label, 1)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.presets = QComboBox()
        for title in PRESET_FILTERS:
            self.presets.addItem(title, PRESET_FILTERS[title])
        self.presets.activated.connect(self._on_preset)
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("harm3_worklist_filter")
        self.query_edit.setPlaceholderText("filter: missing T2-post, high risk, no report, a case id…")
        self.query_edit.textChanged.connect(self._on_query)
        row.addWidget(self.presets)
        row.addWidget(self.query_edit, 1)
        layout.addLayout(row)

        self.model = WorklistModel(self)
        self.proxy = WorklistProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = WorklistTable()
        self.table.setObjectName("harm3_worklist_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.doubleClicked.connect(self._on_double_click)
        layout.addWidget(self.table, 1)
        self.table.enter_pressed.connect(self.open_selected)

        row = QHBoxLayout()
        self.previous_button = QPushButton(f"◀ Previous ({PREVIOUS_KEYS})")
        self.previous_button.clicked.connect(self.previous_case)
        self.next_button = QPushButton(f"Next ({NEXT_KEYS}) ▶")
        self.next_button.clicked.connect(self.next_case)
        self.prefetch_box = QCheckBox("Prefetch next")
        self.prefetch_box.setChecked(True)
        self.prefetch_box.toggled.connect(self.set_prefetch)
        row.addWidget(self.previous_button)
        row.addWidget(self.next_button)
        row.addWidget(self.prefetch_box)
        layout.addLayout(row)
        for keys, slot in ((NEXT_KEYS, self.next_case), (PREVIOUS_KEYS, self.previous_case)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

        self.batches = BatchBox()
        self.batches.requested.connect(self._batch_requested)
        self.batches.row_done.connect(self._on_batch_row)
        self.batches.finished.connect(self._on_batch_finished)
        layout.addWidget(self.batches)
        self.status = QLabel("Open a cohort: its CSV table or a folder of case folders.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

    # -- the cohort -------------------------------------------------------------------
    def _choose_cohort(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open cohort table", "", "Cohort tables (*.csv);;All files (*)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "…or a folder of case folders")
        if path:
            self.open_cohort(path)

    def open_cohort(self, source) -> bool:
        """Read a cohort into the table; a bad table is one notification (False)."""
        try:
            worklist = open_worklist(source)
        except Harm3Error as exc:
            message = user_message(exc, "viewer")
            self.status.setText(f"Cohort not opened: {message}")
            show_error(message)
            return False
        self.prefetcher.discard()
        freeze_heap()
        self.worklist, self.current = worklist, None
        self.model.set_worklist(worklist)
        self.source_label.setText(f"{Path(source).name}: {len(worklist)} cases")
        problems = sum(1 for r in worklist.rows if r.problems)
        self.status.setText(f"{len(worklist)} cases" + (f", {problems} with problems (see their rows)" if problems else ""))
        for note in worklist.notes:
            show_warning(note)
        if hasattr(self.case_panel, "setCurrentWidget"):
            self.case_panel.setCurrentWidget(self)  # the table in front
        return True

    def _on_preset(self, _index: int) -> None:
        self.set_query(self.presets.currentData())

    def _predict_selected_clicked(self) -> None:
        self.predict(self.selected_ids())

    def _predict_all_clicked(self) -> None:
        self.predict(self.proxy.case_ids())

    def _export_clicked(self) -> None:
        self.export_reports(self.selected_ids())

    def set_query(self, query: str) -> None:
        self.query_edit.setText(query or "")

    def _on_query(self, text: str) -> None:
        self.proxy.set_query(text)

    def selected_ids(self) -> list:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.proxy.index(r, 0).data(CASE_ID_ROLE) for r in rows]

    def set_prefetch(self, enabled: bool) -> None:
        self.prefetch_enabled = bool(enabled)
        if not enabled:
            self.prefetcher.discard()

    # -- opening and moving -----------------------------------------------------------
    def _on_double_click(self, index) -> None:
        self.open_case_id(index.data(CASE_ID_ROLE))

    def open_selected(self):
        ids = self.selected_ids()
        return self.open_case_id(ids[0]) if ids else None

    def next_case(self):
        return self._step(1)

    def previous_case(self):
        return self._step(-1)

    def _step(self, step: int):
        if self.worklist is None:
            return None
        order = self.proxy.case_ids()
        target = self._openable_neighbour(order, step)
        if target is None:
            self.status.setText("No further case in this order." if order else "No case matches the filter.")
            return None
        self.direction = 1 if step > 0 else -1
        return self.open_case_id(target)

    def _openable_neighbour(self, order, step: int):
        target = neighbour(order, self.current, step)
        while target is not None and not self.worklist.row(target).openable:
            target = neighbour(order, target, step)
        return target

    def open_case_id(self, case_id: str):
        """Open ``case_id`` in the case session (prefetched: at once; else read in a worker)."""
        row = self.worklist.row(case_id)
        if not row.openable:
            message = f"{case_id} cannot be opened: " + ("; ".join(row.problems) or "no MRI and no slide")
            show_warning(message)
            self.case_failed.emit(case_id, message)
            return None
        self.current = case_id
        self._select(case_id)
        token = object()
        self._token = token
        worker = thread_worker(_take_or_read, ignore_errors=True)(self.prefetcher, case_id, row.readable_case(), token)
        worker.returned.connect(self._on_case_read)
        worker.errored.connect(self._on_case_error)
        self.worker = worker
        self.status.setText(f"Opening {case_id}…")
        worker.start()
        return worker

    def _select(self, case_id: str) -> None:
        r = self.proxy.proxy_row_of(case_id)
        if r >= 0:
            self.table.selectRow(r)
            self.table.scrollTo(self.proxy.index(r, 0))

    def _on_case_read(self, result) -> None:
        token, layers, prefetched = result
        if token is not self._token:  # superseded by a later open: release what it read
            layers.opened.close()
            return
        self.worker = None
        # put into the viewers in event-loop turns (the window answers); "shown" comes after
        self._showing = (token, layers, prefetched)
        self.case_panel.show_case(layers, staged=True)

    def _on_panel_loaded(self, layers) -> None:
        if self._showing is None or self._showing[1] is not layers:
            return  # a case opened some other way (the Case tab, File ▸ Open)
        token, _, prefetched = self._showing
        self._showing = None
        if token is not self._token:
            return
        lacks = self.worklist.row(self.current).missing()
        self.status.setText(f"{self.current}{' (prefetched)' if prefetched else ''}"
                            + (f"; lacks {', '.join(lacks)}" if lacks else ""))
        self.case_shown.emit(self.current)
        self._prefetch_next()

    def _on_panel_failed(self, message: str) -> None:
        if self._showing is None:
            return
        self._showing = None
        self.status.setText(f"{self.current} could not be shown: {message}")
        self.case_failed.emit(self.current, message)

    def _on_case_error(self, exc: BaseException) -> None:
        if getattr(exc, "harm3_token", None) is not self._token:
            return
        self.worker = None
        message = user_message(exc, "viewer")
        case_id = self.current
        self.worklist.mark_unreadable(case_id, message)
        self.model.case_changed(case_id)
        self.status.setText(f"{case_id} could not be opened: {message}")
        show_error(f"{case_id}: {message}")
        self.case_failed.emit(case_id, message)

    def _prefetch_next(self) -> None:
        """Read ahead the case Next (or Previous, going backwards) will open; at an end of the
        order, the one the other way (the only way left)."""
        if not self.prefetch_enabled or self.worklist is None:
            return
        order = self.proxy.case_ids()
        target = self._openable_neighbour(order, self.direction) or self._openable_neighbour(order, -self.direction)
        if target is None:
            self.prefetcher.discard()
        else:
            self.prefetcher.prefetch(target, self.worklist.row(target).readable_case())

    # -- batches ----------------------------------------------------------------------
    def _models(self):
        workflow = getattr(self.case_panel, "workflow", None)
        chosen = {a: workflow.pickers[a].folder() for a in ("pcr", "survival")} if workflow is not None else {}
        models, _notes = choose_models(chosen.get("pcr"), chosen.get("survival"), zoo=self.session.zoo)
        device = workflow.device_choice() if workflow is not None else self.session.device
        return models, device or "auto"

    def _report_writer(self):
        """The Models tab's report process's ``write``: the batch's PDFs are rendered there, not
        in the window's process (in its worker thread they took the GIL from the window)."""
        workflow = getattr(self.case_panel, "workflow", None)
        writer = getattr(workflow, "report_writer", None)
        return writer.write if writer is not None else None

    def _batch_requested(self, kind: str) -> None:
        ids = self.proxy.case_ids() if kind == ALL else self.selected_ids()
        (self.export_reports if kind == REPORTS else self.predict)(ids)

    def predict(self, case_ids, task=None):
        """Both models on ``case_ids`` in a worker; rows fill the table as they come. ``task``:
        another per-case function (case → CaseRow), instead of the models chosen in the Models tab."""
        return self._start_batch(case_ids, "predict", task)

    def export_reports(self, case_ids):
        """Both models and the report of each of ``case_ids`` into the worklist's reports folder."""
        return self._start_batch(case_ids, "report")

    def _start_batch(self, case_ids, kind: str, task=None):
        if self.worklist is None:
            show_error("open a cohort first")
            return None
        cases = [self.worklist.row(i).case for i in case_ids if self.worklist.row(i).case is not None]
        try:
            if not cases:
                raise Harm3Error("no case to run: select cases in the worklist (rows whose manifest can be read)")
            if task is None:
                models, device = self._models()
                task = (predict_task(models, device) if kind == "predict"
                        else report_task(models, self.worklist.reports_dir, device, self._report_writer()))
        except Harm3Error as exc:
            show_error(user_message(exc, "viewer"))
            return None
        return self.batches.start(cases, task, "Predicting" if kind == "predict" else "Writing reports for")

    def cancel_batch(self) -> None:
        self.batches.cancel()

    def _on_batch_row(self, row) -> None:
        if self.worklist is None or row.case_id not in self.worklist:
            return
        self.worklist.set_prediction(row)  # by the row's own case id
        self.model.case_changed(row.case_id)
        try:
            self.worklist.save_predictions()
        except (OSError, Harm3Error) as exc:
            self.status.setText(f"predictions not saved: {user_message(exc, 'viewer')}")
        self.row_updated.emit(row.case_id)

    def _on_batch_finished(self, rows, _cancelled: bool) -> None:
        self.batch_finished.emit(rows)

    def close(self) -> bool:
        self.cancel_batch()
        self.prefetcher.close()
        unfreeze_heap()  # what froze with the cohort can be collected again
        return super().close()


def install_worklist(case_panel) -> WorklistPanel:
    """Add the "Worklist" tab to ``case_panel`` (also ``case_panel.worklist``)."""
    panel = WorklistPanel(case_panel)
    case_panel.add_tab(panel, "Worklist")
    case_panel.worklist = panel
    return panel
