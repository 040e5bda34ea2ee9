"""napari's layer controls made when a layer is first chosen, not when it is added (issue 15).

napari's layer-controls panel makes a controls widget for every layer the moment the layer is
added to the viewer: for an image, 170–370 ms on the GUI thread here (colormap box, contrast
slider, blending and interpolation boxes …; ``benchmarks/bench_viewer_latency.py --stalls``),
though the panel only ever shows the active layer's. A survival run adds six slide heatmaps:
six widgets, four to six freezes, for maps the user restyles through the Models tab's overlay
controls and looks at one at a time.

:func:`install` makes the panel create a layer's widget when that layer becomes the active one,
one event-loop turn later; a layer that hands the selection on within its turn (the heatmaps
hand it back to the slide, :mod:`.overlay_layers`) never gets one until the user picks it in the
layer list. Meanwhile the panel shows napari's empty frame. The widget, once made, is napari's
own (``create_qt_layer_controls``), kept and removed as napari keeps and removes it.

It relies on the panel's internals in napari 0.9 (``Window._qt_viewer``, and the panel's
``_add``, ``_remove``, ``_populate``, ``widgets``, ``empty_widget``), which napari keeps from plugins
(a viewer given to a dock widget is a proxy that warns on private names: they may change from
0.10 on). The plugin pins napari below 0.10 and reaches the viewer behind the proxy. Where the
internals are not there, or napari's experimental "dynamic layer controls" are on, nothing is
changed and napari behaves as before: :func:`install` returns None
(``tests/test_qt_lazy_layer_controls.py`` fails on that, so an upgrade that changes them is seen).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

from napari.settings import get_settings

from .in_turns import InTurns, alone

#: what this module uses of napari's ``QtLayerControlsContainer``
NEEDED = ("_add", "_remove", "_populate", "widgets", "empty_widget", "viewer", "setCurrentWidget")


class LazyLayerControls:
    """Drives one napari layer-controls panel: a layer's widget is made when it is chosen."""

    def __init__(self, container):
        self.container = container
        self.layers = container.viewer.layers
        self.made = 0  # widgets made here (the tests count them)
        self._queued = False
        self._making: Optional[InTurns] = None  # the widget being made, in a turn of its own
        events, selection = self.layers.events, self.layers.selection.events
        events.inserted.disconnect(container._add)
        events.removed.disconnect(container._remove)
        selection.changed.disconnect(container._populate)
        events.removed.connect(self._on_removed)
        selection.changed.connect(self._on_selection)

    def _on_removed(self, event) -> None:
        if event.value in self.container.widgets:  # a layer never chosen has no widget to remove
            self.container._remove(event)

    def _on_selection(self, event=None) -> None:
        active = self.layers.selection.active
        if active is not None and active not in self.container.widgets:
            self.container.setCurrentWidget(self.container.empty_widget)
            if not self._queued:  # in a turn of its own, after the paints (a slide's first
                self._queued = True  # paint and its controls were one freeze of ~130 ms)
                self._making = InTurns([alone(self._make_for_active)]).start()
            return
        self.container._populate()

    def _make_for_active(self) -> None:
        self._queued = False
        self._making: Optional[InTurns] = None  # the widget being made, in a turn of its own
        active = self.layers.selection.active
        if active is None or active not in self.layers:
            return
        if active not in self.container.widgets:
            self.container._add(SimpleNamespace(value=active))  # napari's own widget for it
            self.made += 1
        self.container._populate()


def install(viewer) -> Optional[LazyLayerControls]:
    """Make ``viewer``'s layer-controls panel lazy (see the module); None where it cannot be."""
    viewer = getattr(viewer, "__wrapped__", viewer)  # napari hands plugin widgets a public-only proxy
    window = getattr(viewer, "window", None)
    qt_viewer = getattr(window, "_qt_viewer", None)
    if qt_viewer is None:
        return None
    container = qt_viewer.controls
    existing = getattr(container, "_harm3_lazy", None)
    if existing is not None:
        return existing
    if not all(hasattr(container, name) for name in NEEDED) or _dynamic_controls_on():
        return None
    lazy = LazyLayerControls(container)
    container._harm3_lazy = lazy  # lives as long as the panel
    return lazy


def _dynamic_controls_on() -> bool:
    try:
        return bool(get_settings().experimental.dynamic_layer_controls)
    except AttributeError:  # a napari without that setting
        return False
