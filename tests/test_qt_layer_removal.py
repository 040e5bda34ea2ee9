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
