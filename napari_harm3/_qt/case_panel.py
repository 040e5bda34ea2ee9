"""The case panel: open a case (manifest or files one by one) and drive both viewers.

``CasePanel(napari_viewer)`` is a view of a :class:`~napari_harm3.core.session.CaseSession`
(``panel.session``: the open case, its µm/px, the predictions — shared with the Models tab).
It owns

- the **linked MRI grid** (:class:`~napari_harm3._qt.mri_grid.MriGrid`) in the napari
  window's main area, tab "MRI (linked)" (:mod:`.reading_layout`), next to the slide's tab;
- the **slide viewer**: the napari viewer the panel is docked in shows the slide (µm scale
  bar, minimap dock, µm/px field for slides without mpp) via :class:`SlideView`.

Reading runs in a napari ``thread_worker`` around the core's ``open_case_data`` (volumes
through the registration seam) and the glue's ``case_layer_data``; in the ``returned`` handler
the session is given the opened case and the layers are added. A bad file becomes a
notification with the core error's one line; the viewer keeps running.

Extension point: the panel is a ``QTabWidget``; workflow widgets are added with
:meth:`CasePanel.add_tab`, subscribe to ``panel.session``'s events and put overlays into the
MRI panels with ``panel.grid.add_overlay(sequence, data, affine=…, kind=…)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import Cancelled, Harm3Error, user_message
from ..core.io.case import Case
from ..core.progress import CancelToken
from ..core.session import CaseSession, open_case_data
from .._layers import SEQUENCE_TITLES, CaseLayers, case_layer_data
from .align_box import AlignBox
from .in_turns import InTurns, alone, paints_held
from .lazy_layer_controls import install as install_lazy_layer_controls
from .mri_grid import MriGrid
from .reading_layout import CaseViews
from .slide_view import MPP_MISSING_MESSAGE, SlideView
from .status_note import confirm
from .vispy_caches import install as install_vispy_caches

#: file pickers of the "files one by one" form: key → label
FILE_FIELDS = {**SEQUENCE_TITLES, "mask": "Tumour mask", "slide": "Slide"}


def case_from_files(files: dict, case_id: str = "", slide_mpp: Optional[float] = None):
    """A :class:`~napari_harm3.core.io.case.Case` from files picked one by one (no manifest)."""
    mri = {k: str(v) for k, v in files.items() if k in SEQUENCE_TITLES and v}
    masks = {}
    if files.get("mask"):
        first = next(iter(mri), "t1_pre")
        masks[first] = str(files["mask"])
    root = next((Path(v) for v in files.values() if v), Path.cwd()).parent
    return Case(case_id=case_id or root.name, root=root, mri=mri, masks=masks,
                slide=Path(files["slide"]) if files.get("slide") else None, slide_mpp=slide_mpp)


def _read_case(source, progress=None) -> CaseLayers:
    """Worker body: a manifest path or a Case → CaseLayers holding the opened case (core + glue)."""
    opened = open_case_data(source, progress=progress)
    try:
        return case_layer_data(opened, measure_response=True)  # the tumour response too: not on the GUI thread
    except BaseException:
        opened.close()
        raise


def _read_case_tagged(source, token, progress=None):
    """:func:`_read_case` whose result and error carry ``token`` (which read they belong to)."""
    try:
        return token, _read_case(source, progress=progress)
    except BaseException as exc:
        exc.harm3_token = token
        raise


class CasePanel(QTabWidget):
    """Dock widget: open a case and show it in the linked MRI grid and the slide viewer."""

    #: emitted with the CaseLayers after a case is shown
    case_loaded = Signal(object)
    #: emitted with the one-line message when opening a case failed
    case_failed = Signal(str)
    _progress_signal = Signal(float, str)

    def __init__(self, napari_viewer, parent=None, session: Optional[CaseSession] = None):
        super().__init__(parent)
        install_vispy_caches()  # before any canvas of the case draws (see the module)
        self.setObjectName("harm3_case_panel")
        self.viewer = napari_viewer
        self.session = session or CaseSession()
        self.case_layers: Optional[CaseLayers] = None
        self.worker = None
        self._showing: Optional[InTurns] = None  # a case being put into the viewers in turns
        self._cancel: Optional[CancelToken] = None
        self._progress_signal.connect(self._on_progress)
        self.mask_layers: dict[str, list] = {}
        self.grid = MriGrid()
        self.slide_view = SlideView(napari_viewer)
        self.lazy_controls = install_lazy_layer_controls(napari_viewer)  # no widget per added map
        self._grid_dock = None
        self.views: Optional[CaseViews] = None  # the main area's MRI | Slide tabs
        self._minimap_dock = None
        self._build_case_tab()

    # -- layout -----------------------------------------------------------------------
    def _build_case_tab(self) -> None:
        tab = QWidget()
        layout = QVBoxLayout(tab)

        self.open_button = QPushButton("Open case manifest…")
        self.open_button.setToolTip("A case.yaml (or *.harm3.yaml / .json) listing the case's files")
        self.open_button.clicked.connect(self._choose_manifest)
        layout.addWidget(self.open_button)

        files = QGroupBox("…or files one by one")
        form = QFormLayout(files)
        self.case_id_edit = QLineEdit()
        self.case_id_edit.setPlaceholderText("case id (optional)")
        form.addRow("Case id", self.case_id_edit)
        self.file_edits: dict[str, QLineEdit] = {}
        for key, label in FILE_FIELDS.items():
            edit = QLineEdit()
            edit.setObjectName(f"harm3_file_{key}")
            browse = QPushButton("…")
            browse.setFixedWidth(28)
            browse.setProperty("harm3_key", key)
            browse.clicked.connect(self._browse_clicked)
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            self.file_edits[key] = edit
        self.files_mpp = QDoubleSpinBox()
        self.files_mpp.setObjectName("harm3_files_mpp")
        self.files_mpp.setDecimals(4)
        self.files_mpp.setRange(0.0, 100.0)
        self.files_mpp.setSingleStep(0.01)
        self.files_mpp.setSpecialValueText("from the slide")
        self.files_mpp.setToolTip("Microns per level-0 pixel of the slide, when its metadata lacks it")
        form.addRow("Slide µm/px", self.files_mpp)
        self.open_files_button = QPushButton("Open these files")
        self.open_files_button.clicked.connect(self._open_files_clicked)
        form.addRow(self.open_files_button)
        layout.addWidget(files)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.status = QLabel("No case open.")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        info = QGroupBox("Case")
        info_form = QFormLayout(info)
        self.case_id_label = QLabel("—")
        self.case_id_label.setObjectName("harm3_case_id")
        self.labels_label = QLabel("—")
        self.labels_label.setWordWrap(True)
        info_form.addRow("Case id", self.case_id_label)
        info_form.addRow("Labels", self.labels_label)
        layout.addWidget(info)

        slide = QGroupBox("Slide")
        slide_form = QFormLayout(slide)
        self.mpp_warning = QLabel(f"⚠ {MPP_MISSING_MESSAGE}")
        self.mpp_warning.setObjectName("harm3_mpp_warning")
        self.mpp_warning.setWordWrap(True)
        self.mpp_warning.setStyleSheet("color: #ffb000; font-weight: bold;")
        self.mpp_warning.setVisible(False)
        self.mpp_spin = QDoubleSpinBox()
        self.mpp_spin.setObjectName("harm3_mpp")
        self.mpp_spin.setDecimals(4)
        self.mpp_spin.setRange(0.0, 100.0)
        self.mpp_spin.setSingleStep(0.01)
        self.mpp_spin.setSpecialValueText("unknown")
        self.mpp_spin.setToolTip("Microns per level-0 pixel (e.g. 0.25 at 40×, 0.5 at 20×)")
        self.mpp_apply = QPushButton("Set µm/px")
        self.mpp_apply.clicked.connect(self._apply_mpp_clicked)
        mpp_row = QHBoxLayout()
        mpp_row.addWidget(self.mpp_spin, 1)
        mpp_row.addWidget(self.mpp_apply)
        self.mpp_source = QLabel("—")
        self.mpp_source.setObjectName("harm3_mpp_source")
        slide_form.addRow(self.mpp_warning)
        slide_form.addRow("µm/px", mpp_row)
        slide_form.addRow("from", self.mpp_source)
        layout.addWidget(slide)

        self.align_box = AlignBox(self)
        layout.addWidget(self.align_box)

        self.show_grid_button = QPushButton("Show MRI grid")
        self.show_grid_button.clicked.connect(self.show_grid)
        layout.addWidget(self.show_grid_button)
        layout.addStretch(1)
        # scrolled (like the Models tab): what the tab shows (progress bar, mask legend, warnings)
        # changes its height per case, and a dock that must grow takes the height from the MRI
        # grid, whose four GL canvases then repaint synchronously (0.4 s at each case open)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(tab)
        self.case_tab = tab  # its layout is where the mask legend and drawing boxes go
        self.addTab(scroll, "Case")

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Extension point: add a workflow widget (models, results, report) as a tab."""
        return self.addTab(widget, title)

    # -- docks ------------------------------------------------------------------------
    def show_grid(self) -> None:
        """The MRI grid in the main area, the slide a tab away (:mod:`.reading_layout`; else docked)."""
        window = getattr(self.viewer, "window", None)
        if window is None:
            return
        if self._minimap_dock is None:
            self._minimap_dock = window.add_dock_widget(self.slide_view.minimap, name="HARM3 slide overview",
                                                        area="right", add_vertical_stretch=False)
        if self.views is None:
            self.views = CaseViews.install(self.grid, self)
        if self.views is not None:
            self.views.show_mri()
        elif self._grid_dock is None:
            self._grid_dock = window.add_dock_widget(self.grid, name="HARM3 MRI (linked)", area="left",
                                                     add_vertical_stretch=False)
        if self._grid_dock is not None:
            self._grid_dock.show()

    def show_slide(self) -> None:
        """Bring the slide viewer to the front (its tab of the main area)."""
        if self.views is not None:
            self.views.show_slide()

    # -- opening ----------------------------------------------------------------------
    def _choose_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open case manifest", "",
                                              "Case manifests (*.yaml *.yml *.json);;All files (*)")
        if path:
            self.open_case(path)

    def _browse_clicked(self) -> None:
        self._choose_file(str(self.sender().property("harm3_key")))

    def _choose_file(self, key: str) -> None:
        if key in SEQUENCE_TITLES or key == "mask":
            path, _ = QFileDialog.getOpenFileName(self, f"Choose {FILE_FIELDS[key]}", "",
                                                  "NIfTI / DICOM (*.nii *.nii.gz *.dcm);;All files (*)")
            if not path:  # a DICOM folder
                path = QFileDialog.getExistingDirectory(self, f"…or a DICOM folder for {FILE_FIELDS[key]}")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose the slide", "")
        if path:
            self.file_edits[key].setText(path)

    def _open_files_clicked(self) -> None:
        files = {k: e.text().strip() for k, e in self.file_edits.items() if e.text().strip()}
        mpp = self.files_mpp.value() or None
        self.open_files(files, case_id=self.case_id_edit.text().strip(), slide_mpp=mpp)

    def open_files(self, files: dict, case_id: str = "", slide_mpp: Optional[float] = None):
        """Open files given one by one: keys ``t1_pre`` … ``t2_post``, ``mask``, ``slide``."""
        if not files:
            self._fail("choose at least one file (an MRI volume or the slide)")
            return None
        return self._start(case_from_files(files, case_id=case_id, slide_mpp=slide_mpp))

    def open_case(self, path):
        """Open a case manifest (or a case folder) in a worker; returns the worker."""
        return self._start(Path(path))

    def _start(self, source):
        if self._cancel is not None:
            self._cancel.cancel()  # a case still being read stops at its next progress report
        token = CancelToken()
        self._cancel = token
        emit = self._progress_signal.emit  # emitted from the worker thread, delivered here
        # errors are ours to report (errored → notification), not re-raised in the event loop
        worker = thread_worker(_read_case_tagged, ignore_errors=True)(
            source, token, progress=token.wrap(lambda f, m: emit(f, m)))
        # bound methods only (Qt keeps no strong reference to the panel through them)
        worker.returned.connect(self._on_loaded)
        worker.errored.connect(self._on_error)
        self.worker = worker
        self.open_button.setEnabled(False)
        self.open_files_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText("Reading the case…")
        worker.start()
        return worker

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        self.status.setText(message)

    def _done(self, token) -> bool:
        """True when ``token``'s read is the current one (older, superseded reads are ignored)."""
        if token is not self._cancel:
            return False
        self.worker = None
        self.open_button.setEnabled(True)
        self.open_files_button.setEnabled(True)
        self.progress.setVisible(False)
        return True

    def _on_error(self, exc: BaseException) -> None:
        if not self._done(getattr(exc, "harm3_token", None)) or isinstance(exc, Cancelled):
            return
        self._fail(user_message(exc, "viewer"))

    def _fail(self, message: str) -> None:
        self.status.setText(f"Could not open the case: {message}")
        show_error(message)
        self.case_failed.emit(message)

    # -- showing ----------------------------------------------------------------------
    def _on_loaded(self, result) -> None:
        token, layers = result
        if self._done(token):
            with paints_held():  # the last case's maps leave in this turn, the canvases paint in the next
                self.show_case(layers, staged=True)
        else:  # superseded by a later open: release its files
            layers.opened.close()

    @property
    def case(self):
        """The open case (``core.io.case.Case``) or None: the session's."""
        return self.session.case

    def show_case(self, layers: CaseLayers, staged: bool = False) -> None:
        """Make the read case the session's and put it into the viewers (GUI thread).

        The session takes the case and the last case's layers leave (or hide, to be refilled) at
        once; with ``staged`` the viewers are filled layer by layer over event-loop turns
        (:mod:`.in_turns`: the window answers and repaints in between) and ``case_loaded`` comes
        after the last; otherwise all before returning. A later ``show_case`` (or closing) drops
        the steps of one still going."""
        if self._showing is not None:
            self._showing.stop()  # an earlier case still being put into the viewers gives way
        self.session.show(layers.opened, tumour_response=layers.tumour_response)
        self.case_layers = layers
        mask_layers: dict = {}
        grid_steps, grid_finish = self.grid.show_case_steps(layers.volumes, layers.masks, mask_layers)
        finished = []

        def finish_grid() -> None:
            if not finished:
                finished.append(True)
                grid_finish()
                self.mask_layers = mask_layers

        def place() -> None:
            finish_grid()
            self.show_grid()
            if not layers.volumes and layers.slide is not None:
                self.show_slide()
            self.grid.reset_view()

        def slide_out() -> None:  # the last slide hides, to take the next one (or leaves: gc.collect())
            if layers.slide is not None:
                self.slide_view.hide()
            else:
                self.slide_view.clear()

        def slide_in() -> None:
            if layers.slide is not None:
                self.slide_view.show(layers.slide, thumbnail=layers.slide_thumbnail)

        clear, *grid_steps = grid_steps
        try:
            clear()  # the last case's overlays leave with it, its other layers hide: in this turn
        except Exception:
            finish_grid()
            raise
        showing = InTurns([*grid_steps, alone(place), alone(slide_out), alone(slide_in),
                           lambda: self._show_case_text(layers)], finish=finish_grid,
                          done=lambda: self.case_loaded.emit(layers),
                          failed=lambda exc: self._fail(user_message(exc, "viewer")), parent=self)
        if staged:
            self._showing = showing.start()
        else:
            showing.run_now()

    def _show_case_text(self, layers: CaseLayers) -> None:
        self._showing = None
        self._update_slide_ui()
        self.case_id_label.setText(layers.case_id)
        known = {k: v for k, v in layers.labels.items() if v is not None}
        self.labels_label.setText(", ".join(f"{k} = {v}" for k, v in known.items()) or "none given")
        shown = ", ".join(SEQUENCE_TITLES.get(s, s) for s in layers.volumes) or "no MRI"
        self.status.setText(f"Case {layers.case_id}: {shown}" + ("; slide" if layers.slide else "; no slide"))
        confirm(self.viewer, f"case {layers.case_id} opened")  # the status line says it: no pop-up

    def _update_slide_ui(self) -> None:
        missing = self.slide_view.mpp_missing
        self.mpp_warning.setVisible(missing)
        scale = self.session.scale
        self.mpp_spin.setValue(scale.mpp or 0.0)
        self.mpp_source.setText(scale.source or "unknown: enter it")
        self.mpp_apply.setEnabled(self.slide_view.layer is not None)

    def _apply_mpp_clicked(self) -> None:
        self.set_mpp(self.mpp_spin.value())

    def set_mpp(self, mpp: float) -> bool:
        """Give the open slide its µm/px (from the field): the session's one value from now on
        (models, features, heatmaps, report); False (and a notification) if bad."""
        try:
            self.session.set_slide_mpp(mpp)
            self.slide_view.set_mpp(mpp)
        except (ValueError, Harm3Error) as exc:
            show_warning(user_message(exc, "viewer"))
            return False
        self._update_slide_ui()
        self.status.setText(f"Slide scale set to {mpp:g} µm/px")
        return True

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.close_viewers()
        super().closeEvent(event)

    def close_viewers(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
        if self._showing is not None:
            self._showing.stop()
        self.slide_view.clear()  # its layer would read the slide closed with the session at its next draw
        self.session.close()
        self.slide_view.minimap.disconnect_viewer()
        if self.views is not None:
            self.views.close_viewers()  # the "3 planes" canvases
        self.grid.close_viewers()
