"""Results as DICOM, from the viewer: write the session's SR, SEG, parametric maps and encapsulated
PDF into a folder (in a worker), then send that folder to the PACS (the PACS tab's C-STORE)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..core.errors import user_message


def _export(session, folder: Path, deidentify: bool):
    written, notes = session.export_dicom(folder, deidentify=deidentify, overwrite=False)
    return folder, written, notes


class DicomExportBox(QGroupBox):
    """*Export DICOM…* (deidentified when ``deidentify()`` says so) and *Send to PACS*."""

    #: (folder, written objects) after an export; or the one-line error
    dicom_written = Signal(object, object)
    dicom_failed = Signal(str)

    def __init__(self, session, deidentify: Callable[[], bool], send: Optional[Callable] = None, parent=None):
        super().__init__("Results as DICOM (SR, SEG, maps, PDF)", parent)
        self.session = session
        self._deidentify = deidentify
        self._send = send
        self.folder: Optional[Path] = None
        self.export_button = QPushButton("Export DICOM…")
        self.export_button.setObjectName("harm3_export_dicom")
        self.export_button.clicked.connect(self._export_clicked)
        self.send_button = QPushButton("Send to PACS")
        self.send_button.setObjectName("harm3_send_dicom")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send)
        self.status = QLabel("Needs a case whose MRI (or slide) came from DICOM.")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)

    def _export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Empty folder for the DICOM objects")
        if folder:
            self.export(Path(folder) / f"{self.session.ref}_dicom")

    def export(self, folder):
        """Write the objects into ``folder`` (must not exist or be empty) in a worker; returns it."""
        if self.session.opened is None:
            show_error("open a case first")
            return None
        worker = thread_worker(_export, ignore_errors=True)(self.session, Path(folder), self._deidentify())
        worker.returned.connect(self._on_written)
        worker.errored.connect(self._on_error)
        self.export_button.setEnabled(False)
        self.status.setText("Writing DICOM objects…")
        worker.start()
        return worker

    def _on_written(self, result) -> None:
        folder, written, notes = result
        self.folder = folder
        self.export_button.setEnabled(True)
        self.send_button.setEnabled(self._send is not None)
        self.status.setText(f"{len(written)} DICOM objects in {folder}" + "".join(f"\nnote: {n}" for n in notes))
        show_info(f"{len(written)} DICOM objects written to {folder}")
        self.dicom_written.emit(folder, written)

    def _on_error(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        message = user_message(exc, "viewer")
        self.status.setText(f"DICOM not written: {message}")
        show_error(f"DICOM export: {message}")
        self.dicom_failed.emit(message)

    def send(self):
        """Send the last exported folder through the PACS tab (its configured peer)."""
        if self.folder is None or self._send is None:
            return None
        return self._send(self.folder)
