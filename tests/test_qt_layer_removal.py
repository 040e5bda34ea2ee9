"""Layers leaving several viewers cost one garbage collection, after all of them left (issue 15)."""

from __future__ import annotations

import gc

import napari._vispy.canvas as napari_canvas
import numpy as np
import pytest

from napari_harm3._qt.layer_removal import remove_layers

pytestmark = pytest.mark.gui


def _full_collections(record):
    def callback(phase, info):
        if phase == "start" and info["generation"] == 2:
            record()
    return callback


def test_maps_leave_five_viewers_with_one_collection_after_all_left(make_napari_viewer, qtbot):
    from napari_harm3._qt.mri_grid import MriGrid

    viewer = make_napari_viewer(show=True)
    grid = MriGrid()
    viewer.window.add_dock_widget(grid, name="MRI", area="right")
    rng = np.random.default_rng(0)
    holders = [viewer.layers] + [grid.layers(key) for key in grid.panels]
    canvases = [viewer.window._qt_viewer.canvas] + [grid.qt_viewer(key).canvas for key in grid.panels]

    def fill():
        viewer.add_image(rng.random((8, 8)).astype(np.float32), name="kept")
        out = [[viewer.add_image(rng.random((8, 8)).astype(np.float32)) for _ in range(2)]]
        for key in grid.panels:
            out.append([grid.model(key).add_image(rng.random((4, 8, 8)).astype(np.float32)) for _ in range(2)])
        return out

    def measure(remove) -> list:
        maps = fill()
        qtbot.wait(20)
        seen = []
        callback = _full_collections(lambda: seen.append(all(m not in h for h, ms in zip(holders, maps) for m in ms)))
        gc.disable()  # only the explicit collections count
        gc.callbacks.append(callback)
        try:
            remove(list(zip(holders, maps)))
        finally:
            gc.callbacks.remove(callback)
            gc.enable()
        for holder, canvas, mine in zip(holders, canvases, maps):
            assert not any(m in holder for m in mine) and not any(m in canvas.layer_to_visual for m in mine)
        return seen

    def napari_way(removals):  # a batch per list: napari collects at each list's end
        for holder, layers in removals:
            with holder.batched_update():
                for layer in layers:
                    holder.remove(layer)

    assert len(measure(napari_way)) == len(holders)  # what there is to save
    seen = measure(remove_layers)
    assert seen == [True]  # one collection, when every list's maps had left
    assert napari_canvas.gc is gc and "kept" in viewer.layers
    assert remove_layers([(viewer.layers, [])]) == 0
    grid.close_viewers()


def test_withdrawn_maps_are_off_the_screen_at_once_and_leave_one_per_turn(make_napari_viewer, qtbot):
    """The case switch (issue 15): the last case's maps are hidden and emptied in the switch's
    turn, and leave their lists one per event-loop turn; a removal started while one runs queues
    behind it; a collection comes after every MAPS_PER_COLLECTION maps and after each removal's
    last, in a turn of its own, and napari's own per-removal ones are skipped."""
    from qtpy.QtCore import QTimer

    from napari_harm3._qt.layer_removal import (
        MAPS_PER_COLLECTION,
        WITHDRAWN,
        is_withdrawn,
        remove_in_turns,
        removals_under_way,
    )
    from napari_harm3._qt.mri_grid import MriGrid

    viewer = make_napari_viewer(show=True)
    grid = MriGrid()
    viewer.window.add_dock_widget(grid, name="MRI", area="right")
    rng = np.random.default_rng(1)
    keys = list(grid.panels)
    heatmaps = [viewer.add_image(rng.random((8, 8)).astype(np.float32) + 0.5, name=f"map {i}",
                                 metadata={"harm3_case": "A"}) for i in range(3)]
    cams = {key: grid.model(key).add_image(rng.random((4, 8, 8)).astype(np.float32) + 0.5,
                                           metadata={"harm3_case": "A"}) for key in keys}
    qtbot.wait(20)
    passes = []
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: passes.append(1))
    left_at = []
    for holder in [viewer.layers] + [grid.layers(key) for key in keys]:
        holder.events.removed.connect(lambda event: left_at.append(len(passes)))
    collections = []
    callback = _full_collections(lambda: collections.append((len(left_at), len(passes))))
    gc.disable()  # only the explicit collections count
    gc.callbacks.append(callback)
    try:
        ticker.start()
        first = remove_in_turns([(viewer.layers, heatmaps[:2])])
        second = remove_in_turns([(viewer.layers, heatmaps[2:])] + [(grid.layers(key), [cams[key]]) for key in keys])
        assert second is first  # queued behind it
        everything = heatmaps + list(cams.values())
        # in this turn: all off the screen and empty, nothing of case A left in them; none gone yet
        assert all(not layer.visible and is_withdrawn(layer) for layer in everything)
        assert all(not np.any(layer.data) and layer.data.shape in ((8, 8), (4, 8, 8)) for layer in everything)
        assert all(layer.metadata == {"harm3_kind": WITHDRAWN} for layer in everything)
        assert all(layer in viewer.layers for layer in heatmaps) and removals_under_way()
        qtbot.waitUntil(lambda: not removals_under_way(), timeout=10_000)
    finally:
        gc.callbacks.remove(callback)
        gc.enable()
        ticker.stop()
    assert not any(layer in viewer.layers for layer in heatmaps)
    assert not any(cams[key] in grid.layers(key) for key in keys)
    assert len(left_at) == len(heatmaps) + len(keys)
    assert len(set(left_at)) == len(left_at)  # one removal per pass of the event loop
    assert MAPS_PER_COLLECTION == 3
    assert [n for n, _ in collections] == [2, 5, 7]  # the first removal's two, then every three (none of napari's)
    assert not set(p for _, p in collections) & set(left_at)  # each in a pass without a removal
    assert napari_canvas.gc is gc
    assert remove_in_turns([(viewer.layers, heatmaps)]) is None  # gone already: nothing to do
    grid.close_viewers()
