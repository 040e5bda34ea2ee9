"""The PACS tab: search the configured PACS, retrieve a study into a case folder and open it,
send a folder of results back.

``PacsPanel(open_case=callback)`` is a plain QWidget (no viewer needed): the lead's case panel
adds it as a tab and passes its ``open_case(manifest_path)``. Every network call runs in a napari
``thread_worker`` around the core functions of :mod:`napari_harm3.core.pacs` (find, retrieve_case,
send_folder); progress comes back through a Qt signal, *Cancel* sets a
:class:`~napari_harm3.core.progress.CancelToken` so the retrieval stops at its next report and
removes its scratch folder. Errors become one line in the status label and the ``failed`` signal.
Patient names and IDs are shown only with *Show identifiers* ticked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import Cancelled, one_line
from ..core.progress import CancelToken

COLUMNS = ("Study / series", "Date", "Modality", "Objects", "UID")
UID_ROLE = Qt.ItemDataRole.UserRole


def _config(path: str, show_identifiers: bool):
    from ..core.pacs.config import load_pacs_config

    config = load_pacs_config(path.strip() or None)
    return dataclasses.replace(config, log_identifiers=show_identifiers)


def _search(path, show, patient_id, study_uid):
    from ..core.pacs.query import find_studies

    return find_studies(_config(path, show), patient_id=patient_id or None, study_uid=study_uid or None)


def _retrieve(path, show, study_uid, out_dir, progress=None):
    from ..core.pacs.study_case import retrieve_case

    return retrieve_case(_config(path, show), study_uid, out_dir, progress=progress)


def _send(path, show, folder, progress=None):
    from ..core.pacs.store import send_folder

    return send_folder(_config(path, show), folder, progress=progress)


class PacsPanel(QWidget):
    """Search, retrieve into a case, send results (see the module docstring)."""

    studies_found = Signal(object)       # tuple of StudyRecord
    case_retrieved = Signal(object)      # RetrievedCase (after open_case was called)
    retrieval_cancelled = Signal()
    results_sent = Signal(object)        # SendResult
    failed = Signal(str)                 # one-line message
    _progress_signal = Signal(float, str)

    def __init__(self, open_case: Optional[Callable] = None, config_path=None, cases_dir=None, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_pacs_panel")
        self.open_case_callback = open_case
        self.cases_dir = Path(cases_dir) if cases_dir else Path.home() / "harm3-cases"
        self.studies: tuple = ()
        self.worker = None
        self._cancel: Optional[CancelToken] = None
        self._operation = ""
        self._progress_signal.connect(self._on_progress)
        self._build(config_path)

    # -- layout -------------------------------------------------------------------------
    def _build(self, config_path) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.config_edit = QLineEdit(str(config_path) if config_path else "")
        self.config_edit.setPlaceholderText("default: $HARM3_PACS_CONFIG or ~/.config/harm3/pacs.yaml")
        browse = QPushButton("…")
        browse.clicked.connect(self._choose_config)
        row = QHBoxLayout()
        row.addWidget(self.config_edit)
        row.addWidget(browse)
        form.addRow("PACS config", row)
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("patient ID (* and ? allowed)")
        self.study_edit = QLineEdit()
        self.study_edit.setPlaceholderText("study instance UID")
        form.addRow("Patient ID", self.patient_edit)
        form.addRow("Study UID", self.study_edit)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(lambda: self.search())
        self.identifiers_box = QCheckBox("Show identifiers")
        self.identifiers_box.toggled.connect(lambda _: self._fill_tree())
        row.addWidget(self.search_button)
        row.addWidget(self.identifiers_box)
        row.addStretch(1)
        layout.addLayout(row)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.tree, 1)
        row = QHBoxLayout()
        self.case_dir_edit = QLineEdit()
        self.case_dir_edit.setPlaceholderText("case folder to create")
        self.retrieve_button = QPushButton("Retrieve")
        self.retrieve_button.clicked.connect(lambda: self.retrieve())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.case_dir_edit, 1)
        row.addWidget(self.retrieve_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.send_button = QPushButton("Send results…")
        self.send_button.setToolTip("C-STORE every DICOM object of a folder to the PACS")
        self.send_button.clicked.connect(lambda: self.send_results())
        layout.addWidget(self.send_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumBlockCount(500)
        layout.addWidget(self.details)

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "PACS config", "", "Config (*.yaml *.yml *.json)")
        if path:
            self.config_edit.setText(path)

    # -- results table --------------------------------------------------------------------
    def _fill_tree(self) -> None:
        self.tree.clear()
        show = self.identifiers_box.isChecked()
        for study in self.studies:
            title = study.description or "(no description)"
            if show:
                title = f"{study.patient_name} [{study.patient_id}] — {title}"
            item = QTreeWidgetItem([title, study.date, "/".join(study.modalities),
                                    "" if study.n_instances is None else str(study.n_instances), study.uid])
            item.setData(0, UID_ROLE, study.uid)
            for series in study.series:
                child = QTreeWidgetItem([series.description or "(no description)", "", series.modality,
                                         "" if series.n_instances is None else str(series.n_instances), series.uid])
                child.setData(0, UID_ROLE, study.uid)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        for column in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(column)

    def selected_study_uid(self) -> Optional[str]:
        items = self.tree.selectedItems()
        return items[0].data(0, UID_ROLE) if items else None

    def select_study(self, uid: str) -> None:
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if item.data(0, UID_ROLE) == uid:
                self.tree.setCurrentItem(item)
                return

    def _on_selection(self) -> None:
        uid = self.selected_study_uid()
        study = next((s for s in self.studies if s.uid == uid), None)
        if study is not None:
            name = f"{study.date or 'study'}_{study.uid.rsplit('.', 1)[-1][-8:]}"
            self.case_dir_edit.setText(str(self.cases_dir / name))

    # -- running ---------------------------------------------------------------------------
    def _run(self, function, *args, on_done, busy: str, cancellable: bool = False):
        if self.worker is not None:
            self._fail("another PACS operation is running; wait for it or cancel it")
            return None
        self._operation = function.__name__.strip("_")
        token = CancelToken()
        self._cancel = token
        kwargs = {}
        if cancellable:
            emit = self._progress_signal.emit  # emitted from the worker thread, delivered here
            kwargs["progress"] = token.wrap(lambda f, m: emit(f, m))
        worker = thread_worker(function, ignore_errors=True)(*args, **kwargs)
        worker.returned.connect(on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        for button in (self.search_button, self.retrieve_button, self.send_button):
            button.setEnabled(False)
        self.cancel_button.setEnabled(cancellable)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(busy)
        worker.start()
        return worker

    def _on_finished(self) -> None:
        """The panel idle again (called by each result handler and by the worker's finished)."""
        self.worker = None
        for button in (self.search_button, self.retrieve_button, self.send_button):
            button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        if message:
            self.status.setText(message)

    def _on_error(self, exc: BaseException) -> None:
        self._on_finished()  # before the signals, so listeners see the panel idle
        if isinstance(exc, Cancelled):
            sending = self._operation == "send"
            self.status.setText("Sending cancelled; objects already stored stay in the PACS" if sending
                                else "Retrieval cancelled; nothing was kept")
            if not sending:
                self.retrieval_cancelled.emit()
            return
        self._fail(one_line(exc))

    def _fail(self, message: str) -> None:
        self.status.setText(f"PACS: {message}")
        self.failed.emit(message)

    def cancel(self) -> None:
        """Stop the running retrieval at its next progress report (its scratch folder is removed)."""
        if self._cancel is not None:
            self._cancel.cancel()

    # -- actions ---------------------------------------------------------------------------
    def search(self, patient_id: Optional[str] = None, study_uid: Optional[str] = None):
        """C-FIND studies (and their series) by patient ID or study UID; returns the worker."""
        patient_id = self.patient_edit.text().strip() if patient_id is None else patient_id
        study_uid = self.study_edit.text().strip() if study_uid is None else study_uid
        if not (patient_id or study_uid):
            self._fail("give a patient ID or a study UID to search for")
            return None
        return self._run(_search, self.config_edit.text(), self.identifiers_box.isChecked(), patient_id, study_uid,
                         on_done=self._on_found, busy="Searching…")

    def _on_found(self, studies) -> None:
        self._on_finished()  # before the signals, so listeners see the panel idle
        self.studies = tuple(studies)
        self._fill_tree()
        n_series = sum(len(s.series) for s in self.studies)
        self.status.setText(f"{len(self.studies)} studies, {n_series} series")
        self.studies_found.emit(self.studies)

    def retrieve(self, study_uid: Optional[str] = None, out_dir=None):
        """Retrieve a study (default: the selected one) into a new case folder, then open it."""
        study_uid = study_uid or self.selected_study_uid()
        out_dir = out_dir or self.case_dir_edit.text().strip()
        if not study_uid:
            self._fail("select a study to retrieve")
            return None
        if not out_dir:
            self._fail("choose the case folder to create")
            return None
        return self._run(_retrieve, self.config_edit.text(), self.identifiers_box.isChecked(), study_uid,
                         Path(out_dir), on_done=self._on_retrieved, busy="Retrieving…", cancellable=True)

    def _on_retrieved(self, result) -> None:
        self._on_finished()  # before the signals, so listeners see the panel idle
        r = result.retrieval
        self.details.setPlainText("\n".join(result.lines()))
        self.status.setText(f"Retrieved {r.n_objects} objects ({r.n_bytes / 1e6:.1f} MB) by {r.method} in "
                            f"{r.seconds:.1f} s into {result.manifest.parent}")
        if self.open_case_callback is not None:
            self.open_case_callback(result.manifest)
        self.case_retrieved.emit(result)

    def send_results(self, folder=None):
        """C-STORE every DICOM object under ``folder`` (asked for when not given)."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder of DICOM results to send")
            if not folder:
                return None
        return self._run(_send, self.config_edit.text(), self.identifiers_box.isChecked(), Path(folder),
                         on_done=self._on_sent, busy="Sending…", cancellable=True)

    def _on_sent(self, result) -> None:
        self._on_finished()  # before the signals, so listeners see the panel idle
        lines = [f"{'ok' if o.ok else 'FAILED'}  {o.path.name}  {o.status}" for o in result.objects]
        self.details.setPlainText("\n".join(lines))
        self.status.setText(f"Sent {result.n_ok} of {len(result.objects)} objects")
        if result.failed:
            self._fail(f"{len(result.failed)} of {len(result.objects)} objects were not stored")
        self.results_sent.emit(result)
