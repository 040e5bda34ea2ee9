"""The case panel: opens a case in a worker, fills the linked MRI grid and the slide viewer;
bad input becomes a notification and the viewer keeps working."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from conftest import real_file

pytestmark = pytest.mark.gui



@pytest.fixture(scope="session")
def demo_manifest():
    from napari_harm3.core.synth.demo import demo_case

    return demo_case()  # generated once into the cache, then reused


@pytest.fixture
def make_panel(make_napari_viewer):
    """Factory (not the panel itself: see make_grid in test_qt_linked_viewers.py)."""
    from napari_harm3._qt.case_panel import CasePanel

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        panel = CasePanel(viewer)
        viewer.window.add_dock_widget(panel, name="Case panel", area="right")
        made.append(panel)
        return viewer, panel

    yield factory
    for panel in made:
        panel.close_viewers()
    made.clear()


def picture_ok(image: np.ndarray) -> tuple[float, float]:
    rgb = image[..., :3].astype(float)
    return float(rgb.std()), float(rgb.mean())


def test_open_demo_case_fills_both_viewers(make_panel, qtbot, demo_manifest, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer, panel = make_panel()
    before = len(notification_manager.records)
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000) as blocker:
        worker = panel.open_case(demo_manifest)
    assert worker is not None
    layers = blocker.args[0]
    assert panel.case_id_label.text() == layers.case_id == "DEMO-0001"
    # said in the Case tab and napari's status bar; no pop-up (each froze the window ~0.15 s)
    assert panel.status.text().startswith("Case DEMO-0001:") and "DEMO-0001 opened" in viewer.status
    assert not [n for n in notification_manager.records[before:] if "opened" in str(n.message)]
    assert "pcr = 1" in panel.labels_label.text()
    # MRI: four volumes, each in its panel with its affine, and its mask
    for key in ("t1_pre", "t1_post", "t2_pre", "t2_post"):
        volume = panel.grid.panels[key].volume_layer
        assert volume is not None and volume.ndim == 3
        assert [l for l in panel.grid.layers(key) if l._type_string == "labels"]
    t1 = panel.grid.panels["t1_pre"].volume_layer.affine.affine_matrix
    t2 = panel.grid.panels["t2_pre"].volume_layer.affine.affine_matrix
    assert t1[1, 1] < t2[1, 1]  # T2 coarser in-plane: different grids, one world
    # the grid is linked: a slice change in T2 moves T1 to the same world z
    panel.grid.model("t2_post").dims.set_current_step(0, 25)
    z = panel.grid.model("t2_post").dims.point[0]
    assert panel.grid.model("t1_pre").dims.point[0] == pytest.approx(z, abs=1.5)
    # slide: in the napari viewer, µm scale, scale bar on, no mpp warning
    slide = panel.slide_view.layer
    assert slide in viewer.layers and slide.multiscale
    assert tuple(slide.scale) == pytest.approx((0.5, 0.5))
    assert viewer.canvas.overlays.scale_bar.visible
    assert not panel.mpp_warning.isVisible()
    # pictures: both viewers show images
    panel.grid.reset_view()
    grid_shot = panel.grid.screenshot(tmp_path / "grid.png")
    slide_shot = panel.slide_view.screenshot(tmp_path / "slide.png")
    for name, shot in (("grid", grid_shot), ("slide", slide_shot)):
        std, mean = picture_ok(shot)
        assert std > 15 and mean > 10, (name, std, mean)
    h, w = grid_shot.shape[:2]
    for r in range(2):
        for c in range(2):
            std, mean = picture_ok(grid_shot[r * h // 2:(r + 1) * h // 2, c * w // 2:(c + 1) * w // 2])
            assert std > 10 and mean > 5, (r, c, std, mean)
    # minimap: the view rectangle follows the camera; a click pans the slide viewer
    from qtpy.QtCore import QPoint, Qt

    minimap = panel.slide_view.minimap
    qtbot.waitUntil(minimap.isVisible, timeout=5000)
    hy, wx = minimap._world_size  # whole slide in µm
    assert (hy, wx) == pytest.approx((slide.data[0].shape[0] * 0.5, slide.data[0].shape[1] * 0.5))
    goal = (0.7 * hy, 0.2 * wx)
    target = minimap.world_to_widget(*goal)
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    cy, cx = viewer.scene.camera.center[-2:]
    px_um = max(hy, wx) / min(minimap.width(), minimap.height())  # one widget pixel in µm
    assert cy == pytest.approx(goal[0], abs=2 * px_um) and cx == pytest.approx(goal[1], abs=2 * px_um)
    y0, x0, y1, x1 = minimap.view_rect_world()  # the drawn box is the camera's field of view
    assert ((y0 + y1) / 2, (x0 + x1) / 2) == pytest.approx((cy, cx))
    assert (x1 - x0) == pytest.approx(viewer.canvas.size[1] / viewer.scene.camera.zoom)


def test_bad_file_is_a_notification_and_viewer_keeps_working(make_panel, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer, panel = make_panel()
    bad = tmp_path / "case.yaml"
    bad.write_text("case_id: X\nmri: {t1_pre: nowhere.nii.gz}\nbogus: 1\n")
    before = len(notification_manager.records)
    with qtbot.waitSignal(panel.case_failed, timeout=30_000) as blocker:
        panel.open_case(bad)
    message = blocker.args[0]
    assert "bogus" in message and "\n" not in message
    assert any(message in str(n.message) for n in notification_manager.records[before:])
    qtbot.waitUntil(lambda: panel.open_button.isEnabled(), timeout=10_000)
    # still working: a new layer can be added and a good open still runs
    viewer.add_image(np.zeros((8, 8)))
    assert len(viewer.layers) == 1
    garbage = tmp_path / "t1.nii.gz"
    garbage.write_bytes(b"not a nifti")
    with qtbot.waitSignal(panel.case_failed, timeout=30_000) as blocker:
        panel.open_files({"t1_pre": str(garbage)})
    assert str(garbage.name) in blocker.args[0]


def test_slide_without_mpp_warns_and_takes_the_users_value(make_panel, qtbot, shared_data):
    slide_path = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")  # no mpp in its metadata
    viewer, panel = make_panel()
    with qtbot.waitSignal(panel.case_loaded, timeout=60_000):
        panel.open_files({"slide": str(slide_path)})
    layer = panel.slide_view.layer
    assert layer.metadata["mpp"] is None and tuple(layer.scale) == (1.0, 1.0)
    assert panel.mpp_warning.isVisible()
    assert not panel.set_mpp(-3)  # refused with a notification, nothing changed
    assert tuple(layer.scale) == (1.0, 1.0)
    panel.mpp_spin.setValue(0.5)
    panel.mpp_apply.click()
    assert tuple(layer.scale) == pytest.approx((0.5, 0.5))
    assert str(layer.units[0]) in ("micrometer", "µm", "um")
    assert layer.metadata["mpp"] == 0.5 and not panel.mpp_warning.isVisible()
    shot = panel.slide_view.screenshot()
    std, mean = picture_ok(shot)
    assert std > 10 and mean > 10


def test_file_open_of_a_manifest_opens_the_case_panel(make_napari_viewer, qtbot, demo_manifest):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(str(demo_manifest), plugin="napari-harm3")
    assert layers == []  # the case went to the case panel, not into the slide viewer
    _, panel = viewer.window.add_plugin_dock_widget("napari-harm3", "Case panel")  # the docked one
    try:
        if panel.case_layers is None:
            with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
                pass
        assert panel.case_id_label.text() == "DEMO-0001"
        assert all(panel.grid.panels[k].volume_layer is not None for k in panel.grid.panels)
        assert panel.slide_view.layer in viewer.layers
        # behind napari's plugin proxy too, the layer controls are made when a layer is chosen
        assert panel.lazy_controls is not None and panel.lazy_controls.container is viewer.window._qt_viewer.controls
    finally:
        panel.close_viewers()
        gc.collect()  # reference cycles through Qt parents sit in the oldest generation


def test_real_t1_t2_dicom_on_different_grids_link_in_world_mm(make_panel, qtbot, shared_data):
    """Real scanner files: T1 (512², 0.39 mm) and T2 (384², 0.52 mm), one frame of reference,
    with the clinicians' RTSTRUCT contours as the mask."""
    t1 = real_file(shared_data, "mri/sts001_dicom/T1")
    t2 = real_file(shared_data, "mri/sts001_dicom/T2")
    rtstruct = real_file(shared_data, "mri/sts001_dicom/T1_rtstruct")
    viewer, panel = make_panel()
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
        panel.open_files({"t1_pre": str(t1), "t2_pre": str(t2), "mask": str(rtstruct)}, case_id="STS_001")
    assert panel.case_id_label.text() == "STS_001"
    grid = panel.grid
    v1, v2 = grid.panels["t1_pre"].volume_layer, grid.panels["t2_pre"].volume_layer
    assert v1.data.shape[1:] == (512, 512) and v2.data.shape[1:] == (384, 384)
    assert grid.panels["t1_post"].volume_layer is None
    mask = [l for l in grid.layers("t1_pre") if l._type_string == "labels"][0]
    assert mask.data.max() >= 1
    # go to the tumour's centre (world mm) in the T1 panel: the T2 panel shows the same place
    k, j, i = np.argwhere(mask.data > 0).mean(axis=0)
    centre = mask.affine.affine_matrix @ [k, j, i, 1.0]
    grid.model("t1_pre").dims.set_point(0, centre[0])
    z1 = grid.model("t1_pre").dims.point[0]
    z2 = grid.model("t2_pre").dims.point[0]
    half = np.linalg.norm(v2.affine.affine_matrix[:3, 0]) / 2  # half the 5.2 mm slice step
    assert abs(z1 - centre[0]) <= half and abs(z2 - centre[0]) <= half
    k2, j2, i2 = v2.world_to_data(grid.model("t2_pre").dims.point)
    z2_plane = (v2.affine.affine_matrix @ [round(float(k2)), j2, i2, 1.0])[0]
    assert abs(z2_plane - centre[0]) <= half  # T2's own nearest plane, not T1's index
    # and the window presets work on real data
    auto = grid.set_window("t2_pre", "auto")
    soft = grid.set_window("t2_pre", "soft tissue")
    assert soft[0] > auto[0] and soft[1] < auto[1]


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_cohort

    folder = tmp_path_factory.mktemp("layer_reuse")
    make_cohort(folder, 2, seed=5, slide_size=(1024, 1024))
    return folder / "SYN-0001" / "case.yaml", folder / "SYN-0002" / "case.yaml"


def test_next_case_reuses_the_layers_shows_its_data_and_no_old_overlay(make_panel, two_cases):
    """Issue 13: the next case goes into the last case's volume and mask layers (the same objects:
    no new vispy visuals); it shows its own data, and nothing of the last case's overlays. The
    slide layer is refilled too and is drawn under the layers added after it (a heatmap)."""
    from napari_harm3._layers import case_layer_data
    from napari_harm3.core.session import open_case_data

    viewer, panel = make_panel()
    case_a, case_b = (case_layer_data(open_case_data(m)) for m in two_cases)
    panel.show_case(case_a)
    grid = panel.grid
    volumes = {k: p.volume_layer for k, p in grid.panels.items()}
    masks = {k: list(v) for k, v in panel.mask_layers.items()}
    slide = panel.slide_view.layer
    assert all(volumes.values()) and masks and slide is not None
    grid.set_window("t1_pre", "soft tissue")
    grid.panels["t1_pre"].volume_layer.opacity = 0.3  # the user's change: not carried to the next case
    grid.add_overlay("t1_pre", np.ones(volumes["t1_pre"].data.shape, np.float32), name="A's map",
                     metadata={"harm3_kind": "gradcam", "harm3_case": "A"})
    panel.show_case(case_b)
    for key, panel_ in grid.panels.items():
        layer = panel_.volume_layer
        assert layer is volumes[key]  # reused
        data, kwargs, _ = case_b.volumes[key]
        assert np.array_equal(np.asarray(layer.data), np.asarray(data))
        assert layer.metadata["volume_source"] == kwargs["metadata"]["volume_source"] != ""
        assert "harm3_window" not in layer.metadata  # A's "soft tissue" is gone: B's own window
        assert tuple(layer.contrast_limits) == pytest.approx(tuple(kwargs["contrast_limits"]))
        assert layer.opacity == 1.0 and layer.name == kwargs["name"]
        assert np.allclose(layer.affine.affine_matrix, np.asarray(kwargs["affine"], dtype=float))
        assert not [l for l in grid.layers(key) if l.metadata.get("harm3_case") == "A" or l.name == "A's map"]
    for key, layers in panel.mask_layers.items():
        assert [id(l) for l in layers] == [id(l) for l in masks.get(key, [])]
        assert all(layer in grid.layers(key) for layer in layers)
        wanted = np.asarray(case_b.masks[key][0][0])
        assert np.array_equal(np.asarray(layers[0].data), wanted.astype(np.int32))
    assert panel.slide_view.layer is slide and slide in viewer.layers and slide.visible  # refilled
    assert slide.metadata["slide_path"] == case_b.slide[1]["metadata"]["slide_path"] != case_a.slide[1]["metadata"]["slide_path"]
    assert all(a is b for a, b in zip(slide.data, case_b.slide[0]))  # B's pyramid levels
    assert panel.case_id_label.text() == case_b.case_id

    # a map added over B's slide is drawn over it (not under: napari's draw order after a refill)
    panel.show_slide()
    height, width = slide.data[0].shape[:2]
    red = np.zeros((8, 8, 4), np.float32)
    red[..., 0] = red[..., 3] = 1.0
    viewer.add_image(red, rgb=True, scale=(height * slide.scale[0] / 8, width * slide.scale[1] / 8), name="map")
    viewer.reset_view()
    canvas = viewer.window._qt_viewer.canvas
    orders = [canvas.layer_to_visual[layer].node.order for layer in viewer.layers]
    assert orders == sorted(orders) and viewer.layers.index(slide) == 0

    def red_over_the_tissue() -> bool:
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        centre = shot[shot.shape[0] // 2 - 20: shot.shape[0] // 2 + 20, shot.shape[1] // 2 - 20: shot.shape[1] // 2 + 20]
        return bool((centre[..., 0] > 200).all() and (centre[..., 1:] < 60).all())

    assert red_over_the_tissue()
    slide.visible = False  # napari reorders the canvas on a visibility change: still under the map
    slide.visible = True
    assert red_over_the_tissue()


def test_a_case_is_put_into_the_viewers_in_turns_and_a_later_case_wins(make_panel, qtbot, two_cases,
                                                                          monkeypatch):
    """The window answers while a case is shown (issue 15): the volumes and masks arrive in
    separate event-loop turns — a timer ticks between any two of them (with no time budget each
    step has a turn of its own) — and a case opened while another is still being shown drops the
    rest of that one (only the later case's data shown), and lets go of it."""
    import weakref

    from qtpy.QtCore import QTimer

    from napari_harm3._qt import in_turns

    monkeypatch.setattr(in_turns, "TURN_BUDGET_MS", 0)
    from napari_harm3._qt.case_panel import _read_case_tagged  # the worker's own read
    from napari_harm3.core.progress import CancelToken

    viewer, panel = make_panel()
    ticks = []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(1))
    arrivals = []
    for key, mri in panel.grid.panels.items():
        mri.model.layers.events.inserted.connect(lambda event, key=key: arrivals.append((key, len(ticks))))
    timer.start()
    try:
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.open_case(two_cases[0])
        assert len(arrivals) >= 6, arrivals  # four volumes and their masks
        ticked = [b[1] - a[1] for a, b in zip(arrivals, arrivals[1:])]
        assert min(ticked) >= 1, arrivals  # the event loop ran between any two layers

        # B read while A is being shown: A's remaining steps are dropped, B's shown
        case_a = _read_case_tagged(two_cases[0], CancelToken())[1]
        case_b = _read_case_tagged(two_cases[1], CancelToken())[1]
        loaded = []
        panel.case_loaded.connect(lambda layers: loaded.append(layers.case_id))
        panel.show_case(case_a, staged=True)
        # A is the session's case at once; until its data are in, the open case's layers wait
        # under a cover ("opening the next case…")
        assert panel.session.case.case_id == case_a.case_id
        holding = [key for key, mri in panel.grid.panels.items()
                   if any(layer._type_string in ("image", "labels") for layer in mri.model.layers)]
        assert holding
        for key in holding:
            notice = panel.grid.reading[key].notice
            assert notice.isVisible() and "opening the next case" in notice.text(), key
        showing_a = weakref.ref(panel._showing)
        with qtbot.waitSignal(panel.case_loaded, timeout=60_000):
            panel.show_case(case_b, staged=True)
        qtbot.wait(200)
        assert loaded == [case_b.case_id]  # A never announced as shown
        del case_a
        gc.collect()
        assert showing_a() is None  # A's steps (and the case they hold) are not kept
        assert panel.session.case.case_id == case_b.case_id
        for key, mri in panel.grid.panels.items():
            notice = panel.grid.reading[key].notice
            assert notice.isVisible() is (key not in case_b.volumes)  # uncovered; "not loaded" if empty
            if key in case_b.volumes:
                np.testing.assert_array_equal(np.asarray(mri.volume_layer.data), np.asarray(case_b.volumes[key][0]))
            else:
                assert "not loaded" in notice.text()
    finally:
        timer.stop()


def test_the_mri_canvases_keep_their_size_while_a_case_opens(make_napari_viewer, qtbot, two_cases):
    """Issue 15: what the Case tab shows changes per case (progress bar, mask legend); the tab
    scrolls instead of growing its dock, which took the height from the MRI grid: each of the
    four GL canvases then repainted synchronously (0.4 s frozen at every case open)."""
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QApplication

    from napari_harm3._qt.app import WINDOW_SIZE
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.workflow_panel import install_workflow

    viewer = make_napari_viewer(show=True)  # the window ``harm3 view`` opens (app.open_case_window)
    viewer.window.resize(*WINDOW_SIZE)
    panel = CasePanel(viewer)
    workflow = install_workflow(panel)
    viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
    QApplication.processEvents()
    panel.show_grid()
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
        panel.open_case(two_cases[0])
    qtbot.wait(300)

    class Resizes(QObject):
        seen: list = []

        def eventFilter(self, watched, event):  # noqa: N802 (Qt API)
            if event.type() == QEvent.Type.Resize:
                self.seen.append((watched.objectName(), event.oldSize(), event.size()))
            return False

    watcher = Resizes()
    canvases = [mri.qt_viewer.canvas.native for mri in panel.grid.panels.values()]
    for canvas in canvases:
        canvas.installEventFilter(watcher)
    try:
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.open_case(two_cases[1])
        qtbot.wait(300)
    finally:
        for canvas in canvases:
            canvas.removeEventFilter(watcher)
    try:
        assert panel.progress.isHidden() and watcher.seen == []
    finally:
        workflow.close()
        panel.close_viewers()
