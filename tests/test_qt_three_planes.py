"""The "3 planes" tab: one grid volume in axial, coronal and sagittal canvases, built when the
tab is first shown, sharing the grid layer's array; each canvas in its plane with its letters
and the phantom's balls on their lettered sides; a Shift-click in one puts all three on the
clicked world point (within half a voxel), the wheel in one moves the others' slices; a case
switch leaves nothing of the previous case in it."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from test_orientation_planes import IN_PLANE, OPPOSITE, marker_sides
from test_qt_mri_reading import _wheel
from test_qt_planes import grey_bright

from napari_harm3.core.mri.orientation import (
    DISPLAYED_AXES,
    PLANES,
    dims_order,
    plane_letters,
)
from napari_harm3.core.synth.orientation_phantom import MARKERS, orientation_phantom

pytestmark = pytest.mark.gui


@pytest.fixture
def make_views(make_napari_viewer):
    """Factory of the main-area tabs (MRI grid | 3 planes | Slide) holding the phantom."""
    from qtpy.QtWidgets import QLabel

    from napari_harm3._qt.mri_grid import MriGrid
    from napari_harm3._qt.reading_layout import CaseViews

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        anchor = QLabel("case panel")
        viewer.window.add_dock_widget(anchor, name="case", area="right")
        grid = MriGrid()
        views = CaseViews.install(grid, anchor)
        for key, variant in (("t1_pre", "axial"), ("t2_pre", "coronal")):
            volume = orientation_phantom(variant)
            grid.set_volume(key, volume.data, affine=volume.affine, name=key, contrast_limits=(0, 1000))
        made.append((views, grid))
        return views, grid

    yield factory
    for views, grid in made:
        views.close_viewers()
        grid.close_viewers()
    made.clear()


def fits(canvas) -> bool:
    """The canvas shows its whole volume (fitted to its laid-out size)."""
    model = canvas.model
    displayed = list(model.dims.displayed)
    field = np.ptp(np.asarray(canvas.volume_layer.extent.world)[:, displayed], axis=0)
    return bool(np.all(field * model.scene.camera.zoom <= np.asarray(model.canvas.size) + 1))


def test_three_planes_of_one_volume_linked_by_the_world_point(make_views, qtbot):
    from napari_harm3._qt.orientation_labels import edge_texts

    views, grid = make_views()
    view = views.three_planes
    assert not view.built  # no GL canvases until the tab is shown
    assert [view.selector.itemText(i) for i in range(view.selector.count())] == ["T1-pre", "T2-pre"]
    views.show_three_planes()
    assert view.built and view.shown_key == "t1_pre"  # T1-pre by default
    qtbot.waitUntil(lambda: all(c.qt_viewer.canvas.native.isVisible() for c in view.panels.values()), timeout=5000)
    source = grid.panels["t1_pre"].volume_layer
    view.move_to((0.0, 0.0, 0.0))
    assert all(view.crosshair.layer(p).visible for p in PLANES)
    view.crosshair.show(False)  # its lines through the origin would cut the balls in two
    for plane, canvas in view.panels.items():
        assert canvas.volume_layer.data is source.data  # shared, not copied
        assert np.allclose(canvas.volume_layer.affine.affine_matrix, source.affine.affine_matrix)
        assert tuple(canvas.model.dims.order) == dims_order(plane)
        assert np.allclose(canvas.model.dims.point, 0.0)
        letters = edge_texts(canvas.model)
        assert letters == plane_letters(plane)
        canvas.model.canvas.overlays.scale_bar.visible = False
        qtbot.waitUntil(lambda: fits(canvas), timeout=5000)  # refitted once laid out
        sides = marker_sides(grey_bright(canvas.qt_viewer.screenshot(flash=False)), letters, 128)
        big, small = sorted(IN_PLANE[plane], key=lambda m: -MARKERS[m][1])
        found = dict(zip((big, small), [sides[a] for a in sorted(sides, reverse=True)]))
        for marker, edge in found.items():
            assert letters[edge] == marker and letters[OPPOSITE[edge]] != marker, (plane, found)

    # Shift-click in the sagittal canvas: the world point under the pixel, from its camera
    canvas = view.panels["sagittal"]
    native, model = canvas.qt_viewer.canvas.native, canvas.model
    height, width = native.height(), native.width()
    px, py = width // 2 + 19, height // 2 - 13
    rows, cols = DISPLAYED_AXES["sagittal"]
    zoom, centre = model.scene.camera.zoom, model.scene.camera.center
    expected = {rows: centre[-3 + rows] - (py - height / 2) / zoom, cols: centre[-3 + cols] + (px - width / 2) / zoom}
    qtbot.mouseMove(native, QPoint(px, py))
    qtbot.mouseClick(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(px, py))
    qtbot.waitUntil(lambda: abs(model.dims.point[rows] - expected[rows]) < 3, timeout=5000)
    spacing = np.abs(np.diag(source.affine.affine_matrix))[:3]
    for plane, other in view.panels.items():
        point = other.model.dims.point
        for axis, value in expected.items():
            assert abs(point[axis] - value) <= spacing[axis] / 2, (plane, axis, point, value)
        assert point[2] == pytest.approx(0.0)  # the sagittal slice stays
        lines = view.crosshair.layer(plane).data  # two lines through the point
        shown_rows, shown_cols = dims_order(plane)[1:]
        assert np.allclose(lines[0, 0, shown_cols], point[shown_cols])
        assert np.allclose(lines[1, 0, shown_rows], point[shown_rows])

    # the wheel in the axial canvas: one slice up there, the coronal and sagittal follow
    axial, coronal = view.panels["axial"].model, view.panels["coronal"].model
    step = axial.dims.current_step[0]
    _wheel(view.panels["axial"].qt_viewer.canvas.native, 1)
    qtbot.waitUntil(lambda: axial.dims.current_step[0] == step + 1, timeout=5000)
    assert coronal.dims.point[0] == pytest.approx(axial.dims.point[0])

    # a mask added to the T1-pre panel shows in the three planes, on the same array, and goes with it
    mask = np.zeros(source.data.shape, dtype=np.int32)
    mask[2:4, 5:9, 5:9] = 1
    added = grid.add_overlay("t1_pre", mask, kind="labels", name="tumour")
    assert all(any(layer.data is added.data for layer in c.model.layers) for c in view.panels.values())
    grid.layers("t1_pre").remove(added)
    assert not any(layer.data is added.data for c in view.panels.values() for layer in c.model.layers)

    # a map of the case withdrawn (the case closes; it leaves its list in a later turn): its
    # copies here are off the screen and empty at once, and leave with it
    from napari_harm3._qt.layer_removal import is_withdrawn, remove_in_turns, removals_under_way

    cam = grid.add_overlay("t1_pre", np.ones(source.data.shape, np.float32), kind="image", name="Grad-CAM",
                           metadata={"harm3_case": "A"})
    copies = [layer for c in view.panels.values() for layer in c.model.layers if layer.data is cam.data]
    assert len(copies) == 3 and all(copy.visible for copy in copies)
    remove_in_turns([(grid.layers("t1_pre"), [cam])])
    assert cam in grid.layers("t1_pre")  # still in its list, this turn
    assert all(is_withdrawn(copy) and not copy.visible and not copy.data.any() for copy in copies)
    assert not any(layer.metadata.get("harm3_case") == "A" for c in view.panels.values() for layer in c.model.layers)
    qtbot.waitUntil(lambda: not removals_under_way(), timeout=10_000)
    assert not any(copy in c.model.layers for c in view.panels.values() for copy in copies)

    # another volume, then a case switch: nothing of the previous case stays
    view.choose("t2_pre")
    assert view.panels["axial"].volume_layer.data is grid.panels["t2_pre"].volume_layer.data
    previous = [grid.panels[k].volume_layer.data for k in ("t1_pre", "t2_pre")]
    grid.clear()
    assert view.selector.count() == 0
    for canvas in view.panels.values():
        assert canvas.volume_layer is None and edge_texts(canvas.model) == dict.fromkeys(plane_letters("axial"), "")
        assert not any(layer.data is old for layer in canvas.model.layers for old in previous)
    fresh = orientation_phantom("axial flipped")
    with qtbot.waitSignal(grid.volume_set, timeout=5000):
        grid.set_volume("t1_post", fresh.data, affine=fresh.affine, name="t1_post")
    assert view.shown_key == "t1_post"
    assert all(c.volume_layer.data is grid.panels["t1_post"].volume_layer.data for c in view.panels.values())
    assert [tuple(view.panels[p].model.dims.order) for p in PLANES] == [dims_order(p) for p in PLANES]
