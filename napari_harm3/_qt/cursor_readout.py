"""What is under the cursor in an MRI panel: world position (mm), voxel index, intensity.

:func:`voxel_under` reads the panel's volume layer at a napari world position (the
viewer's ``cursor.position``, mm, axes z, y, x in the patient's LPS frame); the voxel is the
nearest one, as napari draws it. :class:`CursorReadout` is the label under a panel's canvas
that shows it as the mouse moves over any panel of the grid, with the label value of the
panel's visible masks and the volume's current window / level::

    x −12.3  y 40.1  z 10.0 mm · ijk 34 30 22 · 812.4 · tumour 1      W 900 L 450
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels
from qtpy.QtWidgets import QLabel, QSizePolicy


@dataclass(frozen=True)
class VoxelReadout:
    world_zyx: tuple[float, float, float]  # mm, the position asked about
    index_kji: tuple[int, int, int]  # nearest voxel, array order (k, j, i)
    value: float | None  # intensity, None outside the volume

    @property
    def inside(self) -> bool:
        return self.value is not None


def nearest_index(layer, world_position) -> tuple[int, ...]:
    """Nearest voxel (array index) of ``layer`` to a world position (napari's world_to_data)."""
    data = np.asarray(layer.world_to_data(tuple(world_position)), dtype=float)
    return tuple(int(v) for v in np.round(data))


def value_at(layer, index) -> float | None:
    """The layer's array value at ``index``, None outside the array."""
    shape = layer.data.shape
    if len(index) != len(shape) or any(i < 0 or i >= n for i, n in zip(index, shape)):
        return None
    return float(np.asarray(layer.data[tuple(index)]))


def voxel_under(layer, world_position) -> VoxelReadout:
    """Intensity of ``layer`` (a 3D image) at the voxel nearest to ``world_position`` (mm)."""
    position = tuple(float(v) for v in world_position)[-layer.ndim:]
    index = nearest_index(layer, position)
    return VoxelReadout(world_zyx=tuple(position[-3:]), index_kji=tuple(index[-3:]), value=value_at(layer, index))


def format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value)}"
    return f"{value:.4g}" if abs(value) >= 1000 or abs(value) < 0.01 else f"{value:.1f}"


def readout_text(readout: VoxelReadout, masks: tuple[tuple[str, float | None], ...] = ()) -> str:
    """One line: LPS x, y, z in mm, the voxel as i j k (column, row, slice) and its value."""
    z, y, x = readout.world_zyx
    k, j, i = readout.index_kji
    where = f"x {x:.1f}  y {y:.1f}  z {z:.1f} mm"
    if not readout.inside:
        return f"{where} · outside the volume"
    text = f"{where} · ijk {i} {j} {k} · {format_number(readout.value)}"
    for name, label in masks:
        if label is not None:
            text += f" · {name} {format_number(label)}"
    return text


def window_text(layer) -> str:
    lo, hi = (float(v) for v in layer.contrast_limits)
    return f"W {format_number(hi - lo)} L {format_number((hi + lo) / 2)}"


class CursorReadout(QLabel):
    """The readout line of one panel: its own volume at the world position under the cursor
    of any followed panel (linked panels share the position, so T1 and T2 values of one
    place are read side by side), and the volume's window / level as it changes."""

    def __init__(self, model, volume: Callable[[], object | None], parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_cursor_readout")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setStyleSheet("font-family: monospace; font-size: 11px;")
        self.setToolTip("Under the cursor: patient position (LPS, mm), voxel (i j k) and intensity of this "
                        "panel's volume, mask labels; window (W) and level (L) of the volume")
        self.model = model
        self.volume = volume
        self.position: tuple | None = None
        self.readout: VoxelReadout | None = None
        self._watched = None
        self._followed: list = []
        self.follow(model)
        self.refresh()

    def follow(self, model) -> None:
        """Read the volume wherever ``model``'s cursor is (a linked panel's, or its own)."""
        if not any(m is model for m in self._followed):
            model.cursor.events.position.connect(self._on_cursor)
            self._followed.append(model)

    def disconnect_model(self) -> None:
        for model in self._followed:
            model.cursor.events.position.disconnect(self._on_cursor)
        self._followed = []
        self._watch(None)

    def _on_cursor(self, event) -> None:
        self.show_at(event.value)

    def show_at(self, world_position) -> None:
        self.position = tuple(float(v) for v in world_position)
        self.refresh()

    def _watch(self, layer) -> None:
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.contrast_limits.disconnect(self.refresh)
        self._watched = layer
        if layer is not None:
            layer.events.contrast_limits.connect(self.refresh)

    def refresh(self, event=None) -> None:
        layer = self.volume()
        self._watch(layer)
        if layer is None:
            self.readout = None
            self.setText("")
            return
        position = self.position
        if position is None or len(position) < 3:
            self.readout = None
            self.setText(window_text(layer))
            return
        self.readout = voxel_under(layer, position)
        masks = tuple((mask.name, value_at(mask, nearest_index(mask, position[-mask.ndim:])))
                      for mask in self.model.layers
                      if isinstance(mask, Labels) and mask.visible and mask.ndim == 3)
        self.setText(f"{readout_text(self.readout, masks)}    {window_text(layer)}")
