"""Reading the MRI grid like a radiology viewer, with real mouse events on real canvases.

A synthetic case (T1-pre, T2-pre and a tumour mask as NIfTI; T1-post and T2-post missing)
opens through the case panel in an 1800×1100 window: the grid has the main area, the wheel
moves the slice (linked), Ctrl+wheel zooms, a right-drag sets window/level of that panel
only, the readout names the voxel under the cursor and its value, the mask has its switch
and opacity, and the empty panels say "not loaded". The window is saved as a picture."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

#: before this change a panel was about 380×180 px at the window size below
OLD_PANEL = (380, 180)


def _nifti(path: Path, data_kji: np.ndarray, spacing_kji, origin_xyz) -> Path:
    import nibabel as nib

    affine = np.diag([spacing_kji[2], spacing_kji[1], spacing_kji[0], 1.0])
    affine[:3, 3] = origin_xyz
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data_kji.transpose(2, 1, 0)), affine), str(path))
    return path


@pytest.fixture
def reading_case(tmp_path):
    """T1 (24×64×64, 4×1.6×1.6 mm), T2 (18×48×48, 5×2.1×2.1 mm) and a mask on the T1 grid."""
    rng = np.random.default_rng(3)
    files = {}
    for key, shape, spacing in (("t1_pre", (24, 64, 64), (4.0, 1.6, 1.6)), ("t2_pre", (18, 48, 48), (5.0, 2.1, 2.1))):
        k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        z, y, x = (k - shape[0] / 2) * spacing[0], (j - shape[1] / 2) * spacing[1], (i - shape[2] / 2) * spacing[2]
        body = (z / 45) ** 2 + (y / 45) ** 2 + (x / 45) ** 2 < 1
        data = np.where(body, 400 + 300 * np.cos(x / 7.0) + 8 * k, 20) + rng.normal(0, 5, shape)
        origin = (-spacing[2] * shape[2] / 2, -spacing[1] * shape[1] / 2, -spacing[0] * shape[0] / 2)
        files[key] = str(_nifti(tmp_path / f"{key}.nii.gz", data.astype(np.float32), spacing, origin))
        if key == "t1_pre":
            tumour = ((z - 4) / 14) ** 2 + ((y + 6) / 12) ** 2 + ((x - 8) / 10) ** 2 < 1
            files["mask"] = str(_nifti(tmp_path / "mask.nii.gz", tumour.astype(np.uint8), spacing, origin))
    return files


@pytest.fixture
def make_reading_window(make_napari_viewer):
    from napari_harm3._qt.app import WINDOW_SIZE
    from napari_harm3._qt.case_panel import CasePanel

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        viewer.window.resize(*WINDOW_SIZE)
        panel = CasePanel(viewer)
        viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
        made.append(panel)
        return viewer, panel

    yield factory
    for panel in made:
        panel.close_viewers()
    made.clear()


# -- real Qt input on a canvas ---------------------------------------------------------------
def _wheel(widget, notches: float, ctrl: bool = False) -> None:
    from qtpy.QtCore import QPoint, QPointF, Qt
    from qtpy.QtGui import QWheelEvent
    from qtpy.QtWidgets import QApplication

    centre = QPointF(widget.width() / 2, widget.height() / 2)
    modifiers = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, int(120 * notches)),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _mouse(widget, kind: str, x: float, y: float, right: bool = False) -> None:
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    button = Qt.MouseButton.RightButton if right and kind != "move" else Qt.MouseButton.NoButton
    buttons = Qt.MouseButton.RightButton if right and kind != "release" else Qt.MouseButton.NoButton
    point = QPointF(x, y)
    event = QMouseEvent(types[kind], point, QPointF(widget.mapToGlobal(point)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _move_until(qtbot, widget, x, y, done, right=False):
    """Mouse moves closer than 10 ms apart are dropped by vispy: repeat the move until seen."""
    def check():
        if not done():
            _mouse(widget, "move", x, y, right=right)
        return done()

    qtbot.waitUntil(check, timeout=5000)


def test_grid_reads_like_a_radiology_viewer(make_reading_window, qtbot, reading_case, tmp_path):
    from qtpy.QtCore import QPoint, QRect
    from qtpy.QtWidgets import QLabel

    from napari_harm3._qt.cursor_readout import nearest_index
    from napari_harm3._qt.images import save_png
    from napari_harm3._qt.reading_mouse import ZOOM_PER_NOTCH, window_level_from_drag

    viewer, panel = make_reading_window()
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
        panel.open_files(reading_case, case_id="READ-1")
    grid = panel.grid
    canvases = {k: grid.qt_viewer(k).canvas.native for k in grid.panels}
    wide = 1.6 * OLD_PANEL[0]
    qtbot.waitUntil(lambda: canvases["t1_pre"].isVisible() and canvases["t1_pre"].width() >= wide, timeout=10_000)

    # the grid has the main area: each panel far bigger than the old dock column's
    assert panel.views is not None and panel.views.currentWidget() is grid
    assert panel.views.geometry().left() <= 10  # no empty column where napari's layer list was
    for key in ("t1_pre", "t2_pre"):
        size = canvases[key].width(), canvases[key].height()
        assert size[0] >= wide and size[1] >= 2.0 * OLD_PANEL[1], (key, size)
    assert not any(d.isVisible() for d in panel.views._slide_docks())  # napari's slide layer list: Slide tab

    # one title per panel (on the canvas); empty panels say "not loaded", no slider
    for key, mri in grid.panels.items():
        aids = grid.reading[key]
        titled = [w for w in mri.findChildren(QLabel)
                  if w.isVisible() and aids.title in w.text() and w is not aids.readout]  # masks may say it
        loaded = mri.volume_layer is not None
        assert aids.notice.isVisible() is not loaded
        if not loaded:  # the cover hides the canvas and its (meaningless) slider row
            dims = mri.qt_viewer.dims
            slider_row = QRect(dims.mapTo(aids.notice.parentWidget(), QPoint(0, 0)), dims.size())
            assert aids.notice.geometry().contains(slider_row), (aids.notice.geometry(), slider_row)
        if loaded:
            assert titled == [] and mri.model.canvas.overlays.text.text == aids.title
        else:
            assert [w.text() for w in titled] == [f"{aids.title} — not loaded"]

    t1, t2 = grid.model("t1_pre"), grid.model("t2_pre")
    volume = grid.panels["t1_pre"].volume_layer
    native = canvases["t1_pre"]

    # wheel = next slice (linked in world mm), not zoom
    step, zoom, z2 = t1.dims.current_step[0], t1.scene.camera.zoom, t2.dims.point[0]
    _wheel(native, 1)
    qtbot.waitUntil(lambda: t1.dims.current_step[0] != step, timeout=5000)
    assert t1.dims.current_step[0] == step + 1 and t1.scene.camera.zoom == pytest.approx(zoom)
    assert t2.dims.point[0] == pytest.approx(t1.dims.point[0]) and t2.dims.point[0] != pytest.approx(z2)
    _wheel(native, -2)
    qtbot.waitUntil(lambda: t1.dims.current_step[0] == step - 1, timeout=5000)
    # Ctrl+wheel = zoom (all panels), the slice stays
    _wheel(native, 1, ctrl=True)
    qtbot.waitUntil(lambda: t1.scene.camera.zoom != pytest.approx(zoom), timeout=5000)
    assert t1.scene.camera.zoom == pytest.approx(zoom * ZOOM_PER_NOTCH) and t2.scene.camera.zoom == pytest.approx(t1.scene.camera.zoom)
    assert t1.dims.current_step[0] == step - 1

    # right-drag = window/level of this panel, live; the zoom does not move
    start, other, zoom = tuple(volume.contrast_limits), tuple(grid.panels["t2_pre"].volume_layer.contrast_limits), t1.scene.camera.zoom
    span = float(np.subtract(*volume.contrast_limits_range[::-1]))
    x0, y0 = native.width() / 2, native.height() / 2
    _mouse(native, "press", x0, y0, right=True)
    _move_until(qtbot, native, x0 + 60, y0 - 30, lambda: tuple(volume.contrast_limits) != start, right=True)
    _mouse(native, "release", x0 + 60, y0 - 30, right=True)
    assert tuple(volume.contrast_limits) == pytest.approx(window_level_from_drag(start, 60, -30, span), rel=1e-3)
    assert volume.contrast_limits[1] - volume.contrast_limits[0] > start[1] - start[0]  # right: wider
    assert tuple(grid.panels["t2_pre"].volume_layer.contrast_limits) == pytest.approx(other)
    assert t1.scene.camera.zoom == pytest.approx(zoom)

    # the readout: position in mm, the voxel under the cursor and its value
    readout = grid.reading["t1_pre"].readout
    before = readout.text()
    _move_until(qtbot, native, native.width() * 0.55, native.height() * 0.45, lambda: readout.text() != before)
    position = t1.cursor.position
    k, j, i = nearest_index(volume, position)
    world = volume.affine.affine_matrix @ [k, j, i, 1.0]
    assert np.abs(world[:3] - np.asarray(position)).max() <= 2.0 + 1e-6  # nearest voxel: within half a slice
    match = re.search(r"ijk (\d+) (\d+) (\d+) · (\S+)", readout.text())
    assert match, readout.text()
    assert tuple(int(v) for v in match.groups()[:3]) == (i, j, k)
    assert float(match.group(4)) == pytest.approx(float(volume.data[k, j, i]), abs=0.051)
    assert f"z {position[0]:.1f}" in readout.text() and "W " in readout.text()
    t2_readout = grid.reading["t2_pre"].readout  # the linked panel reads T2 at the same place
    assert t2_readout.readout.world_zyx == pytest.approx(tuple(position))
    assert t2_readout.readout.index_kji == nearest_index(grid.panels["t2_pre"].volume_layer, position)

    # the mask: its switch and opacity in the T1-pre panel
    mask = next(layer for layer in grid.layers("t1_pre") if layer is not volume)
    row = grid.reading["t1_pre"].overlays.row(mask.name)
    visible_events = []
    mask.events.visible.connect(visible_events.append)
    row.visible_box.setChecked(False)
    assert not mask.visible
    assert len(visible_events) == 1  # one event per click: each costs every canvas a scene update
    row.opacity.setValue(30)
    assert mask.opacity == pytest.approx(0.3)
    mask.visible = True
    assert row.visible_box.isChecked()
    assert len(visible_events) == 2  # the box followed the layer without setting it again
    mask.events.visible.disconnect(visible_events.append)

    # the slide is one tab away, the layer list comes with it
    picture = viewer.screenshot(canvas_only=False, flash=False)
    save_png(picture, Path(os.environ.get("HARM3_TEST_PICTURES", tmp_path)) / "reading_window.png")
    panel.show_slide()
    assert panel.views.currentWidget() is panel.views.slide_area
    panel.show_grid()
    assert panel.views.currentWidget() is grid
