"""Keep napari's garbage collections short: freeze the objects that exist once the window is up.

napari calls ``gc.collect()`` each time a layer leaves a canvas (``VispyCanvas
._clean_and_update_scenegraph``, a fix for a Windows OpenGL driver bug), and Python runs full
collections of its own now and then. A full collection walks every tracked object: with torch,
napari and vispy imported that is ~800,000 objects and 0.4–2.5 s on our 2-core machines, during
which the window is frozen — several times per case opened (one per layer list cleared).

``gc.freeze()`` moves the objects alive now (modules, classes, functions: what the imports made,
which live as long as the process) into a permanent generation that collections skip; objects
made later (layers, cases, results) are collected as before. It is done once per process, before
any case is open, so no case's data can be frozen (and leak).
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_heap() -> None:
    """Collect, then exempt what survives from later collections (``gc.freeze``). The worklist
    does this when a cohort opens (and :func:`unfreeze_heap` when its tab closes), for viewers
    that were not opened by :func:`freeze_startup_objects`'s ``harm3 demo`` / ``view`` route."""
    gc.collect()
    gc.freeze()


def unfreeze_heap() -> None:
    """Let every frozen object be collected again (also those frozen at start-up)."""
    gc.unfreeze()


def freeze_startup_objects() -> bool:
    """Collect once, then freeze what survives (the imports); True the first time, then a no-op."""
    global _frozen
    if _frozen:
        return False
    freeze_heap()
    _frozen = True
    return True
