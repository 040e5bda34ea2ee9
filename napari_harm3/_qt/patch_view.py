"""A slide patch at full resolution, and a gallery of the top-k patches per attention scale."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QIcon, QImage, QPixmap
from qtpy.QtWidgets import QComboBox, QGridLayout, QLabel, QToolButton, QVBoxLayout, QWidget

ICON_PX = 72


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the QImage must not outlive the array


class PatchView(QWidget):
    """One level-0 patch (its pixels, position, score); docked next to the slide viewer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_patch_view")
        self.image = QLabel("Click the slide heatmap (or a gallery patch) to see that patch at full resolution.")
        self.image.setWordWrap(True)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(256, 256)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        self.rgb = None

    def show_patch(self, rgb: np.ndarray, caption: str) -> None:
        self.rgb = rgb
        pixmap = _pixmap(rgb)
        side = max(256, min(512, rgb.shape[0]))
        self.image.setPixmap(pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))
        self.caption.setText(caption)


class PatchGallery(QWidget):
    """Top-k patches per scale; clicking one emits ``patch_clicked(scale, index)``."""

    patch_clicked = Signal(str, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_patch_gallery")
        self.scale = QComboBox()
        self.scale.setToolTip("Attention map whose top patches are shown")
        self.scale.currentTextChanged.connect(self._fill)
        self.grid = QGridLayout()
        self.grid.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scale)
        layout.addLayout(self.grid)
        self.patches: dict = {}
        self.buttons: list = []

    def set_patches(self, patches: dict) -> None:
        """``patches``: scale → ((x, y, size, score, rgb), ...) best first."""
        self.patches = dict(patches)
        self.scale.blockSignals(True)
        self.scale.clear()
        self.scale.addItems(list(self.patches))
        self.scale.blockSignals(False)
        self._fill(self.scale.currentText())

    def _fill(self, scale: str) -> None:
        for button in self.buttons:
            self.grid.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        for index, (x, y, size, score, rgb) in enumerate(self.patches.get(scale, ())):
            button = QToolButton()
            button.setIcon(QIcon(_pixmap(rgb)))
            button.setIconSize(_pixmap(rgb).size().scaled(ICON_PX, ICON_PX, Qt.AspectRatioMode.KeepAspectRatio))
            button.setToolTip(f"{scale} #{index + 1}: score {score:.3f} at level-0 ({x}, {y}), {size} px")
            button.clicked.connect(lambda _=False, s=scale, i=index: self.patch_clicked.emit(s, i))
            self.grid.addWidget(button, index // 3, index % 3)
            self.buttons.append(button)
