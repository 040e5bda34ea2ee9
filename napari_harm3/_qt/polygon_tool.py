"""napari's polygon tool of a labels layer, made when the user picks the tool (issue 15).

A napari ``Labels`` layer carries the overlay of its polygon tool (the outline drawn while the
user clicks a polygon to paint), visible from the start though the tool is off. Each canvas makes
its visual when the layer is added: a polygon, markers and an antialiased line, ~40 ms of vispy
set-up per mask on 2 cores, in the turn that adds the mask (``benchmarks/bench_viewer_latency.py
--stalls``: the longest part of a mask's turn at the first case open; masks of files are shown,
never drawn into).

:func:`defer_polygon_tool` hides that overlay until the layer's mode becomes the polygon tool;
napari then makes the visual, which it does for any overlay that becomes visible, and the tool
works as before. Leaving the tool keeps the visual (napari's own tool shows nothing while off).
"""

from __future__ import annotations

import weakref

from napari.layers import Labels

POLYGON_MODE = "polygon"
POLYGON_OVERLAY = "polygon"


def defer_polygon_tool(layer):
    """Hide ``layer``'s polygon-tool overlay until its mode is the polygon tool; returns ``layer``.
    Call it before the layer is added to a viewer (a canvas makes visible overlays on adding)."""
    overlay = getattr(layer, "_overlays", {}).get(POLYGON_OVERLAY)
    if overlay is None:  # another napari: nothing to defer
        return layer
    if str(layer.mode) != POLYGON_MODE:
        overlay.visible = False
    layer_ref = weakref.ref(layer)

    def on_mode(event=None) -> None:
        current = layer_ref()
        if current is not None and str(current.mode) == POLYGON_MODE and not overlay.visible:
            overlay.visible = True

    layer.events.mode.connect(on_mode)  # the layer's emitter holds the function (a weak ref to the layer)
    return layer


def add_labels(layers, data, **kwargs):
    """napari's ``add_labels`` into the layer list ``layers``, the polygon tool deferred."""
    layer = defer_polygon_tool(Labels(data, **kwargs))
    layers.append(layer)
    return layer
