"""The linked MRI grid: four napari viewers on one world position (slice, pan, zoom).

Volumes on different voxel grids (T2 coarser than T1, shifted origin) share the patient's
frame (affine index → world mm); the grid must show the same world z in every panel."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


SEQ = ("t1_pre", "t1_post", "t2_pre", "t2_post")


def phantom(shape, spacing, origin):
    """A bright ellipsoid in world coordinates sampled on a (z, y, x) grid with an affine."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    z = origin[0] + spacing[0] * k
    y = origin[1] + spacing[1] * j
    x = origin[2] + spacing[2] * i
    r = (z / 60) ** 2 + (y / 40) ** 2 + (x / 50) ** 2
    data = np.where(r < 1, 800 + 200 * np.cos(x / 6.0), 50).astype(np.float32)
    data += np.random.default_rng(0).normal(0, 10, shape).astype(np.float32)
    return data, affine


T1 = dict(shape=(40, 64, 64), spacing=(4.0, 1.6, 1.6), origin=(-78.0, -51.2, -51.2))
T2 = dict(shape=(30, 48, 48), spacing=(5.0, 2.1, 2.1), origin=(-71.0, -50.0, -50.0))


@pytest.fixture
def make_grid(make_napari_viewer):
    """Factory of a shown viewer with a filled, docked MriGrid. A factory, not the grid itself:
    pytest keeps fixture values alive through teardown, and napari's fixture fails the test
    when a QtViewer (the grid holds four) outlives it."""
    from napari_harm3._qt.mri_grid import MriGrid

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        grid = MriGrid()
        viewer.window.add_dock_widget(grid, name="MRI", area="right")
        for key in SEQ:
            data, affine = phantom(**(T1 if key.startswith("t1") else T2))
            grid.set_volume(key, data, affine=affine, name=key, contrast_limits=(0, 1000))
        made.append(grid)
        return grid

    yield factory
    for grid in made:
        grid.close_viewers()
    made.clear()


def shown_world_z(grid, key):
    """World z (mm) of the slice panel ``key`` displays: its layer's nearest voxel plane."""
    layer = grid.panels[key].volume_layer
    k = round(float(layer.world_to_data(grid.model(key).dims.point)[0]))
    return float(layer.affine.affine_matrix[0, 0] * k + layer.affine.affine_matrix[0, 3]), k


def test_slice_zoom_pan_shared_in_world_mm(make_grid):
    grid = make_grid()
    grid.model("t1_pre").dims.set_point(0, 10.0)  # world z in mm, a T1 plane
    seen = {}
    for key in SEQ:
        spacing = (T1 if key.startswith("t1") else T2)["spacing"][0]
        z, k = shown_world_z(grid, key)
        # every panel shows its own plane nearest to z = 10 mm (T2 planes are 5 mm apart)
        assert abs(z - 10.0) <= spacing / 2 + 1e-6, (key, z)
        seen[key] = k
    assert shown_world_z(grid, "t1_pre")[0] == pytest.approx(10.0)
    assert shown_world_z(grid, "t2_post")[0] == pytest.approx(9.0)  # T2 plane 16: -71 + 16 * 5
    assert seen["t1_pre"] != seen["t2_pre"]  # the indices differ; the anatomy is the same
    # scrolling a T2 panel (by its own index) moves the T1 panels to the same world z
    grid.model("t2_pre").dims.set_current_step(0, 3)
    z = T2["origin"][0] + 3 * T2["spacing"][0]  # -56 mm, between two T1 planes
    assert shown_world_z(grid, "t2_pre")[0] == pytest.approx(z)
    assert shown_world_z(grid, "t2_post")[0] == pytest.approx(z)
    for key in ("t1_pre", "t1_post"):
        assert abs(shown_world_z(grid, key)[0] - z) <= T1["spacing"][0] / 2 + 1e-6

    # zoom / pan one panel: the others follow (same mm per canvas pixel, same centre)
    cam = grid.model("t2_pre").scene.camera
    cam.zoom = cam.zoom * 2.5
    cam.center = (0.0, 7.5, -3.0)
    for key in SEQ:
        other = grid.model(key).scene.camera
        assert other.zoom == pytest.approx(cam.zoom)
        assert tuple(other.center[-2:]) == pytest.approx((7.5, -3.0))


def test_overlays_in_named_panel_and_window_presets(make_grid):
    grid = make_grid()
    data, affine = phantom(**T2)
    mask = (data > 500).astype(np.uint8)
    layer = grid.add_overlay("t2_pre", mask, kind="labels", name="tumour")
    assert layer in grid.layers("t2_pre")
    assert layer not in grid.layers("t1_pre")
    np.testing.assert_allclose(layer.affine.affine_matrix, affine)  # the volume's affine by default
    heat = grid.add_overlay("t1_post", np.random.default_rng(1).random(T1["shape"]), colormap="inferno",
                            opacity=0.4, contrast_limits=(0.5, 1.0), name="gradcam")
    assert heat.opacity == pytest.approx(0.4) and heat.colormap.name == "inferno"
    with pytest.raises(KeyError, match="no MRI panel"):
        grid.add_overlay("flair", mask, kind="labels")

    # window presets change the contrast limits of that panel only
    layer = grid.panels["t1_pre"].volume_layer
    auto = grid.set_window("t1_pre", "auto")
    soft = grid.set_window("t1_pre", "soft tissue")
    assert tuple(layer.contrast_limits) == pytest.approx(soft)
    assert soft[0] > auto[0] and soft[1] < auto[1]  # narrower: 5-95th vs 1-99th percentile
    assert grid.panels["t1_pre"].preset.currentText() == "soft tissue"
    # the combo box drives the same thing
    grid.panels["t1_pre"].preset.setCurrentText("full range")
    assert tuple(layer.contrast_limits) == pytest.approx((float(layer.data.min()), float(layer.data.max())))
    # other panels keep their own window
    assert tuple(grid.panels["t2_pre"].volume_layer.contrast_limits) == pytest.approx((0, 1000))
    with pytest.raises(ValueError, match="unknown window preset"):
        grid.set_window("t1_pre", "bone")


def test_grid_screenshot_shows_the_images(make_grid, qtbot, tmp_path):
    grid = make_grid()
    grid.model("t1_pre").dims.set_point(0, 0.0)
    qtbot.waitUntil(lambda: all(grid.qt_viewer(k).canvas.native.isVisible() for k in SEQ), timeout=5000)
    shot = grid.screenshot(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000
    h, w = shot.shape[:2]
    for r in range(2):
        for c in range(2):
            tile = shot[r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2, :3].astype(float)
            assert tile.std() > 20, (r, c, tile.std())
            assert tile.mean() > 10, (r, c, tile.mean())
