"""The slide viewer: a whole-slide image in a napari viewer, its µm scale bar and a minimap.

:class:`SlideView` puts a slide layer (from :func:`napari_harm3._layers.slide_layer` or the
slide reader) into a napari viewer — the main viewer of the case panel — turns the scale bar on
and owns the microns-per-pixel: a slide without mpp is shown in pixels with a warning until
:meth:`SlideView.set_mpp` gives it a value (layer scale updated, scale bar in µm).

:class:`SlideMinimap` draws the slide's thumbnail with the current field of view as a
rectangle; clicking or dragging on it moves the camera there.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QPointF, QRectF, Qt, Signal
from qtpy.QtGui import QColor, QImage, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from .layer_reuse import try_refill
from .visibility import set_visible

MPP_MISSING_MESSAGE = (
    "the slide records no microns per pixel: shown in pixels, and the models cannot run on it; "
    "enter µm/px in the Case tab (e.g. 0.25 for a 40x scan, 0.5 for 20x) and press Set µm/px"
)


class SlideMinimap(QWidget):
    """Thumbnail of the whole slide with the camera's field of view; click/drag pans."""

    #: emitted with the world (y, x) the user clicked
    clicked = Signal(float, float)

    def __init__(self, viewer_model, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_slide_minimap")
        self.viewer = viewer_model
        self._thumb: Optional[np.ndarray] = None
        self._qimage: Optional[QImage] = None
        self._world_size = (1.0, 1.0)  # (height, width) of the whole slide in world units
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Whole slide; the yellow box is the current view. Click to move there.")
        camera = viewer_model.scene.camera
        camera.events.center.connect(self._on_view_change)
        camera.events.zoom.connect(self._on_view_change)
        viewer_model.canvas.events.size.connect(self._on_view_change)

    def disconnect_viewer(self) -> None:
        camera = self.viewer.scene.camera
        camera.events.center.disconnect(self._on_view_change)
        camera.events.zoom.disconnect(self._on_view_change)
        self.viewer.canvas.events.size.disconnect(self._on_view_change)

    def _on_view_change(self, event=None) -> None:
        self.update()

    # -- content ----------------------------------------------------------------------
    def set_slide(self, thumbnail: Optional[np.ndarray], world_size: tuple[float, float]) -> None:
        """Show ``thumbnail`` (RGB uint8) of a slide whose full extent is ``world_size`` (h, w)."""
        if thumbnail is None:
            self._thumb, self._qimage = None, None
        else:
            thumb = np.ascontiguousarray(thumbnail[..., :3], dtype=np.uint8)
            h, w = thumb.shape[:2]
            self._thumb = thumb
            self._qimage = QImage(thumb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self._world_size = (float(world_size[0]), float(world_size[1]))
        self.update()

    def set_world_size(self, world_size: tuple[float, float]) -> None:
        self._world_size = (float(world_size[0]), float(world_size[1]))
        self.update()

    # -- geometry ---------------------------------------------------------------------
    def _image_rect(self) -> QRectF:
        """Where the thumbnail is drawn (aspect kept, centred)."""
        if self._thumb is None:
            return QRectF(0, 0, self.width(), self.height())
        h, w = self._thumb.shape[:2]
        s = min(self.width() / w, self.height() / h)
        dw, dh = w * s, h * s
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def world_to_widget(self, y: float, x: float) -> QPointF:
        r = self._image_rect()
        hy, wx = self._world_size
        return QPointF(r.left() + x / wx * r.width(), r.top() + y / hy * r.height())

    def widget_to_world(self, px: float, py: float) -> tuple[float, float]:
        r = self._image_rect()
        hy, wx = self._world_size
        y = (py - r.top()) / max(r.height(), 1e-9) * hy
        x = (px - r.left()) / max(r.width(), 1e-9) * wx
        return float(np.clip(y, 0, hy)), float(np.clip(x, 0, wx))

    def view_rect_world(self) -> tuple[float, float, float, float]:
        """(y0, x0, y1, x1) of the camera's field of view in world units."""
        camera = self.viewer.scene.camera
        cy, cx = camera.center[-2:]
        ch, cw = self.viewer.canvas.size
        half_h, half_w = ch / camera.zoom / 2, cw / camera.zoom / 2
        return cy - half_h, cx - half_w, cy + half_h, cx + half_w

    # -- Qt events --------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        if self._qimage is not None:
            painter.drawImage(self._image_rect(), self._qimage)
        y0, x0, y1, x1 = self.view_rect_world()
        p0, p1 = self.world_to_widget(y0, x0), self.world_to_widget(y1, x1)
        painter.setPen(QPen(QColor(255, 220, 0), 2))
        painter.drawRect(QRectF(p0, p1).intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._pan_to(event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._pan_to(event.position())

    def _pan_to(self, pos) -> None:
        y, x = self.widget_to_world(pos.x(), pos.y())
        self.pan_to(y, x)

    def pan_to(self, y: float, x: float) -> None:
        """Centre the camera on world (y, x)."""
        camera = self.viewer.scene.camera
        center = list(camera.center)
        center[-2:] = [y, x]
        camera.center = tuple(center)
        self.clicked.emit(y, x)


class SlideView:
    """The slide shown in a napari viewer: one slide layer, µm scale bar, mpp, minimap."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.layer = None
        self.minimap = SlideMinimap(viewer)

    @property
    def mpp(self) -> Optional[float]:
        return None if self.layer is None else self.layer.metadata.get("mpp")

    @property
    def mpp_missing(self) -> bool:
        return self.layer is not None and self.mpp is None

    def show(self, layer_data: tuple, thumbnail: Optional[np.ndarray] = None, mpp: Optional[float] = None):
        """Show ``layer_data`` (data, kwargs, "image") in place of the current slide; returns the layer.

        The last case's slide layer takes the new slide where it can (:mod:`.layer_reuse`): a
        removed layer costs napari a full ``gc.collect()`` and a new one its layer controls,
        vispy visual and first link, ~0.3 s each on the GUI thread (``bench_worklist.py
        --stalls``); otherwise a new layer replaces it."""
        data, kwargs, _ = layer_data
        layer = self.layer
        if layer is None or layer not in self.viewer.layers or not try_refill(layer, data, dict(kwargs), "image"):
            self.clear()
            layer = self.viewer.add_image(data, **dict(kwargs))
        self.layer = layer
        self.viewer.canvas.overlays.scale_bar.visible = True
        if mpp is not None and self.layer.metadata.get("mpp") is None:
            self.set_mpp(mpp)
        elif self.layer.metadata.get("mpp") is None:
            show_warning(MPP_MISSING_MESSAGE)
        self.minimap.set_slide(thumbnail, self._world_size())
        self.viewer.reset_view()
        return self.layer

    def _world_size(self) -> tuple[float, float]:
        if self.layer is None:
            return (1.0, 1.0)
        full = self.layer.data[0] if self.layer.multiscale else self.layer.data
        h, w = full.shape[:2]
        sy, sx = self.layer.scale[-2:]
        return (h * sy, w * sx)

    def set_mpp(self, mpp: float) -> None:
        """Give the slide its microns per pixel: layer scale and units become µm."""
        if self.layer is None:
            raise ValueError("no slide is open")
        mpp = float(mpp)
        if not (np.isfinite(mpp) and 0 < mpp < 1000):
            raise ValueError(f"µm/px must be a positive number below 1000, got {mpp}")
        camera = self.viewer.scene.camera
        old = float(self.layer.scale[-1])
        center = np.asarray(camera.center[-2:], dtype=float) * (mpp / old)
        zoom = camera.zoom * old / mpp
        self.layer.scale = (mpp, mpp)
        self.layer.units = ("um", "um")
        self.layer.metadata.update({"mpp": mpp, "mpp_missing": False, "mpp_source": "user"})
        self.minimap.set_world_size(self._world_size())
        # keep the same field of view after the rescale
        full = list(camera.center)
        full[-2:] = center
        camera.center = tuple(full)
        camera.zoom = zoom

    def hide(self) -> None:
        """Out of sight while the next case is put in: the layer stays to take the next slide
        (:meth:`show`) but reads nothing more (the last case's files are closed)."""
        if self.layer is not None:
            set_visible(self.layer, False)
        self.minimap.set_slide(None, (1.0, 1.0))

    def clear(self) -> None:
        if self.layer is not None and self.layer in self.viewer.layers:
            self.viewer.layers.remove(self.layer)
        self.layer = None
        self.minimap.set_slide(None, (1.0, 1.0))

    def screenshot(self, path=None) -> np.ndarray:
        """Canvas screenshot of the slide viewer (a shown ``napari.Viewer``), optionally as PNG."""
        from .images import save_png

        shot = self.viewer.screenshot(canvas_only=True, flash=False)
        if path is not None:
            save_png(shot, path)
        return shot
