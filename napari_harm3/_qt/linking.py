"""Keep several napari viewer models on the same place in WORLD coordinates.

Qt-free (only ``napari.components`` models): testable without a canvas. The MRI volumes of a
case may lie on different voxel grids (T2 coarser than T1) but share the patient's frame of
reference (each layer carries its index → world LPS mm affine). Linking slice *indices* would
therefore show different anatomy; we link what is common instead:

- ``dims.point`` — the slice position in world units (mm), every axis;
- ``dims.order`` — which axes are displayed (axial / coronal / sagittal);
- ``scene.camera.center`` and ``scene.camera.zoom`` — pan and zoom (canvas pixels per mm,
  so equal-sized panels show the same field of view).

Each viewer still slices its own layers at its nearest voxel to the shared world point. A
re-entrancy guard stops the echo (A → B → A …) that naive two-way event wiring produces.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

#: the linked fields of ``viewer.dims`` and of ``viewer.scene.camera``
_DIMS_FIELDS = ("order", "point")
_CAMERA_FIELDS = ("center", "zoom")


class ViewerLink:
    """Two-way link of dims point/order and camera center/zoom between viewer models.

    >>> link = ViewerLink([viewer_a, viewer_b])   # doctest: +SKIP
    >>> viewer_a.dims.set_point(0, 12.0)          # viewer_b.dims.point[0] is now 12.0 (mm)
    """

    def __init__(self, viewers: Iterable = (), *, dims: bool = True, camera: bool = True):
        self._viewers: list = []
        self._syncing = False
        self.link_dims = dims
        self.link_camera = camera
        self._callbacks: dict[int, list[tuple[object, object]]] = {}
        self._held: set[int] = set()  # ids of viewers that neither follow nor lead for now
        for viewer in viewers:
            self.add(viewer)

    # -- membership -----------------------------------------------------------------
    @property
    def viewers(self) -> tuple:
        return tuple(self._viewers)

    def add(self, viewer) -> None:
        """Link ``viewer``; it takes the current state of the first linked viewer."""
        if any(v is viewer for v in self._viewers):
            return
        self._viewers.append(viewer)
        connections = []
        if self.link_dims:
            for name in _DIMS_FIELDS:
                emitter = getattr(viewer.dims.events, name)
                callback = self._make_callback(viewer)
                emitter.connect(callback)
                connections.append((emitter, callback))
        if self.link_camera:
            for name in _CAMERA_FIELDS:
                emitter = getattr(viewer.scene.camera.events, name)
                callback = self._make_callback(viewer)
                emitter.connect(callback)
                connections.append((emitter, callback))
        self._callbacks[id(viewer)] = connections
        if len(self._viewers) > 1:
            self._push(self._viewers[0], [viewer])

    def remove(self, viewer) -> None:
        for emitter, callback in self._callbacks.pop(id(viewer), []):
            emitter.disconnect(callback)
        self._viewers = [v for v in self._viewers if v is not viewer]

    def disconnect(self) -> None:
        """Unlink every viewer (call before the viewers are closed)."""
        for viewer in list(self._viewers):
            self.remove(viewer)

    def hold(self, viewers) -> None:
        """Leave ``viewers`` out of the link until :meth:`release`: they neither follow the
        others nor lead them (a panel covered while the next case goes into it: moving its
        camera or slices repaints a canvas nobody sees, with the last case's layers)."""
        self._held.update(id(v) for v in viewers)

    def release(self, viewer, source=None) -> None:
        """Put ``viewer`` back in the link; it takes ``source``'s state (the first viewer not
        held when None) — only it, so one canvas repaints."""
        self._held.discard(id(viewer))
        source = source if source is not None else next(
            (v for v in self._viewers if v is not viewer and id(v) not in self._held), None)
        if source is not None and source is not viewer:
            self._push(source, [viewer])

    def release_all(self) -> None:
        """Put every held viewer back; they take the first unheld viewer's state (if any)."""
        held = [v for v in self._viewers if id(v) in self._held]
        source = next((v for v in self._viewers if id(v) not in self._held), None)
        self._held.clear()
        if held and source is not None:
            self._push(source, held)

    # -- synchronisation -----------------------------------------------------------------
    def sync_from(self, source) -> None:
        """Make every other linked viewer take ``source``'s position, pan and zoom."""
        self._push(source, [v for v in self._viewers if v is not source])

    def _make_callback(self, viewer):
        def on_change(event=None):
            if not self._syncing:
                self._push(viewer, [v for v in self._viewers if v is not viewer])

        return on_change

    def _push(self, source, targets) -> None:
        if id(source) in self._held:
            return
        targets = [t for t in targets if id(t) not in self._held]
        if self._syncing or not targets:
            return
        self._syncing = True
        try:
            for target in targets:
                if self.link_dims:
                    _copy_dims(source.dims, target.dims)
                if self.link_camera:
                    _copy_camera(source.scene.camera, target.scene.camera)
        finally:
            self._syncing = False


def _copy_dims(source, target) -> None:
    if source.ndim != target.ndim:
        # a panel without a volume yet (ndim 2) or a different dimensionality: link the
        # trailing axes only, which are the spatial (z, y, x) ones for our layers
        n = min(source.ndim, target.ndim)
        point = list(target.point)
        point[-n:] = source.point[-n:]
        target.point = tuple(point)
        return
    if tuple(target.order) != tuple(source.order):
        target.order = tuple(source.order)
    if not np.allclose(target.point, source.point):
        target.point = tuple(source.point)


def _copy_camera(source, target) -> None:
    if not np.allclose(target.center, source.center):
        target.center = tuple(source.center)
    if not np.isclose(target.zoom, source.zoom):
        target.zoom = source.zoom
