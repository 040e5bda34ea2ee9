"""Small per-panel controls of the MRI grid: the overlays' switches and opacity, "not loaded".

:class:`OverlayControls` is a compact layer list of one panel: for every layer above the
volume (tumour masks, Grad-CAM maps …) a check box (visible) with the layer's name and an
opacity slider, kept in both directions in step with the napari layer. The volume itself is
not listed: its window / level has the preset box and the right-drag.

:class:`EmptyPanelNotice` covers a panel's canvas and its slice slider while it has no volume
("T2-post — not loaded" on black: there is nothing to slice), and while a case switch gives the
last case's layers the next case's data ("T2-post — opening the next case…").
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

from .visibility import set_visible

VolumeGetter = Callable[[], object | None]


class OverlayRow(QWidget):
    """[✓ name] [opacity] for one napari layer."""

    def __init__(self, layer, parent=None):
        super().__init__(parent)
        self.layer = layer
        self.setObjectName(f"harm3_overlay_{layer.name}")
        self.visible_box = QCheckBox(layer.name)
        self.visible_box.setChecked(bool(layer.visible))
        self.visible_box.setToolTip(f"Show / hide {layer.name} in this panel")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(100 * float(layer.opacity)))
        self.opacity.setFixedWidth(64)
        self.opacity.setToolTip(f"Opacity of {layer.name}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.visible_box)
        layout.addWidget(self.opacity)
        self.visible_box.toggled.connect(self._on_box)
        self.opacity.valueChanged.connect(self._on_slider)
        layer.events.visible.connect(self._on_layer_visible)
        layer.events.opacity.connect(self._on_layer_opacity)

    def release(self) -> None:
        self.layer.events.visible.disconnect(self._on_layer_visible)
        self.layer.events.opacity.disconnect(self._on_layer_opacity)

    def _on_box(self, checked: bool) -> None:
        set_visible(self.layer, checked)  # not again when the box only followed its layer

    def _on_slider(self, value: int) -> None:
        self.layer.opacity = value / 100.0

    def _on_layer_visible(self, event=None) -> None:
        self.visible_box.setChecked(bool(self.layer.visible))

    def _on_layer_opacity(self, event=None) -> None:
        value = round(100 * float(self.layer.opacity))
        if self.opacity.value() != value:
            self.opacity.blockSignals(True)
            self.opacity.setValue(value)
            self.opacity.blockSignals(False)


class OverlayControls(QWidget):
    """The overlay rows of one panel's viewer model (every layer but the volume)."""

    def __init__(self, model, volume: VolumeGetter, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_overlay_controls")
        self.model = model
        self.volume = volume
        self.rows: list[OverlayRow] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)
        events = model.layers.events
        for emitter in (events.inserted, events.removed, events.moved):
            emitter.connect(self.rebuild)
        self.rebuild()

    def disconnect_model(self) -> None:
        events = self.model.layers.events
        for emitter in (events.inserted, events.removed, events.moved):
            emitter.disconnect(self.rebuild)
        self._clear()

    def row(self, name: str) -> OverlayRow:
        return next(r for r in self.rows if r.layer.name == name)

    def _clear(self) -> None:
        for row in self.rows:
            row.release()
            self._layout.removeWidget(row)
            row.deleteLater()
        self.rows = []

    def rebuild(self, event=None) -> None:
        self._clear()
        volume = self.volume()
        for layer in reversed(list(self.model.layers)):  # top layer first, as napari lists them
            if layer is volume:
                continue
            row = OverlayRow(layer, self)
            self._layout.addWidget(row)
            self.rows.append(row)
        self.setVisible(bool(self.rows))


class EmptyPanelNotice(QLabel):
    """A "not loaded" cover over ``target`` (the panel's QtViewer), following its geometry.

    A child of ``target``'s parent, not of ``target``: a QtViewer is a QSplitter, which would
    take any child of its own as one more pane."""

    def __init__(self, target: QWidget, title: str):
        super().__init__(f"{title} — not loaded", target.parentWidget())
        self.setObjectName("harm3_not_loaded")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: black; color: #9a9a9a; font-size: 15px;")
        self._target = target
        self._empty_text = self.text()
        self._loaded = False
        self._covering = False
        target.installEventFilter(self)
        self.setGeometry(target.geometry())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._target and event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self.setGeometry(self._target.geometry())
        return False

    def set_loaded(self, loaded: bool) -> None:
        self._loaded = loaded
        if self._covering:
            return  # under a cover until :meth:`uncover`
        self.setText(self._empty_text)
        self._show(not loaded)

    def cover(self, text: str) -> None:
        """Cover the panel with ``text`` whatever it holds (e.g. the last case's layers while the
        next case's data go into them) until :meth:`uncover`."""
        self._covering = True
        self.setText(text)
        self._show(True)

    def uncover(self) -> None:
        if self._covering:
            self._covering = False
            self.set_loaded(self._loaded)

    def _show(self, visible: bool) -> None:
        self.setVisible(visible)
        if visible:
            self.setGeometry(self._target.geometry())
            self.raise_()
