"""Axial / coronal / sagittal for the whole MRI grid, with letters, crosshair and reslicing.

One switch under the grid (and the keys **A**, **C**, **S** while the grid has the focus)
turns every panel to the same plane: napari's ``dims.order`` (linked across the panels) and
the camera's ``orientation2d`` (superior up in coronal and sagittal, radiological left/right),
keeping the linked world point, so the new plane passes through the crosshair. Each panel
shows its edge letters (``orientation_labels``) and the crosshair (``crosshair``).

Data entering a panel first goes through :meth:`GridPlanes.place`: anything not on an
axis-aligned grid (a coronal T2 next to the axial T1, a turned registration, an oblique map)
is resliced onto the reference panel's grid (``core.mri.reslice``), and the panel's title
says "resliced onto T1-pre". Volumes read through the case seam arrive already placed
(``case_volumes.for_display``, in the reading worker); this catches the rest.
"""

from __future__ import annotations

import weakref

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from ..core.mri.orientation import (
    PLANE_KEYS,
    PLANES,
    SCREEN_ORIENTATION,
    dims_order,
    plane_of_order,
)
from ..core.mri.reslice import RESLICED, Grid, place_on, place_reference
from ..core.vocabulary import REFERENCE_SEQUENCE
from .crosshair import Crosshair
from .orientation_labels import add_edge_overlays, show_note, show_plane_letters

DEFAULT_PLANE = "axial"


class PlaneBar(QWidget):
    """The plane switch (three exclusive buttons) and the crosshair toggle."""

    plane_clicked = Signal(str)
    crosshair_toggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_plane_bar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("plane:"))
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QToolButton] = {}
        keys = {plane: key for key, plane in PLANE_KEYS.items()}
        for plane in PLANES:
            button = QToolButton(self)
            button.setText(f"{plane.capitalize()} ({keys[plane]})")
            button.setCheckable(True)
            button.setToolTip(f"Show every panel {plane}ly (key {keys[plane]} while the grid has the focus)")
            button.clicked.connect(lambda _=False, p=plane: self.plane_clicked.emit(p))
            self.group.addButton(button)
            self.buttons[plane] = button
            layout.addWidget(button)
        layout.addSpacing(12)
        self.crosshair = QCheckBox("crosshair (Shift-click)")
        self.crosshair.setToolTip("Shift-click or Shift-drag in any panel: every panel goes to that point")
        self.crosshair.toggled.connect(self.crosshair_toggled)
        layout.addWidget(self.crosshair)
        layout.addStretch(1)

    def show_plane(self, plane: str) -> None:
        self.buttons[plane].setChecked(True)


class GridPlanes:
    """The planes, letters, crosshair and reslicing of an :class:`~.mri_grid.MriGrid`."""

    def __init__(self, grid):
        self._grid_ref = weakref.ref(grid)
        self.plane = DEFAULT_PLANE
        self.reference: Grid | None = None
        self.reference_key: str | None = None
        for panel in grid.panels.values():
            add_edge_overlays(panel.model)
        self.bar = PlaneBar(grid)
        self.crosshair = Crosshair(grid, on_visible=self._show_crosshair_state)
        self.bar.show_plane(self.plane)
        self.bar.plane_clicked.connect(self.set_plane)
        self.bar.crosshair_toggled.connect(self.crosshair.show)
        grid.layout().addWidget(self.bar, (len(grid.panels) + 1) // 2, 0, 1, 2)  # under the panels
        self.shortcuts = []
        for key, plane in PLANE_KEYS.items():
            shortcut = QShortcut(QKeySequence(key), grid)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda p=plane: self.set_plane(p))
            self.shortcuts.append(shortcut)

    @property
    def _grid(self):
        grid = self._grid_ref()
        if grid is None:
            raise RuntimeError("the MRI grid is gone")
        return grid

    # -- planes -------------------------------------------------------------------------
    def set_plane(self, plane: str) -> None:
        """Show every panel in ``plane`` ("axial", "coronal" or "sagittal") at the same world point."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
        self.plane = plane
        self.bar.show_plane(plane)
        grid = self._grid
        for panel in grid.panels.values():
            self._apply(panel)
        grid.reset_view()
        grid.plane_changed.emit(plane)

    def shown_plane(self, key: str) -> str | None:
        """The plane panel ``key`` shows now (from its napari dims order)."""
        return plane_of_order(self._grid.panels[key].model.dims.order)

    def _apply(self, panel) -> None:
        model = panel.model
        filled = panel.volume_layer is not None and model.dims.ndim >= 3
        if filled:
            order = dims_order(self.plane, model.dims.ndim)
            if tuple(model.dims.order) != order:
                model.dims.order = order
            model.scene.camera.orientation2d = SCREEN_ORIENTATION[self.plane]
        show_plane_letters(model, self.plane, visible=filled)
        self.crosshair.redraw(panel.key)

    # -- content ------------------------------------------------------------------------
    def place(self, key: str, data, kwargs: dict, labels: bool = False):
        """(data, kwargs) for panel ``key`` on an axis-aligned grid; ``kwargs["affine"]`` is
        replaced and ``kwargs["metadata"]["resliced_onto"]`` set when the data was resliced."""
        affine = kwargs.get("affine")
        if affine is None:
            return data, kwargs
        affine = np.asarray(affine, dtype=float)
        is_volume = self._grid.panels[key].volume_layer is None and not labels
        if is_volume and self._takes_reference(key):
            placed, grid = place_reference(data, affine, self._grid.panels[key].model.title)
            self.reference, self.reference_key = grid, key
        else:
            placed = place_on(data, affine, self.reference, labels=labels)
        if placed.data is data or placed.affine is affine:
            return data, kwargs
        kwargs = {**kwargs, "affine": placed.affine}
        metadata = dict(kwargs.get("metadata") or {})
        metadata["display_placement"] = placed.how
        if placed.how == RESLICED:
            metadata["resliced_onto"] = placed.onto
            metadata.setdefault("source_affine", affine)
        kwargs["metadata"] = metadata
        return placed.data, kwargs

    def _takes_reference(self, key: str) -> bool:
        if self.reference is None:
            return True
        return key == REFERENCE_SEQUENCE and self.reference_key != REFERENCE_SEQUENCE

    def volume_shown(self, key: str, layer) -> None:
        """After panel ``key`` got a volume: its title, plane, letters and crosshair."""
        panel = self._grid.panels[key]
        if self.reference is None or key == self.reference_key:
            matrix = layer.affine.affine_matrix
            self.reference = Grid(tuple(layer.data.shape), np.asarray(matrix), panel.model.title)
            self.reference_key = key
        onto = (layer.metadata or {}).get("resliced_onto")
        note = f"resliced onto {onto}" if onto else ""
        show_note(panel.model, note)  # on the canvas, under its one title (screenshots say it too)
        self._apply(panel)

    def clear(self) -> None:
        self.reference, self.reference_key = None, None
        for panel in self._grid.panels.values():
            show_note(panel.model, "")
            show_plane_letters(panel.model, None)
        self.crosshair.show(self.crosshair.visible)

    def _show_crosshair_state(self, visible: bool) -> None:
        box = self.bar.crosshair
        if box.isChecked() != visible:
            box.blockSignals(True)
            box.setChecked(visible)
            box.blockSignals(False)

    def disconnect(self) -> None:
        self.crosshair.disconnect()
