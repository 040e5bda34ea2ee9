"""The grid's planes on screen: one switch (buttons and keys A / C / S) turns all four panels;
pictures of each plane show the phantom's left / anterior / superior balls on the edges whose
letters say so, in every panel (axial DICOM-like, NIfTI stored flipped, coronal and oblique
acquisitions, the last two resliced onto T1-pre); a Shift-click puts every panel on the
clicked world point (within half a voxel)."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from test_orientation_planes import IN_PLANE, OPPOSITE, marker_sides

from napari_harm3.core.mri.orientation import (
    DISPLAYED_AXES,
    PLANES,
    dims_order,
    plane_letters,
)
from napari_harm3.core.synth.orientation_phantom import MARKERS, orientation_phantom

pytestmark = pytest.mark.gui

VARIANT_OF = {"t1_pre": "axial", "t1_post": "axial flipped", "t2_pre": "coronal", "t2_post": "oblique"}


@pytest.fixture
def make_grid(make_napari_viewer):
    """Factory of a docked MriGrid holding the phantom in four acquisition variants (a factory:
    napari's leak check fails a test whose QtViewers outlive it)."""
    from napari_harm3._qt.mri_grid import MriGrid

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        grid = MriGrid()
        viewer.window.add_dock_widget(grid, name="MRI", area="right")
        for key, variant in VARIANT_OF.items():
            volume = orientation_phantom(variant)
            grid.set_volume(key, volume.data, affine=volume.affine, name=key, contrast_limits=(0, 1000))
            grid.model(key).canvas.overlays.scale_bar.visible = False  # white: not a ball
        made.append(grid)
        return grid

    yield factory
    for grid in made:
        grid.close_viewers()
    made.clear()


def grey_bright(shot: np.ndarray) -> np.ndarray:
    """Image-pixel brightness of a screenshot; coloured text (title, letters) and lines count 0."""
    rgb = shot[..., :3].astype(int)
    grey = (np.abs(rgb[..., 0] - rgb[..., 1]) < 8) & (np.abs(rgb[..., 0] - rgb[..., 2]) < 8)
    return np.where(grey, rgb[..., 0], 0)


def test_three_planes_show_markers_on_their_lettered_sides(make_grid, qtbot):
    from napari_harm3._qt.orientation_labels import NOTE_KEY, edge_texts

    grid = make_grid()
    qtbot.waitUntil(lambda: all(grid.qt_viewer(k).canvas.native.isVisible() for k in VARIANT_OF), timeout=5000)
    assert "resliced onto T1-pre" in grid.model("t2_pre").canvas.overlays[NOTE_KEY].text
    assert "resliced onto T1-pre" in grid.model("t2_post").canvas.overlays[NOTE_KEY].text
    assert "resliced" not in grid.model("t1_post").canvas.overlays[NOTE_KEY].text  # only flipped: exact
    for plane in PLANES:
        grid.planes.set_plane(plane)
        grid.model("t1_pre").dims.point = (0.0, 0.0, 0.0)
        for key in VARIANT_OF:
            model = grid.model(key)
            assert tuple(model.dims.order) == dims_order(plane)
            assert np.allclose(model.dims.point, 0.0)  # linked
            letters = edge_texts(model)
            assert letters == plane_letters(plane)
            shot = grid.qt_viewer(key).screenshot(flash=False)
            sides = marker_sides(grey_bright(shot), letters, 128)
            big, small = sorted(IN_PLANE[plane], key=lambda m: -MARKERS[m][1])
            found = dict(zip((big, small), [sides[a] for a in sorted(sides, reverse=True)]))
            for marker, edge in found.items():
                assert letters[edge] == marker and letters[OPPOSITE[edge]] != marker, (key, plane, found)


def test_keys_switch_planes_and_shift_click_moves_every_panel(make_grid, qtbot):
    grid = make_grid()
    qtbot.waitUntil(lambda: all(grid.qt_viewer(k).canvas.native.isVisible() for k in VARIANT_OF), timeout=5000)
    canvas = grid.qt_viewer("t2_pre").canvas.native
    grid.window().activateWindow()
    canvas.setFocus()
    qtbot.waitUntil(canvas.hasFocus, timeout=5000)
    with qtbot.waitSignal(grid.plane_changed, timeout=5000) as blocker:
        qtbot.keyClick(canvas, Qt.Key.Key_C)
    assert blocker.args == ["coronal"] and grid.planes.bar.buttons["coronal"].isChecked()
    assert all(tuple(grid.model(k).dims.order) == dims_order("coronal") for k in VARIANT_OF)
    slice_y = grid.model("t1_pre").dims.point[1]

    # the world point under a canvas pixel, from the camera (coronal: z up, x to the right)
    model = grid.model("t2_pre")
    height, width = canvas.height(), canvas.width()
    px, py = width // 2 + 23, height // 2 - 17
    rows, cols = DISPLAYED_AXES["coronal"]
    zoom, centre = model.scene.camera.zoom, model.scene.camera.center
    expected = {rows: centre[-3 + rows] - (py - height / 2) / zoom, cols: centre[-3 + cols] + (px - width / 2) / zoom}
    qtbot.mouseMove(canvas, QPoint(px, py))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(px, py))
    qtbot.waitUntil(lambda: grid.planes.crosshair.layer("t1_pre") is not None, timeout=5000)
    for key in VARIANT_OF:
        point = grid.model(key).dims.point
        spacing = np.abs(np.diag(grid.panels[key].volume_layer.affine.affine_matrix))[:3]
        for axis, value in expected.items():
            assert abs(point[axis] - value) <= spacing[axis] / 2, (key, axis, point, value)
        assert point[1] == pytest.approx(slice_y)  # the slice stays
        lines = grid.planes.crosshair.layer(key).data  # (2 lines, start/direction, zyx)
        assert np.allclose(lines[0, 0, cols], point[cols]) and np.allclose(lines[1, 0, rows], point[rows])

    # a slice step redraws the crosshair without setting its (unchanged) visibility again: napari
    # would answer each such set with a scene update of the canvas
    crosshair = grid.planes.crosshair.layer("t1_pre")
    visible_events = []
    crosshair.events.visible.connect(visible_events.append)
    before = crosshair.data.copy()
    model = grid.model("t1_pre")
    model.dims.point = tuple(v + (3.0 if axis == 1 else 0.0) for axis, v in enumerate(model.dims.point))
    assert not np.array_equal(crosshair.data, before) and visible_events == []
    crosshair.events.visible.disconnect(visible_events.append)

    with qtbot.waitSignal(grid.plane_changed, timeout=5000):
        qtbot.keyClick(canvas, Qt.Key.Key_A)
    # the axial plane now passes through the clicked point: its z is the crosshair's
    assert grid.model("t2_post").dims.point[0] == pytest.approx(grid.model("t1_pre").dims.point[0])
    assert abs(grid.model("t2_post").dims.point[0] - expected[rows]) <= 1.5


def test_reading_mouse_works_in_every_plane(make_grid, qtbot):
    """Wheel = one slice through the plane's own axis, Ctrl+wheel = zoom about the cursor (the
    point under it stays put, whatever the camera's orientation), right-drag = this panel's
    window only: in coronal and sagittal as in axial."""
    from qtpy.QtCore import QPoint, QPointF
    from qtpy.QtGui import QWheelEvent
    from qtpy.QtWidgets import QApplication
    from test_qt_mri_reading import _mouse, _move_until, _wheel

    from napari_harm3._qt.reading_mouse import ZOOM_PER_NOTCH

    def ctrl_wheel_at(widget, x, y):
        at = QPointF(x, y)
        QApplication.sendEvent(widget, QWheelEvent(at, QPointF(widget.mapToGlobal(at)), QPoint(0, 0), QPoint(0, 120),
                                                   Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                                                   Qt.ScrollPhase.NoScrollPhase, False))

    grid = make_grid()
    qtbot.waitUntil(lambda: all(grid.qt_viewer(k).canvas.native.isVisible() for k in VARIANT_OF), timeout=5000)
    native = grid.qt_viewer("t1_pre").canvas.native
    model, other = grid.model("t1_pre"), grid.model("t2_post")
    volume = grid.panels["t1_pre"].volume_layer

    def read_in(plane: str) -> None:
        grid.planes.set_plane(plane)
        axis = dims_order(plane)[0]
        step = model.dims.current_step[axis]
        _wheel(native, 1)
        qtbot.waitUntil(lambda: model.dims.current_step[axis] == step + 1, timeout=5000)
        assert other.dims.point[axis] == pytest.approx(model.dims.point[axis])  # linked
        x, y = native.width() * 0.6, native.height() * 0.4
        at_centre = tuple(model.cursor.position)  # the wheel's, at the canvas centre
        _move_until(qtbot, native, x, y, lambda: tuple(model.cursor.position) != at_centre)
        under, zoom = tuple(model.cursor.position), model.scene.camera.zoom
        ctrl_wheel_at(native, x, y)
        qtbot.waitUntil(lambda: model.scene.camera.zoom != pytest.approx(zoom), timeout=5000)
        assert model.dims.current_step[axis] == step + 1  # Ctrl+wheel does not slice
        _move_until(qtbot, native, x + 1, y, lambda: tuple(model.cursor.position) != under)
        _move_until(qtbot, native, x, y, lambda: np.allclose(model.cursor.position, under, atol=1.0))
        start, theirs = tuple(volume.contrast_limits), tuple(grid.panels["t2_post"].volume_layer.contrast_limits)
        _mouse(native, "press", x, y, right=True)
        _move_until(qtbot, native, x + 40, y, lambda: tuple(volume.contrast_limits) != start, right=True)
        _mouse(native, "release", x + 40, y, right=True)
        assert volume.contrast_limits[1] - volume.contrast_limits[0] > start[1] - start[0]
        assert tuple(grid.panels["t2_post"].volume_layer.contrast_limits) == pytest.approx(theirs)
        assert model.scene.camera.zoom == pytest.approx(zoom * ZOOM_PER_NOTCH)

    for plane in ("coronal", "sagittal"):
        read_in(plane)
