"""One-time work of the first case open, done while the window starts instead (issue 15).

Opening the first case of a session froze the window in two places that have nothing to do with
the case (``benchmarks/bench_viewer_latency.py --stalls``, 2 cores):

- pint's unit registry, which napari builds the first time a layer has units ("mm", "µm"): it
  parses pint's whole definitions file, ~0.4 s; with the rest of napari's first-layer set-up
  (lazy imports, first evented models), the first Image and Labels layers cost ~0.45 s more
  than the next ones;
- vispy's dash atlas, made the first time a line visual is (the crosshair): thirteen dash
  patterns computed with numpy, ~0.1 s (vispy keeps them in an ``lru_cache`` afterwards).

:func:`warm_up` makes them (a small Image and Labels layer in mm, kept by no viewer) before the window is handed over, so they are paid once at start-up
(and, made before :func:`.startup_gc.freeze_startup_objects`, skipped by later collections).
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from vispy.visuals.line.dash_atlas import DashAtlas


def warm_up() -> None:
    Image(np.zeros((2, 2, 2), np.float32), units="mm")
    Labels(np.zeros((2, 2, 2), np.int32), units="mm")
    DashAtlas()
