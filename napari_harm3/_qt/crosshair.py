"""The grid's crosshair: Shift-click (or Shift-drag) a point in any MRI panel and every panel
goes to that world point.

The crosshair *is* the linked world position: a click sets all three coordinates of the
panel's ``dims.point`` (mm) to the clicked world point, and the :class:`~.linking.ViewerLink`
carries it to the other panels, which slice their own volumes there. Each panel draws it as two
thin lines (a napari Vectors layer named ``crosshair``) through the point, across its volume;
the lines follow the slice when the user scrolls and the plane when the user switches planes.
Plain drags still pan (vispy pans only without modifiers).
"""

from __future__ import annotations

import weakref

import numpy as np
from napari.layers import Vectors

from .visibility import set_visible

CROSSHAIR = "crosshair"
COLOUR = "lime"
MODIFIER = "Shift"
WIDTH_PX = 1.5


class Crosshair:
    """Crosshair of an :class:`~.mri_grid.MriGrid` (``grid.planes.crosshair``)."""

    def __init__(self, grid, on_visible=None):
        self._grid_ref = weakref.ref(grid)  # the grid owns this: no cycle through its models
        self._on_visible = on_visible       # called with the new visibility (the bar's checkbox)
        self.visible = False
        self._layers: dict[str, Vectors] = {}
        self._connections = []
        for key, panel in grid.panels.items():
            callback = self._make_drag_callback(key)
            panel.model.mouse_drag_callbacks.append(callback)
            redraw = self._make_redraw(key)
            for emitter in (panel.model.dims.events.point, panel.model.dims.events.order,
                            panel.model.scene.camera.events.zoom):
                emitter.connect(redraw)
                self._connections.append((emitter, redraw))
            self._connections.append((panel.model.mouse_drag_callbacks, callback))

    @property
    def _grid(self):
        grid = self._grid_ref()
        if grid is None:
            raise RuntimeError("the MRI grid is gone")
        return grid

    # -- the point ----------------------------------------------------------------------
    def point(self, key: str | None = None) -> tuple[float, float, float] | None:
        """The crosshair's world point (z, y, x) mm in panel ``key`` (the first filled one)."""
        panel = self._panel(key)
        if panel is None or panel.model.dims.ndim < 3:
            return None
        return tuple(float(v) for v in panel.model.dims.point[-3:])

    def move_to(self, world, key: str | None = None) -> None:
        """Put the crosshair (and every panel's slice) on world point ``world`` (z, y, x) mm."""
        panel = self._panel(key)
        if panel is None:
            return
        dims = panel.model.dims
        point = list(dims.point)
        world = [float(v) for v in world][-3:]
        point[-3:] = world
        dims.point = tuple(point)
        self.show(True)

    def show(self, on: bool = True) -> None:
        changed = self.visible != bool(on)
        self.visible = bool(on)
        if changed and self._on_visible is not None:
            self._on_visible(self.visible)
        for key in self._grid.panels:
            self.redraw(key)

    # -- drawing ------------------------------------------------------------------------
    def redraw(self, key: str) -> None:
        panel = self._grid.panels[key]
        layer = self._layers.get(key)
        if not self.visible or panel.volume_layer is None or panel.model.dims.ndim < 3:
            if layer is not None:
                set_visible(layer, False)
            return
        lines = self._lines(panel)
        if layer is None or layer not in panel.model.layers:
            layer = Vectors(lines, name=CROSSHAIR, edge_color=COLOUR, edge_width=self._width(panel),
                            opacity=0.8, vector_style="line", units="mm",
                            metadata={"harm3_panel": key, "harm3_kind": CROSSHAIR})
            panel.model.layers.append(layer)
            panel.model.layers.selection.active = panel.volume_layer  # keep the volume the active layer
            self._layers[key] = layer
        else:
            layer.data = lines
            layer.edge_width = self._width(panel)
        set_visible(layer, True)

    def layer(self, key: str) -> Vectors | None:
        layer = self._layers.get(key)
        return layer if layer is not None and layer in self._grid.panels[key].model.layers else None

    def disconnect(self) -> None:
        for emitter, callback in self._connections:
            if isinstance(emitter, list):
                if callback in emitter:
                    emitter.remove(callback)
            else:
                emitter.disconnect(callback)
        self._connections = []
        self._layers = {}

    # -- internals ----------------------------------------------------------------------
    def _panel(self, key):
        if key is not None:
            return self._grid.panels[key]
        return next((p for p in self._grid.panels.values() if p.volume_layer is not None), None)

    @staticmethod
    def _width(panel) -> float:
        """Line width in mm that draws :data:`WIDTH_PX` screen pixels (a thinner line can miss
        every pixel centre along its length and vanish)."""
        zoom = float(panel.model.scene.camera.zoom)  # screen pixels per mm
        return WIDTH_PX / zoom if zoom > 0 else 1.0

    @staticmethod
    def _lines(panel) -> np.ndarray:
        """Two (start, direction) vectors through the point across the volume's displayed extent."""
        dims = panel.model.dims
        point = np.asarray(dims.point, dtype=float)
        extent = np.asarray(panel.volume_layer.extent.world, dtype=float)
        offset = dims.ndim - extent.shape[1]
        rows, cols = dims.displayed[-2:]
        lines = []
        for axis in (rows, cols):
            start = point.copy()
            start[axis] = extent[0, axis - offset]
            direction = np.zeros_like(point)
            direction[axis] = extent[1, axis - offset] - extent[0, axis - offset]
            lines.append([start, direction])
        return np.asarray(lines)

    def _make_redraw(self, key: str):
        def on_change(event=None):
            self.redraw(key)

        return on_change

    def _make_drag_callback(self, key: str):
        def on_drag(viewer, event):
            if not any(m == MODIFIER for m in getattr(event, "modifiers", ())):  # vispy Keys equal their names
                return
            self.move_to(event.position, key)
            yield
            while event.type == "mouse_move":
                self.move_to(event.position, key)
                yield

        return on_drag
