"""napari's layer controls are made when a layer is chosen, not when it is added (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3._qt.lazy_layer_controls import install

pytestmark = pytest.mark.gui


def test_a_layer_gets_napari_controls_when_it_is_chosen_and_not_before(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    lazy = install(viewer)
    assert lazy is not None, "napari's layer-controls panel changed: lazy_layer_controls needs a look"
    assert install(viewer) is lazy  # once per panel
    container = viewer.window._qt_viewer.controls

    base = viewer.add_image(np.zeros((32, 32), np.uint8), name="slide")
    qtbot.waitUntil(lambda: base in container.widgets, timeout=5000)  # chosen on adding: made a turn later
    assert container.currentWidget() is container.widgets[base]

    # maps added and the slide chosen again within the same turn: no widget made for them
    maps = []
    for k in range(3):
        maps.append(viewer.add_image(np.random.default_rng(k).random((8, 8)).astype(np.float32), name=f"map {k}"))
        viewer.layers.selection.active = base
    qtbot.wait(100)
    assert not any(m in container.widgets for m in maps) and lazy.made == 1
    assert container.currentWidget() is container.widgets[base]

    # the user picks a map: napari's own controls for it, following the layer
    viewer.layers.selection.active = maps[1]
    qtbot.waitUntil(lambda: maps[1] in container.widgets, timeout=5000)
    controls = container.widgets[maps[1]]
    assert container.currentWidget() is controls and type(controls).__name__ == "QtImageControls"
    maps[1].opacity = 0.25
    assert controls.layer is maps[1]

    # removing layers with and without a widget, as napari does
    viewer.layers.remove(maps[0])
    viewer.layers.remove(maps[1])
    assert maps[1] not in container.widgets
    viewer.layers.selection.clear()
    qtbot.wait(20)
    assert container.currentWidget() is container.empty_widget
    viewer.layers.selection.active = maps[2]
    qtbot.waitUntil(lambda: container.currentWidget() is container.widgets.get(maps[2]), timeout=5000)
