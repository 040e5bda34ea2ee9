"""The Models tab of the case panel: a view of the case session that runs the models and shows their results.

``install_workflow(case_panel)`` adds a :class:`WorkflowPanel` as the case panel's "Models" tab.
A button press asks the session for a run (``session.start_run``), executes it in a napari
``thread_worker`` with progress (the tab's bar and status line) and *Cancel*, and hands
the result back to the session (``session.accept``), which keeps it only if the case it was
computed for is still open. Everything shown — results text, Grad-CAM in the MRI panels, slide
heatmaps, the patch gallery, the exported report — is read from the session when it says a
prediction changed; opening another case cancels the running model and clears every overlay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                            QMessageBox, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from ..core.device import available_devices
from ..core.errors import Harm3Error, user_message
from ..core.report.write import report_paths
from ..core.report.writer_process import ReportWriterProcess
from ..core.vocabulary import ANALYSIS_TITLES
from .case_panel import CasePanel
from .dicom_export_box import DicomExportBox
from .draw_mask_box import install_draw_mask_box
from .mask_legend import install_mask_legend
from .model_picker import ModelPicker
from .overlay_controls import OverlayControls
from .pacs_panel import PacsPanel
from .overlay_layers import OverlayLayers
from .patch_inspector import PatchInspector
from .patch_view import PatchGallery, PatchView
from .results_view import ResultsView
from .run_worker import ThrottledProgress, execute_run, write_report
from .status_note import confirm
from .weak import weak_callback
from .worklist_panel import install_worklist


class WorkflowPanel(QWidget):
    """Models, run buttons, results, overlay controls, patch gallery and report export."""

    #: (analysis, prediction) after a run's result was accepted and shown
    run_finished = Signal(str, object)
    #: (analysis, one-line message; "cancelled", or "discarded" when the case changed meanwhile)
    run_failed = Signal(str, str)
    #: (pdf path, json path) after the report was written; or the one-line error
    report_written = Signal(object)
    report_failed = Signal(str)
    _progress_signal = Signal(float, str)

    def __init__(self, napari_viewer, case_panel: CasePanel, zoo=None, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_workflow")
        self.viewer = napari_viewer
        self.case_panel = case_panel
        self.session = case_panel.session
        if zoo is not None:
            self.session.zoo = zoo
        self.worker = None
        self.last_error: Optional[BaseException] = None
        self._run = None
        self._gallery_ready = None
        self._finished: list = []  # runs done whose maps are still going in
        self._progress_signal.connect(self._on_progress)
        self._build(zoo)
        self.overlays = OverlayLayers(napari_viewer, case_panel.grid, self.session, self.overlay_controls.values)
        self.report_writer = ReportWriterProcess()  # Export renders there: not in this GIL (the window's)
        self.patches = PatchInspector(napari_viewer, self.session, self.overlays, self.gallery, self.patch_view,
                                      case_panel.slide_view.minimap)
        self.session.case_opened.connect(self._on_case_opened)
        self.session.case_closed.connect(self._on_case_closed)
        self.session.prediction_changed.connect(self._on_prediction)
        self.session.scale_changed.connect(self._on_scale)
        self.session.run_ended.connect(self._on_run_ended)

    # -- layout -----------------------------------------------------------------------
    def _build(self, zoo) -> None:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        models = QGroupBox("Models")
        form = QFormLayout(models)
        self.pickers = {"pcr": ModelPicker("pcr", zoo), "survival": ModelPicker("survival", zoo)}
        form.addRow("pCR", self.pickers["pcr"])
        form.addRow("Survival", self.pickers["survival"])
        self.device = QComboBox()
        self.device.setObjectName("harm3_device")
        for label, value in available_devices():
            self.device.addItem(label, value)
        form.addRow("Device", self.device)
        layout.addWidget(models)

        self.buttons = {"pcr": QPushButton("Predict pCR"), "survival": QPushButton("Predict survival")}
        row = QHBoxLayout()
        for analysis, button in self.buttons.items():
            button.setObjectName(f"harm3_run_{analysis}")
            button.setProperty("harm3_analysis", analysis)
            button.clicked.connect(self._run_clicked)
            row.addWidget(button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("Open a case, then run a model.")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.results_view = ResultsView()
        layout.addWidget(self.results_view)
        self.overlay_controls = OverlayControls(lambda: self.overlays.restyle())
        layout.addWidget(self.overlay_controls)
        top = QGroupBox("Top patches (survival attention)")
        self.gallery = PatchGallery()
        QVBoxLayout(top).addWidget(self.gallery)
        layout.addWidget(top)
        self.patch_view = PatchView()
        export = QHBoxLayout()
        self.export_button = QPushButton("Export report…")
        self.export_button.setObjectName("harm3_export_report")
        self.export_button.clicked.connect(self._export_clicked)
        self.deidentify = QCheckBox("De-identify")
        self.deidentify.setObjectName("harm3_export_deidentify")
        self.deidentify.setToolTip("Remove names, IDs and dates; pseudonymise the case id; file names only")
        export.addWidget(self.export_button)
        export.addWidget(self.deidentify)
        layout.addLayout(export)
        self.dicom = DicomExportBox(self.session, self.deidentify.isChecked, send=weak_callback(self._send_to_pacs))
        layout.addWidget(self.dicom)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        QVBoxLayout(self).addWidget(scroll)
        self._set_busy(False)

    # -- runs -------------------------------------------------------------------------
    @property
    def case(self):
        return self.session.case

    @property
    def results(self) -> dict:
        """{analysis: prediction} the session holds for the open case."""
        return self.session.predictions

    def overlay_layers(self) -> list:
        return self.overlays.all()

    @property
    def gallery_patches(self) -> dict:
        return self.patches.gallery_patches

    def show_patch_at(self, world_yx):
        return self.patches.show_patch_at(world_yx)

    def _run_clicked(self) -> None:
        self.run(str(self.sender().property("harm3_analysis")))

    def device_choice(self) -> str:
        return self.device.currentData()

    def run(self, analysis: str):
        """Start ``analysis`` ("pcr" / "survival") on the open case; returns the worker (or None)."""
        if self.worker is not None:
            show_warning("a model is already running: wait for it or cancel it")
            return None
        if self.case is None:
            show_error("open a case first")
            return None
        folder = self.pickers[analysis].folder()
        if folder is None:
            show_error(f"no {ANALYSIS_TITLES[analysis]} model in the model zoo; pick a model folder")
            return None
        try:
            run = self.session.start_run(analysis, folder, self.device_choice())
        except Harm3Error as exc:
            show_error(user_message(exc, "viewer"))
            return None
        emit = self._progress_signal.emit  # from the worker thread, delivered in the GUI thread
        worker = thread_worker(execute_run, ignore_errors=True)(run, progress=ThrottledProgress(lambda f, m: emit(f, m)))
        worker.returned.connect(self._on_returned)  # bound methods: Qt keeps no strong reference
        worker.errored.connect(self._on_errored)
        self.worker, self._run, self.last_error = worker, run, None
        self._set_busy(True)
        self.status.setText(f"{ANALYSIS_TITLES[analysis]} on {run.case_ref}: starting…")
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running model at its next progress report."""
        if self._run is not None:
            self._run.cancel()
            self.status.setText("Cancelling…")

    def _set_busy(self, busy: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def _on_progress(self, fraction: float, message: str) -> None:
        # no napari progress bar (activity dock) as well: it runs processEvents per update and its
        # animated "in progress" GIF repaints the whole window, ~15 times a second for the whole run
        if self.worker is None:  # a report queued before the run ended
            return
        self.progress.setValue(int(round(100 * fraction)))
        self.status.setText(message)

    def _detach(self, run) -> bool:
        """Forget ``run`` as the tab's current one; True when it was."""
        if run is not self._run:
            return False
        self.worker, self._run = None, None
        self._set_busy(False)
        return True

    def _on_returned(self, result) -> None:
        self._detach(result.run)
        self._gallery_ready = result.gallery  # read in the worker: _on_prediction shows it
        try:  # refused when the case changed meanwhile
            self.session.accept(result.run, result.prediction, result.heatmaps)
        finally:
            self._gallery_ready = None

    def _on_errored(self, exc: BaseException) -> None:
        run = getattr(exc, "harm3_run", None)
        self._detach(run)
        self.last_error = exc
        if run is not None:
            self.session.fail(run, exc)

    def _on_run_ended(self, run, outcome: str) -> None:
        title = ANALYSIS_TITLES[run.analysis]
        if outcome == "done":
            self.status.setText(f"{title}: done")
            self._finished.append(run.analysis)
            if not self.overlays.going_in():
                self._announce_finished()
            return
        if outcome == "discarded":
            message = f"{title} result for case {run.case_ref} discarded: another case is open"
            self.status.setText(message)
            show_info(message)
            self.run_failed.emit(run.analysis, "discarded")
            return
        if outcome == "cancelled":
            self.status.setText(f"{title}: cancelled")
            show_info(f"{title} cancelled")
            self.run_failed.emit(run.analysis, "cancelled")
            return
        message = outcome.removeprefix("failed: ")
        self.status.setText(f"{title} failed: {message}")
        show_error(f"{title}: {message}")
        self.run_failed.emit(run.analysis, message)

    # -- the session's results, shown ----------------------------------------------------
    def _on_prediction(self, analysis: str, prediction) -> None:
        self.overlays.stop_turns()  # an earlier run's maps still going in give way
        slide = self.case_panel.slide_view.layer
        if prediction is None:
            self.overlays.remove(analysis)
        else:  # the new layers go in over event-loop turns; "run finished" once they are in
            self.overlays.show_in_turns(analysis, slide, then=self._announce_finished)
        if analysis == "survival":
            self.patches.fill_gallery(prediction is not None, tiles=self._gallery_ready)
        self.refresh_results()

    def _announce_finished(self) -> None:
        """``run_finished`` of the runs done, once their maps are in the viewers (or gave way)."""
        done, self._finished = self._finished, []
        if done:
            self.report_writer.start_in_background()  # a report needs a run: its process starts now
        for analysis in done:
            self.run_finished.emit(analysis, self.session.prediction(analysis))

    def refresh_results(self) -> str:
        return self.results_view.show_session(self.session)

    def _on_case_opened(self, _opened) -> None:
        self.refresh_results()
        self.status.setText("Case open: run a model.")

    def _on_case_closed(self, ref) -> None:
        self.overlays.stop()  # no map of the closed case goes in after it, no restyle goes on
        if self._run is not None and self._run.case_ref == ref:
            self.status.setText(f"case {ref} closed: its run is cancelled")
            self._detach(self._run)
        self.overlays.remove()
        self.patches.fill_gallery(False)
        self.refresh_results()

    def _on_scale(self, _scale) -> None:
        self.overlays.finish_turns_now()  # all maps in, then all placed at the new scale
        self.overlays.rescale()
        self.refresh_results()

    # -- report -----------------------------------------------------------------------
    def _export_clicked(self) -> None:
        if not self.session.predictions:
            show_error("run pCR or survival first: a report needs a model's results")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export report (PDF + JSON next to it)",
                                              f"{self.session.ref}_report.pdf", "PDF (*.pdf)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return
        existing = [p for p in report_paths(path) if p.exists()]
        overwrite = False
        if existing:
            answer = QMessageBox.question(self, "Replace report?", "Replace " + " and ".join(str(p) for p in existing) + "?")
            if answer != QMessageBox.StandardButton.Yes:
                self.status.setText("Report not written: the files exist and were kept")
                show_info("report not written: the files exist and were kept")
                return
            overwrite = True
        self.export_report(path, overwrite=overwrite)

    def export_report(self, pdf_path, overwrite: bool = False, deidentify: bool | None = None):
        """Write the session's report (PDF + JSON) in a worker; returns it (None when refused)."""
        deidentify = self.deidentify.isChecked() if deidentify is None else deidentify
        problem = None
        if not self.session.predictions:
            problem = "run pCR or survival first: a report needs a model's results"
        elif not overwrite and any(p.exists() for p in report_paths(pdf_path)):
            problem = f"{report_paths(pdf_path)[0].name} (or its .json) exists: not replaced; choose another name"
        if problem:
            show_error(problem)
            self.report_failed.emit(problem)
            return None
        worker = thread_worker(write_report, ignore_errors=True)(self.session, Path(pdf_path), overwrite, deidentify,
                                                                 self.session.ref, self.report_writer.write)
        worker.returned.connect(self._on_report)
        worker.errored.connect(self._on_report_error)
        self.export_button.setEnabled(False)
        self.status.setText("Writing the report…")
        worker.start()
        return worker

    def _on_report(self, paths) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"Report written: {paths[0]} and {paths[1].name}")
        confirm(self.viewer, f"report written: {paths[0]}")  # the status line says it: no pop-up
        self.report_written.emit(paths)

    def _on_report_error(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        message = user_message(exc, "viewer")
        self.status.setText(f"Report not written: {message}")
        show_error(f"report: {message}")
        self.report_failed.emit(message)

    def _send_to_pacs(self, folder):
        pacs = getattr(self.case_panel, "pacs", None)
        return None if pacs is None else pacs.send_results(folder)

    def close(self) -> bool:
        self.cancel()
        self.overlays.stop()
        for signal, slot in ((self.session.case_opened, self._on_case_opened),
                             (self.session.case_closed, self._on_case_closed),
                             (self.session.prediction_changed, self._on_prediction),
                             (self.session.scale_changed, self._on_scale),
                             (self.session.run_ended, self._on_run_ended)):
            signal.disconnect(slot)
        self.session.models.clear()
        self.patches.close()
        self.report_writer.close()
        return super().close()


def install_workflow(case_panel, zoo=None) -> WorkflowPanel:
    """Add the "Models" tab (and the "PACS" tab) to ``case_panel``; returns the Models tab (also as
    ``case_panel.workflow``; the PACS tab is ``case_panel.pacs``) and the mask legend to the Case tab."""
    install_mask_legend(case_panel)
    install_draw_mask_box(case_panel)  # paint a tumour mask in a panel, measure it
    panel = WorkflowPanel(case_panel.viewer, case_panel, zoo=zoo)
    case_panel.add_tab(panel, "Models")
    case_panel.workflow = panel
    case_panel.pacs = PacsPanel(open_case=weak_callback(case_panel.open_case))
    case_panel.add_tab(case_panel.pacs, "PACS")
    install_worklist(case_panel)  # the "Worklist" tab: a cohort's cases, Next / Previous, batches
    return panel


class CasePanelWithWorkflow(CasePanel):
    """The manifest's widget: the case panel with its Models tab. A class, because napari
    finds the ``napari_viewer`` argument by inspecting ``__init__``."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        install_workflow(self)

    def close_viewers(self) -> None:
        """Stop the Models tab's runs and drop its overlays, then close the linked viewers."""
        self.workflow.close()
        super().close_viewers()
