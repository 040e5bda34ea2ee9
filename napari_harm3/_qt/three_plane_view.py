"""The "3 planes" tab: one chosen MRI volume of the grid in axial, coronal and sagittal at once.

Three napari canvases (a ``ViewerModel`` + ``QtViewer`` each, as in the grid) show the *same*
volume layer data as the chosen grid panel (the array is shared, not copied) with its affine,
each in its plane (``core.mri.orientation.plane_views``: dims order, camera orientation, edge
letters). They are linked by the world point only — each keeps its own plane, pan and zoom —
so a Shift-click (the crosshair of :mod:`.crosshair`) or the wheel (one slice, the reading
mouse of :mod:`.reading_mouse`) in one moves the other two's slices there, and the crosshair
lines in each cross at that point. The panel's masks and maps can be shown too (shared data).

The canvases are built the first time the tab is shown (GL canvases are expensive). The view
follows the grid: a volume set in a panel (``MriGrid.volume_set``) refreshes the selector and,
for the shown panel, the canvases; a shown volume leaving its panel (case switch) or being
given new data empties the canvases at once, so no data of a previous case stays here.
"""

from __future__ import annotations

import numpy as np
from napari.components import ViewerModel
from napari.layers import Image, Labels
from napari.qt import QtViewer
from qtpy.QtCore import QCoreApplication, QEvent
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..core.mri.orientation import PLANES, plane_views, start_point
from ..core.vocabulary import REFERENCE_SEQUENCE
from .crosshair import CROSSHAIR, Crosshair
from .orientation_labels import (
    add_edge_overlays,
    fit_clear_of_letters,
    show_plane_letters,
)
from .layer_removal import WITHDRAWALS, WITHDRAWN, withdraw
from .polygon_tool import defer_polygon_tool
from .reading_mouse import install_reading_mouse

TAB_TITLE = "3 planes"
EMPTY_TEXT = "no MRI volume in this case"
#: metadata key of a layer here: ``id()`` of the grid layer whose array it shows
SOURCE_KEY = "harm3_three_plane_of"
#: what an emptied canvas's volume layer holds: nothing of a case
PLACEHOLDER = np.zeros((1, 1, 1), dtype=np.float32)


class PlaneCanvas:
    """One plane's canvas (what :class:`~.crosshair.Crosshair` calls a panel)."""

    def __init__(self, plane: str):
        self.key = plane
        self.model = ViewerModel(title=plane, axis_labels=("z", "y", "x"))
        text = self.model.canvas.overlays.text
        text.text, text.visible, text.font_size, text.color = plane.capitalize(), True, 12, "yellow"
        text.position = "top_left"
        add_edge_overlays(self.model)
        self.qt_viewer = QtViewer(self.model)
        self.qt_viewer.setObjectName(f"harm3_three_plane_{plane}")
        self.volume_layer = None
        self._slot = None  # the volume layer, kept between volumes (see show_volume)
        self._fitted_view = None  # (center, zoom) after the last fit: the user has not moved it since
        install_reading_mouse(self.model, lambda: self.volume_layer)
        self.model.canvas.events.size.connect(self._on_canvas_size)

    def fit(self) -> None:
        """Fit the volume into the canvas, clear of the letters."""
        if self.volume_layer is None:
            return
        fit_clear_of_letters(self.model)
        camera = self.model.scene.camera
        self._fitted_view = (tuple(camera.center), float(camera.zoom))

    def _on_canvas_size(self, event=None) -> None:
        """The canvas got its size (laid out after it was made, or resized): fit again, unless
        the user has panned or zoomed since the last fit."""
        camera = self.model.scene.camera
        if self._fitted_view is not None and np.allclose(self._fitted_view[0], camera.center) \
                and np.isclose(self._fitted_view[1], camera.zoom):
            self.fit()

    def show_volume(self, source, extras=()) -> None:
        """Show grid layer ``source`` (and layers ``extras``) here, on their own arrays."""
        slot = self._slot
        if slot is None or slot not in self.model.layers:
            slot = self._slot = self.model.add_layer(_shared_copy(source))
        else:  # the layer stays (removing one costs napari a full garbage collection): new data
            slot.data = source.data
            slot.affine = source.affine.affine_matrix
            _restyle(slot, source)
        slot.visible = True
        self.volume_layer = slot
        for layer in extras:
            self.add_extra(layer)
        self.model.layers.selection.active = slot
        self.show_plane()

    def add_extra(self, layer) -> None:
        """Show grid layer ``layer`` (a mask or a map) over the volume, on its own array."""
        self.model.add_layer(_shared_copy(layer))
        self.model.layers.selection.active = self.volume_layer

    def withdraw_extra(self, layer) -> None:
        """Grid layer ``layer`` was withdrawn (a closed case's map, leaving its list in a later
        turn): its copies here are withdrawn now too (hidden and emptied; they leave with it)."""
        for copy in [c for c in self.model.layers if c.metadata.get(SOURCE_KEY) == id(layer)]:
            withdraw(copy, keep={SOURCE_KEY: id(layer)})

    def remove_extra(self, layer) -> None:
        """Stop showing grid layer ``layer``."""
        for copy in [c for c in self.model.layers if c.metadata.get(SOURCE_KEY) == id(layer)]:
            self.model.layers.remove(copy)

    def empty(self) -> None:
        """Let go of the shown data: the volume layer keeps a one-voxel placeholder, hidden."""
        layers = self.model.layers
        extras = [layer for layer in layers if layer is not self._slot and layer.metadata.get("harm3_kind") != CROSSHAIR]
        if extras:
            with layers.batched_update():  # one scene-graph clean-up for all of them
                for layer in extras:
                    layers.remove(layer)
        if self._slot is not None:
            self._slot.visible = False
            self._slot.data = PLACEHOLDER
            self._slot.affine = np.eye(4)
        self.volume_layer = None
        self._fitted_view = None
        show_plane_letters(self.model, None)

    def show_plane(self) -> None:
        view = plane_views(self.model.dims.ndim)[self.key]
        if tuple(self.model.dims.order) != view["dims_order"]:
            self.model.dims.order = view["dims_order"]
        self.model.scene.camera.orientation2d = view["orientation2d"]
        show_plane_letters(self.model, self.key, visible=self.volume_layer is not None)


class ThreePlaneView(QWidget):
    """Axial, coronal and sagittal canvases of one grid volume; see the module docstring."""

    def __init__(self, grid, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_three_plane_view")
        self.grid = grid
        self.panels: dict[str, PlaneCanvas] = {}  # plane → canvas, empty until first shown
        self.crosshair: Crosshair | None = None
        self.shown_key: str | None = None
        self._source = None  # the grid panel's volume layer shown here
        self._linking = False
        self._connections: list = []

        self.selector = QComboBox()
        self.selector.setToolTip("The volume shown in the three planes")
        self.selector.currentIndexChanged.connect(self._on_selected)
        self.overlays = QCheckBox("masks and maps")
        self.overlays.setToolTip("Show the chosen panel's masks and maps in the three planes too")
        self.overlays.setChecked(True)
        self.overlays.toggled.connect(lambda _: self.reload())
        self.status = QLabel(EMPTY_TEXT)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for widget in (QLabel("volume:"), self.selector, self.overlays, self.status):
            bar.addWidget(widget)
        bar.addStretch(1)
        self.canvas_row = QHBoxLayout()
        self.canvas_row.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(self.canvas_row, 1)

        grid.volume_set.connect(self._on_volume_set)
        for panel in grid.panels.values():
            for emitter, callback in ((panel.model.layers.events.removed, self._on_grid_layer_removed),
                                      (panel.model.layers.events.inserted, self._on_grid_layer_inserted)):
                emitter.connect(callback)
                self._connections.append((emitter, callback))
        WITHDRAWALS.withdrawn.connect(self._on_withdrawn)
        self._connections.append((WITHDRAWALS.withdrawn, self._on_withdrawn))
        self.refresh_selector()

    # -- building ---------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return bool(self.panels)

    def ensure_built(self) -> None:
        """Make the three canvases (once) and show the chosen volume in them."""
        if self.built:
            return
        for plane in PLANES:
            canvas = PlaneCanvas(plane)
            self.panels[plane] = canvas
            self.canvas_row.addWidget(canvas.qt_viewer, 1)
            emitter = canvas.model.dims.events.point
            callback = self._make_point_link(canvas)
            emitter.connect(callback)
            self._connections.append((emitter, callback))
        self.crosshair = Crosshair(self)
        self.reload()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self.ensure_built()

    # -- the grid's volumes -------------------------------------------------------------
    def volume_keys(self) -> list[str]:
        return [k for k, p in self.grid.panels.items()
                if p.volume_layer is not None and p.volume_layer in p.model.layers]

    def refresh_selector(self) -> None:
        """List the grid's volumes; keep the choice, else T1-pre, else the first."""
        keys = self.volume_keys()
        wanted = self.shown_key if self.shown_key in keys else (
            REFERENCE_SEQUENCE if REFERENCE_SEQUENCE in keys else (keys[0] if keys else None))
        self.selector.blockSignals(True)
        self.selector.clear()
        for key in keys:
            self.selector.addItem(self.grid.panels[key].model.title, key)
        if wanted is not None:
            self.selector.setCurrentIndex(keys.index(wanted))
        self.selector.setEnabled(bool(keys))
        self.selector.blockSignals(False)
        self.shown_key = wanted

    def choose(self, key: str) -> None:
        """Show grid panel ``key``'s volume in the three planes."""
        keys = self.volume_keys()
        if key not in keys:
            raise ValueError(f"no volume in panel {key!r}; volumes are {', '.join(keys) or 'none'}")
        self.selector.setCurrentIndex(keys.index(key))  # → _on_selected
        if self.shown_key != key or self._source is None:
            self._on_selected(keys.index(key))

    def _on_selected(self, index: int) -> None:
        key = self.selector.itemData(index) if index >= 0 else None
        self.shown_key = key
        self.reload()

    def _on_volume_set(self, key: str) -> None:
        self.refresh_selector()
        if key == self.shown_key or self._source is None:
            self.reload()

    def _extra_of_shown(self, layer) -> bool:
        panel = self.grid.panels.get(self.shown_key) if self.shown_key else None
        return (self._source is not None and panel is not None and layer is not self._source
                and layer in panel.model.layers and _shareable(layer))

    def _on_grid_layer_inserted(self, event) -> None:
        """A mask or map added to the shown panel (a model's result, a drawn mask): here too."""
        if self.overlays.isChecked() and self._extra_of_shown(event.value):
            for canvas in self.panels.values():
                canvas.add_extra(event.value)

    def _on_grid_layer_removed(self, event) -> None:
        if self._source is not None and event.value is not self._source:
            for canvas in self.panels.values():
                canvas.remove_extra(event.value)
        if self._source is not None and event.value is self._source:
            self.clear()  # the case switches: nothing of it stays here
        if any(event.value is p.volume_layer for p in self.grid.panels.values()):
            self.refresh_selector()

    def _on_withdrawn(self, layer) -> None:
        """A grid map was withdrawn (its case closed): not shown here one turn longer."""
        for canvas in self.panels.values():
            canvas.withdraw_extra(layer)

    def _on_source_changed(self, event=None) -> None:
        self.clear()
        self.reload()

    # -- content ----------------------------------------------------------------------
    def clear(self) -> None:
        """Empty the canvases (they stay built)."""
        if self._source is not None:
            self._source.events.data.disconnect(self._on_source_changed)
            self._source.events.affine.disconnect(self._on_source_changed)
        self._source = None
        for canvas in self.panels.values():
            canvas.empty()
        self.status.setText(EMPTY_TEXT)

    def reload(self) -> None:
        """Show the chosen volume (and its masks and maps) in the three canvases."""
        if not self.built:
            return
        self.clear()
        panel = self.grid.panels.get(self.shown_key) if self.shown_key else None
        source = panel.volume_layer if panel is not None else None
        if source is None:
            return
        self._source = source
        source.events.data.connect(self._on_source_changed)
        source.events.affine.connect(self._on_source_changed)
        extras = [layer for layer in panel.model.layers if layer is not source and _shareable(layer)]
        start = start_point(source.affine.affine_matrix, source.data.shape, panel.model.dims.point)
        for canvas in self.panels.values():
            canvas.show_volume(source, extras if self.overlays.isChecked() else [])
        self.status.setText(f"{panel.model.title}: Shift-click or wheel in one plane moves the others")
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)  # settled canvas sizes
        first = next(iter(self.panels.values()))
        self.move_to(start, first.key)
        for canvas in self.panels.values():
            canvas.fit()
        self.crosshair.show(True)

    def move_to(self, world, plane: str | None = None) -> None:
        """Put every plane on world point ``world`` (z, y, x) mm."""
        canvas = self.panels[plane or PLANES[0]]
        point = list(canvas.model.dims.point)
        point[-3:] = [float(v) for v in world][-3:]
        canvas.model.dims.point = tuple(point)

    def points(self) -> dict[str, tuple[float, ...]]:
        """{plane: its world point (z, y, x)}."""
        return {plane: tuple(float(v) for v in c.model.dims.point[-3:]) for plane, c in self.panels.items()}

    def _make_point_link(self, source: PlaneCanvas):
        def on_point(event=None):
            if self._linking or source.volume_layer is None:
                return
            self._linking = True
            try:
                world = np.asarray(source.model.dims.point, dtype=float)[-3:]
                for canvas in self.panels.values():
                    dims = canvas.model.dims
                    if canvas is source or dims.ndim < 3 or np.allclose(dims.point[-3:], world):
                        continue
                    point = list(dims.point)
                    point[-3:] = world
                    dims.point = tuple(point)
            finally:
                self._linking = False

        return on_point

    # -- closing ----------------------------------------------------------------------
    def close_viewers(self) -> None:
        """Unhook from the grid and close the three canvases (frees their GL contexts)."""
        self.clear()
        try:
            self.grid.volume_set.disconnect(self._on_volume_set)
        except (TypeError, RuntimeError):
            pass
        for emitter, callback in self._connections:
            emitter.disconnect(callback)
        self._connections = []
        if self.crosshair is not None:
            self.crosshair.disconnect()
        for canvas in self.panels.values():
            canvas.qt_viewer.close()
        self.panels = {}

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.close_viewers()
        super().closeEvent(event)


def _shareable(layer) -> bool:
    return isinstance(layer, (Image, Labels)) and layer.metadata.get("harm3_kind") not in (CROSSHAIR, WITHDRAWN)


def _restyle(target, source) -> None:
    target.name, target.opacity, target.blending = source.name, source.opacity, source.blending
    target.colormap = source.colormap
    target.contrast_limits_range = tuple(source.contrast_limits_range)
    target.contrast_limits = tuple(source.contrast_limits)
    target.metadata = {**source.metadata, SOURCE_KEY: id(source)}


def _shared_copy(layer):
    """A new layer of the same kind on the same data array (napari keeps arrays as given)."""
    kwargs = {"affine": layer.affine.affine_matrix, "name": layer.name, "opacity": layer.opacity,
              "blending": layer.blending, "visible": layer.visible, "units": "mm",
              "metadata": {**layer.metadata, SOURCE_KEY: id(layer)}}
    if isinstance(layer, Labels):
        return defer_polygon_tool(Labels(layer.data, **kwargs))
    image = Image(layer.data, colormap=layer.colormap, contrast_limits=tuple(layer.contrast_limits), **kwargs)
    image.contrast_limits_range = tuple(layer.contrast_limits_range)
    image.contrast_limits = tuple(layer.contrast_limits)
    return image
