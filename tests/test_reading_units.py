"""The reading conventions' arithmetic, without a canvas: window/level from a drag, wheel
notches to slices, the readout line."""

from __future__ import annotations

import pytest

from napari_harm3._qt.cursor_readout import VoxelReadout, readout_text
from napari_harm3._qt.reading_mouse import WINDOW_LEVEL_PIXELS, _WheelProgress, window_level_from_drag


def test_drag_right_widens_the_window_and_down_raises_the_level():
    span = 1000.0
    per_pixel = span / WINDOW_LEVEL_PIXELS
    lo, hi = window_level_from_drag((100.0, 500.0), dx=40, dy=0, span=span)
    assert (hi - lo) == pytest.approx(400 + 40 * per_pixel) and (lo + hi) / 2 == pytest.approx(300)
    lo, hi = window_level_from_drag((100.0, 500.0), dx=0, dy=-20, span=span)  # up: lower level, brighter
    assert (hi - lo) == pytest.approx(400) and (lo + hi) / 2 == pytest.approx(300 - 20 * per_pixel)
    lo, hi = window_level_from_drag((100.0, 500.0), dx=-10_000, dy=0, span=span)  # never inverted
    assert 0 < hi - lo <= span * 0.01


def test_fractional_wheel_notches_add_up_to_whole_slices():
    progress = _WheelProgress()
    assert [progress.take(0.4) for _ in range(5)] == [0, 0, 1, 0, 1]
    assert progress.take(-3.0) == -3  # a mouse wheel's whole notches: one slice each
    assert [progress.take(0.5), progress.take(0.5)] == [0, 1]


def test_readout_line_names_position_voxel_value_and_masks():
    inside = VoxelReadout(world_zyx=(10.0, -3.25, 4.0), index_kji=(22, 30, 34), value=812.4)
    text = readout_text(inside, (("tumour", 1.0), ("hidden", None)))
    assert text == "x 4.0  y -3.2  z 10.0 mm · ijk 34 30 22 · 812.4 · tumour 1"
    outside = VoxelReadout(world_zyx=(0.0, 0.0, 0.0), index_kji=(-1, 0, 0), value=None)
    assert readout_text(outside).endswith("outside the volume")
