"""One control group for all overlay layers (Grad-CAM, slide heatmaps): opacity, colormap, threshold,
and a colour bar that says what the colours mean.

The threshold hides what lies below it: those values (and empty places: glass, outside the
MRI crop) are transparent, never painted in the colormap's lowest colour. The colormaps offered
are perceptually uniform; the default is the report's (``core/explain/colormaps.py``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QSlider

from .._layers import DEFAULT_THRESHOLD, OVERLAY_OPACITY
from ..core.explain.colormaps import DEFAULT_OVERLAY_COLORMAP, OVERLAY_COLORMAPS, overlay_colours

BAR_SIZE = (220, 14)


def _slider(value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(value)
    return slider


def colour_bar(name: str, threshold: float, size=BAR_SIZE) -> np.ndarray:
    """(h, w, 4) uint8 picture of the overlay colormap over [0, 1] (transparent part chequered)."""
    width, height = size
    controls, colours = overlay_colours(name, threshold)
    values = np.linspace(0.0, 1.0, width)
    rgba = np.stack([np.interp(values, controls, colours[:, c]) for c in range(4)], axis=-1)
    checks = ((np.arange(width)[None, :] // 4 + np.arange(height)[:, None] // 4) % 2) * 60 + 170
    base = np.repeat(checks[..., None], 3, axis=-1).astype(float)
    alpha = rgba[None, :, 3:4]
    picture = base * (1 - alpha) + 255 * rgba[None, :, :3] * alpha
    return np.concatenate([picture, np.full((height, width, 1), 255.0)], axis=-1).astype(np.uint8)


class OverlayControls(QGroupBox):
    """Opacity slider, colormap combo, threshold slider and colour bar; ``apply`` restyles."""

    def __init__(self, apply: Callable[[], int], parent=None):
        super().__init__("Overlays", parent)
        self._apply = apply
        self.opacity = _slider(int(round(100 * OVERLAY_OPACITY)))
        self.opacity.setObjectName("harm3_overlay_opacity")
        self.colormap = QComboBox()
        self.colormap.setObjectName("harm3_overlay_colormap")
        self.colormap.addItems(OVERLAY_COLORMAPS)
        self.colormap.setCurrentText(DEFAULT_OVERLAY_COLORMAP)
        self.threshold = _slider(int(round(100 * DEFAULT_THRESHOLD)))
        self.threshold.setObjectName("harm3_overlay_threshold")
        self.threshold.setToolTip("Hide map values below this (they become transparent)")
        self.bar = QLabel()
        self.bar.setObjectName("harm3_overlay_colour_bar")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colormap", self.colormap)
        form.addRow("Threshold", self.threshold)
        form.addRow(self.bar)
        form.addRow(self.legend)
        self.opacity.valueChanged.connect(self.apply)
        self.colormap.currentTextChanged.connect(self.apply)
        self.threshold.valueChanged.connect(self.apply)
        self._draw_bar()

    def values(self) -> tuple:
        """(colormap name, threshold in [0, 1), opacity in [0, 1])."""
        return self.colormap.currentText(), min(self.threshold.value() / 100.0, 0.99), self.opacity.value() / 100.0

    def _draw_bar(self) -> None:
        name, threshold, _ = self.values()
        picture = np.ascontiguousarray(colour_bar(name, threshold))
        image = QImage(picture.data, picture.shape[1], picture.shape[0], 4 * picture.shape[1],
                       QImage.Format.Format_RGBA8888).copy()
        self.bar.setPixmap(QPixmap.fromImage(image))
        self.legend.setText(f"0 ← colour → 1; below {threshold:.2f}: not painted. MRI: Grad-CAM map "
                            "(1 = its maximum). Slide: patch percentile rank (1 = most attended).")

    def apply(self, *_args) -> int:
        """Style every overlay layer now; returns how many were styled."""
        self._draw_bar()
        return self._apply()
