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

Switching case, the last case's maps must be off the screen in the switch's turn, but taking
them out of the lists is napari's removal handlers (~10 ms a layer), five scene rebuilds and
that collection: ~300 ms for nine maps. :func:`remove_in_turns` takes them off at once
(:func:`withdraw`: hidden, their data zeros of the same shape and their metadata no longer the
case's — napari makes no slice of a hidden layer, so no texture and no paint) and lets them
leave one per event-loop turn (:mod:`.in_turns`) with napari's collection deferred to turns of
its own, one for every few maps. Off Windows that order is harmless (napari's comment names the
Windows drivers); on Windows napari's per-removal collection is left as it is.
"""

from __future__ import annotations

import gc
import sys
from contextlib import ExitStack, contextmanager
from typing import Iterable, Optional

import napari._vispy.canvas as napari_canvas
import numpy as np
from psygnal import Signal

from .in_turns import InTurns, alone

#: ``harm3_kind`` of a withdrawn layer: hidden, empty, waiting in its list to leave
WITHDRAWN = "withdrawn"
#: defer napari's per-removal collection to turns of its own, every few maps (not on Windows: above)
DEFER_COLLECTION = sys.platform != "win32"
#: withdrawn maps collected this many at a time: a collection walks every object (~40–60 ms with
#: a case run) and frees ~10,000 a map (~5 ms): nine maps at once took ~100 ms on 2 cores
MAPS_PER_COLLECTION = 3
#: the removal under way (an InTurns needs a Python reference while it runs); later ones queue in it
_DEPARTURE: Optional[InTurns] = None


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


class _CollectNone(_CollectOnce):
    """``gc`` as napari's canvas module sees it while a withdrawn layer leaves: no collection
    (they come in turns of their own, :func:`remove_in_turns`)."""

    def collect(self, generation: int = 2) -> int:
        return 0


@contextmanager
def _standing_in(stand_in):
    if getattr(napari_canvas, "gc", None) is not gc:  # napari changed (or another stand-in): as it is
        yield
        return
    napari_canvas.gc = stand_in
    try:
        yield
    finally:
        napari_canvas.gc = gc


def _one_collection():
    return _standing_in(_CollectOnce())


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


class _Withdrawals:
    #: a layer was withdrawn (views showing copies of it withdraw them too: the three planes)
    withdrawn = Signal(object)


WITHDRAWALS = _Withdrawals()


def withdraw(layer, keep: dict | None = None) -> None:
    """Take an image layer off the screen and let go of what it showed: hidden (napari slices,
    uploads and paints nothing for a hidden layer), its data zeros of the same shape and dtype
    (so shown again it shows nothing), its metadata only :data:`WITHDRAWN` (and ``keep``)."""
    layer.visible = False
    if not getattr(layer, "multiscale", False):
        layer.data = np.zeros(layer.data.shape, dtype=layer.data.dtype)
    layer.metadata = {**(keep or {}), "harm3_kind": WITHDRAWN}
    WITHDRAWALS.withdrawn.emit(layer)


def is_withdrawn(layer) -> bool:
    return layer.metadata.get("harm3_kind") == WITHDRAWN


def remove_in_turns(removals: Iterable[tuple]) -> Optional[InTurns]:
    """Withdraw the ``(layer_list, layers)`` pairs' layers now and remove them one per
    event-loop turn, with a collection in a turn of its own after every
    :data:`MAPS_PER_COLLECTION` of them and after the last (see the module). A removal started
    while one is under way queues behind it. Returns the running removal (None when there was
    nothing to remove)."""
    global _DEPARTURE
    leaving = [(holder, layer) for holder, layers in removals for layer in layers if layer in holder]
    for _, layer in leaving:
        withdraw(layer)
    if not leaving:
        return None
    steps = []
    for count, (holder, layer) in enumerate(leaving, start=1):
        steps.append(alone(_leave(holder, layer)))
        if DEFER_COLLECTION and (count % MAPS_PER_COLLECTION == 0 or count == len(leaving)):
            steps.append(alone(_collect))
    if _DEPARTURE is not None and _DEPARTURE.extend(steps):
        return _DEPARTURE
    departure = InTurns(steps, finish=lambda: _departed(departure))
    _DEPARTURE = departure
    return departure.start()


def _departed(departure) -> None:
    global _DEPARTURE
    if _DEPARTURE is departure:
        _DEPARTURE = None


def _leave(holder, layer):
    def leave() -> None:
        if layer in holder:  # not taken out by someone else meanwhile
            with _standing_in(_CollectNone()) if DEFER_COLLECTION else ExitStack():
                holder.remove(layer)
    return leave


def _collect() -> None:
    gc.collect()


def removals_under_way() -> bool:
    """True while withdrawn layers are still waiting to leave their lists."""
    return _DEPARTURE is not None and _DEPARTURE.running
