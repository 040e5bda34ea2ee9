"""Aligning the open case's volumes from the viewer: register T1-post, T2-pre and T2-post onto
T1-pre (``core/mri/registration_case.py``, the same code as ``harm3 align``) in a worker with
progress and cancel, write the transforms into the case's manifest, and open the case again so
every panel, the models and the report use them. To judge the result, *Compare with T1-pre*
lays the reference volume over every other panel (magenta, additive): where the anatomy lines
up, edges coincide."""

from __future__ import annotations

import weakref
from typing import Optional

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from ..core.errors import user_message
from ..core.mri.registration_case import align_case
from ..core.progress import CancelToken
from ..core.vocabulary import REFERENCE_SEQUENCE, SEQUENCE_TITLES


def _align(manifest, token: CancelToken, progress=None):
    return align_case(manifest, progress=token.wrap(progress))


class AlignBox(QGroupBox):
    """*Align volumes*, a progress bar, *Cancel*, *Compare with T1-pre* and the outcome."""

    #: the CaseAlignment after a run (the case is then opened again)
    aligned = Signal(object)
    _progress_signal = Signal(float, str)

    def __init__(self, case_panel, parent=None):
        super().__init__("Registration (pre/post, T1/T2)", parent)
        self._case_panel = weakref.ref(case_panel)  # the panel is our parent: no strong reference back
        self.worker = None
        self._token: Optional[CancelToken] = None
        self._compare_layers: list = []
        self.align_button = QPushButton("Align volumes")
        self.align_button.setObjectName("harm3_align")
        self.align_button.setToolTip("Register T1-post and T2-pre onto T1-pre, T2-post onto T2-pre (mutual information)")
        self.align_button.clicked.connect(self.align)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.compare = QCheckBox(f"Compare with {SEQUENCE_TITLES[REFERENCE_SEQUENCE]}")
        self.compare.setObjectName("harm3_align_compare")
        self.compare.toggled.connect(self.show_comparison)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.status = QLabel("Volumes are shown as the manifest places them.")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.align_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.compare)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._progress_signal.connect(self._on_progress)
        case_panel.case_loaded.connect(self._on_case_loaded)

    @property
    def case_panel(self):
        return self._case_panel()

    def align(self):
        """Register the open case's volumes in a worker; returns it (None when there is nothing to do)."""
        case = self.case_panel.case
        if case is None or case.manifest is None:
            show_error("open a case from its manifest first: the transforms are written next to it")
            return None
        token = CancelToken()
        self._token = token
        emit = self._progress_signal.emit
        worker = thread_worker(_align, ignore_errors=True)(case.manifest, token, progress=lambda f, m: emit(f, m))
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        self.worker = worker
        self._busy(True)
        self.status.setText("Registering…")
        worker.start()
        return worker

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def _busy(self, busy: bool) -> None:
        self.align_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        self.progress.setValue(0)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        self.status.setText(message)

    def _on_done(self, alignment) -> None:
        self.worker, self._token = None, None
        self._busy(False)
        self.status.setText(alignment.line())
        (show_info if alignment.ok else show_error)(alignment.line())
        self.aligned.emit(alignment)
        if any(s.status == "registered" for s in alignment.steps):
            self.case_panel.open_case(alignment.manifest)  # show and use the new transforms

    def _on_error(self, exc: BaseException) -> None:
        self.worker, self._token = None, None
        self._busy(False)
        message = user_message(exc, "viewer")
        self.status.setText(f"Not aligned: {message}")
        show_error(f"alignment: {message}")

    def _on_case_loaded(self, layers) -> None:
        self._compare_layers = []
        registered = [s for s, data in layers.volumes.items() if data[1]["metadata"].get("harm3_registered")]
        self.status.setText("Registered onto T1-pre: " + ", ".join(SEQUENCE_TITLES[s] for s in registered)
                            if registered else "Volumes are shown as the manifest places them (no registration).")
        if self.compare.isChecked():
            self.show_comparison(True)

    def show_comparison(self, on: bool) -> int:
        """Lay T1-pre over every other panel (on) or take it away; returns the layers shown."""
        grid = self.case_panel.grid
        for layer in self._compare_layers:
            for panel in grid.panels.values():
                if layer in panel.model.layers:
                    panel.model.layers.remove(layer)
        self._compare_layers = []
        layers = self.case_panel.case_layers
        if not on or layers is None or REFERENCE_SEQUENCE not in layers.volumes:
            return 0
        data, kwargs, _ = layers.volumes[REFERENCE_SEQUENCE]
        for seq, panel in grid.panels.items():
            if seq == REFERENCE_SEQUENCE or panel.volume_layer is None:
                continue
            self._compare_layers.append(grid.add_overlay(
                seq, data, kind="image", affine=kwargs["affine"], name=f"{SEQUENCE_TITLES[REFERENCE_SEQUENCE]} (compare)",
                colormap="magenta", blending="additive", opacity=0.5, contrast_limits=kwargs["contrast_limits"]))
        return len(self._compare_layers)
