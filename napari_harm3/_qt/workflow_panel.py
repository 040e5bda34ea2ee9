"""The workflow tab of the case panel: run the models, show results and overlays, export the report.

``install_workflow(case_panel)`` adds a :class:`WorkflowPanel` as the case panel's "Models" tab.
Runs happen in napari ``thread_worker`` s around the pure functions of
:mod:`napari_harm3._workflow` (which call the predictors' ``predict_case``); progress goes to the
tab's bar and to napari's activity dock; *Cancel* sets a
:class:`~napari_harm3.core.progress.CancelToken`, so the core stops at its next progress report
(the worker ends with ``Cancelled``). Layers are added in the ``returned`` handlers: Grad-CAM per
MRI panel on its volume's affine, the survival attention per scale over the slide in µm.
Loaded ensembles are kept per (folder, device); slide features are cached by the predictors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from napari.qt.threading import thread_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QMessageBox,
                            QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from ..core.errors import Cancelled
from .case_panel import CasePanel
from ..core.progress import CancelToken
from .. import _workflow as wf
from .model_picker import ModelPicker
from .overlay_controls import OverlayControls
from .patch_view import PatchGallery, PatchView
from .results_view import ResultsView

DEVICES = (("automatic (CUDA → Apple MPS → CPU)", "auto"), ("CUDA GPU", "cuda"), ("Apple MPS", "mps"), ("CPU", "cpu"))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _model_run(analysis: str, folder: str, device: str, case, ensemble, progress=None):
    """Worker body: (analysis, folder, device, ensemble, result); the ensemble is loaded unless given."""
    try:
        if ensemble is None:
            load = wf.load_pcr_model if analysis == "pcr" else wf.load_survival_model
            ensemble = load(folder, device)
        run = wf.run_pcr if analysis == "pcr" else wf.run_survival
        return analysis, folder, device, ensemble, run(ensemble, case, progress=progress)
    except BaseException as exc:
        exc.harm3_analysis = analysis  # which run failed (the errored handler is a bound method)
        raise


def preload_torch() -> None:
    """Import torch, torchvision and grad-cam before napari creates its OpenGL context.

    On these machines, loading torchvision (its import pulls in torch._dynamo → triton's native
    library) after a shown napari viewer exists crashes the process (SIGSEGV), in any thread.
    ``harm3 demo``/``view`` call this before opening the window; see the module notes.
    """
    import importlib

    for name in ("torch", "torchvision", "pytorch_grad_cam"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


class WorkflowPanel(QWidget):
    """Models, run buttons, results, overlay controls, patch gallery and report export."""

    #: (analysis, result) after a run's layers are shown
    run_finished = Signal(str, object)
    #: (analysis, one-line message; "cancelled" when the user cancelled)
    run_failed = Signal(str, str)
    #: (pdf path, json path) after the report was written; or the one-line error
    report_written = Signal(object)
    report_failed = Signal(str)
    _progress_signal = Signal(float, str)

    def __init__(self, napari_viewer, case_panel, zoo=None, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_workflow")
        self.viewer = napari_viewer
        self.case_panel = case_panel
        self.results: dict = {}           # analysis → prediction (PcrPrediction / SurvivalPrediction)
        self.result_models: dict = {}     # analysis → model folder it came from
        self.gallery_patches: dict = {}
        self.overlays: dict = {"pcr": [], "survival": []}
        self.worker = None
        self.last_error: Optional[BaseException] = None
        self._ensembles: dict = {}
        self._cancel: Optional[CancelToken] = None
        self._pbar = None
        self._slide_reader = None
        self._patch_dock = None
        self._progress_signal.connect(self._on_progress)
        self._build(zoo)
        case_panel.case_loaded.connect(self._on_case_loaded)
        napari_viewer.mouse_drag_callbacks.append(self._on_slide_mouse)

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
        for label, value in DEVICES:
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
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.status = QLabel("Open a case, then run a model.")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.results_view = ResultsView()
        layout.addWidget(self.results_view)
        self.overlay_controls = OverlayControls(self.overlay_layers)
        layout.addWidget(self.overlay_controls)
        top = QGroupBox("Top patches (survival attention)")
        self.gallery = PatchGallery()
        self.gallery.patch_clicked.connect(self.show_gallery_patch)
        QVBoxLayout(top).addWidget(self.gallery)
        layout.addWidget(top)
        self.patch_view = PatchView()
        self.export_button = QPushButton("Export report…")
        self.export_button.setObjectName("harm3_export_report")
        self.export_button.clicked.connect(self._export_clicked)
        layout.addWidget(self.export_button)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        QVBoxLayout(self).addWidget(scroll)
        self._set_busy(False)

    # -- runs -------------------------------------------------------------------------
    @property
    def case(self):
        return self.case_panel.case

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
            show_error(f"no {wf.TITLES[analysis]} model: the model zoo ({self._zoo_text()}) has none; pick a model folder")
            return None
        device = self.device_choice()
        token = CancelToken()
        self._cancel = token
        emit = self._progress_signal.emit  # from the worker thread, delivered in the GUI thread
        worker = thread_worker(_model_run, ignore_errors=True)(
            analysis, folder, device, self.case, self._ensembles.get((analysis, folder, device)),
            progress=token.wrap(lambda f, m: emit(f, m)))
        # bound methods only: Qt then keeps no strong reference to the panel (and its viewers)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        self.worker = worker
        self.last_error = None
        self._pbar = napari_progress(total=100, desc=wf.TITLES[analysis])
        self._set_busy(True)
        self.status.setText(f"{wf.TITLES[analysis]}: starting…")
        worker.start()
        return worker

    def _zoo_text(self) -> str:
        from ..core.resources import models_dir

        return str(self.pickers["pcr"].zoo or models_dir())

    def cancel(self) -> None:
        """Stop the running model at its next progress report."""
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.setText("Cancelling…")

    def _set_busy(self, busy: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def _on_progress(self, fraction: float, message: str) -> None:
        if self.worker is None or self._pbar is None:  # a report queued before the run ended
            return
        value = int(round(100 * fraction))
        self.progress.setValue(value)
        self.status.setText(message)
        pbar = self._pbar  # napari's bar may process events (and end the run) while it updates
        if value > pbar.n:
            pbar.update(value - pbar.n)
        pbar.set_description(message[:60])

    def _end_run(self) -> None:
        self.worker = None
        self._cancel = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._set_busy(False)

    def _on_errored(self, exc: BaseException) -> None:
        analysis = getattr(exc, "harm3_analysis", "")
        self._end_run()
        self.last_error = exc
        if isinstance(exc, Cancelled):
            self.status.setText(f"{wf.TITLES.get(analysis, analysis)}: cancelled")
            show_info(f"{wf.TITLES.get(analysis, analysis)} cancelled")
            self.run_failed.emit(analysis, "cancelled")
            return
        message = _one_line(exc)
        self.status.setText(f"{wf.TITLES.get(analysis, analysis)} failed: {message}")
        show_error(f"{wf.TITLES.get(analysis, analysis)}: {message}")
        self.run_failed.emit(analysis, message)

    def _on_returned(self, result) -> None:
        analysis, folder, device, ensemble, outcome = result
        self._ensembles[(analysis, folder, device)] = ensemble
        self._end_run()
        if analysis == "survival":
            self.gallery_patches = outcome.gallery
            outcome = outcome.prediction
            self._show_survival_overlays(outcome)
            self.gallery.set_patches(self.gallery_patches)
        else:
            self._show_pcr_overlays(outcome)
        self.results[analysis] = outcome
        self.result_models[analysis] = folder
        self.overlay_controls.apply()
        self.refresh_results()
        self.status.setText(f"{wf.TITLES[analysis]}: done")
        self.run_finished.emit(analysis, outcome)

    def refresh_results(self) -> str:
        case_id = str(self.case.case_id) if self.case is not None else "—"
        return self.results_view.set_results(case_id, self.results.get("pcr"), self.results.get("survival"))

    # -- overlays ---------------------------------------------------------------------
    def overlay_layers(self) -> list:
        return [layer for layers in self.overlays.values() for layer in layers]

    def _remove_overlays(self, analysis: str) -> None:
        for layer in self.overlays.get(analysis, []):
            for layers in [self.viewer.layers] + [p.model.layers for p in self.case_panel.grid.panels.values()]:
                if layer in layers:
                    layers.remove(layer)
        self.overlays[analysis] = []

    def _show_pcr_overlays(self, prediction) -> None:
        self._remove_overlays("pcr")
        grid = self.case_panel.grid
        for seq, (data, kwargs, _) in wf.gradcam_layers(prediction, self.overlay_controls.colormap.currentText()).items():
            if seq in grid.panels and grid.panels[seq].volume_layer is not None:
                self.overlays["pcr"].append(grid.add_overlay(seq, data, kind="image", **kwargs))
        slide = self.case_panel.slide_view.layer
        att = prediction.slide_attention
        if slide is not None and att is not None and att.coords is not None and len(att.coords) > 1:
            from ..core.explain.crossfusion_attention import patch_step

            layer = self._add_heatmap("pCR pooling attention", att.coords, att.scores, patch_step(att.coords), "pooling")
            layer.visible = False

    def _show_survival_overlays(self, prediction) -> None:
        self._remove_overlays("survival")
        if self.case_panel.slide_view.layer is None:
            return
        for scale in wf.SCALES:
            if scale in prediction.attention:
                coords, scores, size = prediction.attention[scale]
                layer = self._add_heatmap(f"attention {scale}", coords, scores, size, scale)
                layer.visible = scale == "final"

    def _add_heatmap(self, name, coords, scores, patch_size, scale):
        slide = self.case_panel.slide_view.layer
        full = slide.data[0] if slide.multiscale else slide.data
        data, kwargs, _ = wf.heatmap_layer(name, coords, scores, patch_size, full.shape[:2], float(slide.scale[-1]),
                                           colormap=self.overlay_controls.colormap.currentText(),
                                           metadata={"harm3_scale": scale, "harm3_coords": coords,
                                                     "harm3_scores": scores, "harm3_patch_size": int(patch_size)})
        kwargs["units"] = tuple(str(u) for u in slide.units)  # µm, or pixels while the mpp is unknown
        layer = self.viewer.add_image(data, **kwargs)
        self.overlays["pcr" if scale == "pooling" else "survival"].append(layer)
        self.viewer.layers.selection.active = slide  # keep the slide the active layer
        return layer

    def _on_case_loaded(self, _layers=None) -> None:
        for analysis in list(self.overlays):
            self._remove_overlays(analysis)
        self.results, self.result_models, self.gallery_patches = {}, {}, {}
        self._slide_reader = None
        self.gallery.set_patches({})
        self.results_view.set_results(str(self.case.case_id) if self.case is not None else "—")
        self.status.setText("Case open: run a model.")

    # -- patches ----------------------------------------------------------------------
    def _on_slide_mouse(self, viewer, event):
        """A click (no drag) on the slide with a heatmap shown opens that patch at level 0."""
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self.show_patch_at(event.position[-2:])

    def _patch_dock_show(self) -> None:
        window = getattr(self.viewer, "window", None)
        if window is not None and self._patch_dock is None:
            self._patch_dock = window.add_dock_widget(self.patch_view, name="HARM3 patch (full resolution)",
                                                      area="right", add_vertical_stretch=False)

    def show_patch_at(self, world_yx) -> Optional[tuple]:
        """Show the patch of the top-most visible heatmap under world (y, x) µm; (scale, index) or None."""
        slide = self.case_panel.slide_view.layer
        heatmaps = [l for l in self.viewer.layers if l.visible and "harm3_coords" in l.metadata]
        if slide is None or not heatmaps or self.case is None or self.case.slide is None:
            return None
        layer = heatmaps[-1]
        mpp = float(slide.scale[-1])
        x, y = float(world_yx[1]) / mpp, float(world_yx[0]) / mpp
        meta = layer.metadata
        index = wf.patch_at(meta["harm3_coords"], meta["harm3_patch_size"], x, y)
        if index is None:
            return None
        px, py = (int(v) for v in meta["harm3_coords"][index])
        size = int(meta["harm3_patch_size"])
        if self._slide_reader is None:
            from ..core.wsi.slide_source import open_wsi

            self._slide_reader = open_wsi(self.case.slide, mpp=self.case.slide_mpp)
        rgb = wf.read_patch(self._slide_reader, px, py, size)
        self._patch_dock_show()
        self.patch_view.show_patch(rgb, f"{layer.name}: score {float(meta['harm3_scores'][index]):.3f}, level-0 "
                                        f"({px}, {py}), {size}×{size} px")
        return meta["harm3_scale"], index

    def show_gallery_patch(self, scale: str, index: int) -> None:
        x, y, size, score, rgb = self.gallery_patches[scale][index]
        self._patch_dock_show()
        self.patch_view.show_patch(rgb, f"attention {scale} #{index + 1}: score {score:.3f}, level-0 ({x}, {y}), "
                                        f"{size}×{size} px")
        slide = self.case_panel.slide_view.layer
        if slide is not None:
            mpp = float(slide.scale[-1])
            self.case_panel.slide_view.minimap.pan_to((y + size / 2) * mpp, (x + size / 2) * mpp)

    # -- report -----------------------------------------------------------------------
    def _export_clicked(self) -> None:
        if self.case is None:
            show_error("open a case and run a model before exporting a report")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export report (PDF + JSON next to it)",
                                              f"{self.case.case_id}_report.pdf", "PDF (*.pdf)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return
        existing = [p for p in wf.report_paths(path) if p.exists()]
        overwrite = False
        if existing:
            answer = QMessageBox.question(self, "Replace report?", "Replace " + " and ".join(str(p) for p in existing) + "?")
            if answer != QMessageBox.StandardButton.Yes:
                show_info("report not written: the files exist")
                return
            overwrite = True
        self.export_report(path, overwrite=overwrite)

    def export_report(self, pdf_path, overwrite: bool = False):
        """Build the report from the held results and write PDF + JSON in a worker; returns it."""
        if self.case is None:
            show_error("open a case first")
            return None
        if not overwrite and any(p.exists() for p in wf.report_paths(pdf_path)):
            message = f"{wf.report_paths(pdf_path)[0]} (or its .json) exists: not replaced; choose another name"
            show_error(message)
            self.report_failed.emit(message)
            return None
        results = {"pcr": self.results.get("pcr"), "pcr_model": self.result_models.get("pcr"),
                   "survival": self.results.get("survival"), "survival_model": self.result_models.get("survival")}
        worker = thread_worker(wf.export_report, ignore_errors=True)(self.case, Path(pdf_path), overwrite=overwrite,
                                                                    **results)
        worker.returned.connect(self._on_report)
        worker.errored.connect(self._on_report_error)
        self.export_button.setEnabled(False)
        self.status.setText("Writing the report…")
        worker.start()
        return worker

    def _on_report(self, paths) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"Report written: {paths[0]} and {paths[1].name}")
        show_info(f"report written: {paths[0]}")
        self.report_written.emit(paths)

    def _on_report_error(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        message = _one_line(exc)
        self.status.setText(f"Report not written: {message}")
        show_error(f"report: {message}")
        self.report_failed.emit(message)

    def close(self) -> bool:
        self.cancel()
        self.last_error, self._ensembles, self._slide_reader = None, {}, None
        if self._on_slide_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_slide_mouse)
        return super().close()


def install_workflow(case_panel, zoo=None) -> WorkflowPanel:
    """Add the workflow tab ("Models") to ``case_panel``; returns it (also as ``case_panel.workflow``)."""
    panel = WorkflowPanel(case_panel.viewer, case_panel, zoo=zoo)
    case_panel.add_tab(panel, "Models")
    case_panel.workflow = panel
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
