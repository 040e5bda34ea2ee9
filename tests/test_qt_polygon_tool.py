"""A labels layer's polygon tool is made when the user picks it (issue 15: a mask's turn)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_harm3._qt.polygon_tool import POLYGON_OVERLAY, defer_polygon_tool

pytestmark = pytest.mark.gui


def _polygon_visual(viewer, layer):
    """The canvas's visual of ``layer``'s polygon-tool overlay, or None (napari 0.9's canvas map)."""
    canvas = viewer.window._qt_viewer.canvas
    return canvas._layer_overlay_to_visual.get(layer, {}).get(layer._overlays[POLYGON_OVERLAY])


def test_the_polygon_tool_visual_is_made_when_the_tool_is_chosen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    data = np.zeros((24, 24), np.int32)
    data[6:12, 6:12] = 1

    plain = viewer.add_labels(data.copy(), name="napari's way")
    assert _polygon_visual(viewer, plain) is not None, "napari makes it on adding: the deferral has a use"

    mask = defer_polygon_tool(Labels(data.copy(), name="tumour"))
    viewer.layers.append(mask)
    qtbot.wait(20)
    assert _polygon_visual(viewer, mask) is None
    mask.mode = "paint"
    assert _polygon_visual(viewer, mask) is None

    mask.mode = "polygon"  # napari's tool, as its layer controls set it
    visual = _polygon_visual(viewer, mask)
    assert visual is not None and mask._overlays[POLYGON_OVERLAY].enabled
    assert visual.node.visible  # napari's own tool, drawn where napari draws it
    mask.mode = "pan_zoom"
    assert _polygon_visual(viewer, mask) is visual and not mask._overlays[POLYGON_OVERLAY].enabled
    mask.mode = "polygon"
    assert _polygon_visual(viewer, mask) is visual  # made once


def test_a_mask_in_the_mri_grid_has_no_polygon_tool_until_chosen(make_napari_viewer, qtbot):
    from napari_harm3._qt.mri_grid import MriGrid

    viewer = make_napari_viewer(show=True)
    grid = MriGrid()
    viewer.window.add_dock_widget(grid, name="MRI", area="right")
    volume = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    grid.set_volume("t1_pre", volume, affine=np.eye(4))
    mask = grid.add_overlay("t1_pre", (volume > 0.5).astype(np.int32), kind="labels", name="tumour")
    overlay = mask._overlays[POLYGON_OVERLAY]
    canvas = grid.qt_viewer("t1_pre").canvas
    assert not overlay.visible and overlay not in canvas._layer_overlay_to_visual.get(mask, {})
    mask.mode = "polygon"
    assert overlay.visible and overlay in canvas._layer_overlay_to_visual[mask]
    grid.close_viewers()
