"""Layers leave several napari viewers with one garbage collection (issue 15: the case switch).

napari's canvas runs a full ``gc.collect()`` after layers leave it (``VispyCanvas
._clean_and_update_scenegraph``: the closed layer's OpenGL objects are let go before the scene is
rebuilt, a fix for a Windows driver), once per layer list in a ``batched_update``. Switching case
removes the last case's maps from five viewers (four MRI panels and the slide): five full
collections, ~85 ms each once a case has been run (~210,000 objects not frozen at start-up), one
freeze of ~440 ms (``benchmarks/bench_viewer_latency.py``: "open the next case").

:func:`remove_layers` removes the layers of every list first, each list's scene paused (napari
closes a removed layer's visuals at once), and then lets the lists resume: the first resume
collects, as napari does, and the later ones, with nothing removed since, skip it. So every
canvas still rebuilds its scene after a collection that followed its removals — the order
napari's fix needs — with one collection instead of five. The stand-in for ``gc`` is napari's
canvas module's own name for the module, for the length of the call; where napari names it
otherwise nothing is replaced and napari collects per list as before.
"""

from __future__ import annotations

import gc
from contextlib import ExitStack, contextmanager
from typing import Iterable

import napari._vispy.canvas as napari_canvas


class _CollectOnce:
    """``gc`` as napari's canvas module sees it while layers leave: the first ``collect()`` runs,
    the later ones (no layer removed since) return at once; everything else is ``gc``'s."""

    def __init__(self):
        self.collections = 0

    def collect(self, generation: int = 2) -> int:
        if self.collections:
            return 0
        self.collections += 1
        return gc.collect(generation)

    def __getattr__(self, name: str):
        return getattr(gc, name)


@contextmanager
def _one_collection():
    if getattr(napari_canvas, "gc", None) is not gc:  # napari changed (or another stand-in): as it is
        yield
        return
    napari_canvas.gc = _CollectOnce()
    try:
        yield
    finally:
        napari_canvas.gc = gc


def remove_layers(removals: Iterable[tuple]) -> int:
    """Remove ``(layer_list, layers)`` pairs' layers, all lists first, then one collection as the
    lists resume (see the module). Returns how many layers left."""
    removals = [(holder, list(layers)) for holder, layers in removals if len(layers)]
    if not removals:
        return 0
    with _one_collection(), ExitStack() as batches:  # the stand-in outlives the batches' ends
        for holder, _ in removals:
            batches.enter_context(holder.batched_update())
        for holder, layers in removals:
            for layer in layers:
                holder.remove(layer)
    return sum(len(layers) for _, layers in removals)
