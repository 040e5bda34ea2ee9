"""A napari layer's visibility, set only when it changes.

napari's ``Layer.visible`` setter refreshes the layer and emits ``events.visible`` whatever the
value was, and every canvas answers that event with a scene-graph update: a draw pass, the
blending of every layer reset, the canvas overlays placed again (40–110 ms per event with
software OpenGL, ``benchmarks/bench_viewer_latency.py``). A check box that follows its layer
would set the value it just received, so each click did that work twice; the crosshair set its
layers' visibility on every slice step.
"""

from __future__ import annotations


def set_visible(layer, visible: bool) -> bool:
    """Give ``layer`` the visibility ``visible``; True when it changed (no event otherwise)."""
    visible = bool(visible)
    if bool(layer.visible) == visible:
        return False
    layer.visible = visible
    return True
