"""One control group for all overlay layers (Grad-CAM, slide heatmaps): opacity, colormap, threshold.

The threshold sets the low contrast limit of each overlay (maps are in [0, 1]): values below it
are drawn as the colormap's lowest colour (black, i.e. nothing in additive blending).
"""

from __future__ import annotations

from typing import Callable, Iterable

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QSlider

COLORMAPS = ("inferno", "turbo", "magma", "viridis", "hot", "jet")


def _slider(value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(value)
    return slider


class OverlayControls(QGroupBox):
    """Opacity slider, colormap combo and threshold slider applied to ``layers()``."""

    def __init__(self, layers: Callable[[], Iterable], parent=None):
        super().__init__("Overlays", parent)
        self._layers = layers
        self.opacity = _slider(55)
        self.opacity.setObjectName("harm3_overlay_opacity")
        self.colormap = QComboBox()
        self.colormap.setObjectName("harm3_overlay_colormap")
        self.colormap.addItems(COLORMAPS)
        self.threshold = _slider(0)
        self.threshold.setObjectName("harm3_overlay_threshold")
        self.threshold.setToolTip("Hide map values below this fraction (contrast limit low)")
        form = QFormLayout(self)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colormap", self.colormap)
        form.addRow("Threshold", self.threshold)
        self.opacity.valueChanged.connect(self.apply)
        self.colormap.currentTextChanged.connect(self.apply)
        self.threshold.valueChanged.connect(self.apply)

    def apply(self, *_args) -> int:
        """Style every overlay layer now; returns how many were styled."""
        low = min(self.threshold.value() / 100.0, 0.99)
        count = 0
        for layer in self._layers():
            layer.opacity = self.opacity.value() / 100.0
            layer.colormap = self.colormap.currentText()
            layer.contrast_limits = (low, 1.0)
            count += 1
        return count
