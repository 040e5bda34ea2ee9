"""A panel's first case: its scale bar and edge letters get their visuals in turns of their own,
before its volume (issue 15: each turn and each paint stays short)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3._qt.orientation_labels import EDGES, edge_texts

pytestmark = pytest.mark.gui


def test_a_fresh_panel_makes_its_scale_bar_and_letters_before_its_volume(make_napari_viewer, qtbot):
    from napari_harm3._qt.mri_grid import MriGrid

    viewer = make_napari_viewer(show=True)
    grid = MriGrid()
    viewer.window.add_dock_widget(grid, name="MRI", area="right")
    data = np.random.default_rng(1).random((6, 20, 20)).astype(np.float32)
    volumes = {"t1_pre": (data, {"affine": np.eye(4), "name": "T1-pre"}, "image")}
    model = grid.model("t1_pre")
    visuals = grid.qt_viewer("t1_pre").canvas._viewer_overlay_to_visual  # napari 0.9's canvas map

    steps, finish = grid.show_case_steps(volumes, {}, {})
    assert all(getattr(step, "own_turn", False) for step in steps[1:4])
    steps[0]()  # the last case out (none)
    steps[1]()
    assert model.canvas.overlays.scale_bar in visuals and not len(model.layers)
    steps[2]()
    letters = [model.canvas.overlays[key] for _, key in EDGES.values()]
    assert all(overlay in visuals for overlay in letters) and not len(model.layers)
    for step in steps[3:]:
        step()
    finish()
    assert len(model.layers) == 1 and model.canvas.overlays.scale_bar.visible
    assert all(edge_texts(model).values())  # as set_volume leaves a panel: four letters shown

    again, finish_again = grid.show_case_steps(volumes, {}, {})  # the next case refills: no such turns
    assert len(again) == len(steps) - 2
    for step in again:
        step()
    finish_again()
    assert all(edge_texts(model).values()) and model.canvas.overlays.scale_bar.visible
    grid.close_viewers()
