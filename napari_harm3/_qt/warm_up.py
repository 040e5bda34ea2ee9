"""One-time work of the first case open, done while the window starts instead (issue 15).

Opening the first case of a session froze the window in two places that have nothing to do with
the case (``benchmarks/bench_viewer_latency.py --stalls``, 2 cores):

- pint's unit registry, which napari builds the first time a layer has units ("mm", "µm"): it
  parses pint's whole definitions file, ~0.4 s; with the rest of napari's first-layer set-up
  (lazy imports, first evented models), the first Image and Labels layers cost ~0.45 s more
  than the next ones;
- vispy's dash atlas, made the first time a line visual is (the crosshair): thirteen dash
  patterns computed with numpy, ~0.1 s (vispy keeps them in an ``lru_cache`` afterwards);
- the canvases' text glyphs (titles, edge letters, scale bars, vispy's ascender/descender probe
  'ÅÉÑŐjgpqy'): each new glyph's signed distance field is computed on the CPU, ~6 ms, 36 of them
  at the first open, in the paints of the turns that showed the text (two freezes of 120–160 ms
  left in the open). :data:`WARM_GLYPHS` are put into :mod:`.vispy_caches`' glyph memo through
  napari's own font class, with the face the canvases use (the application font's family), so
  the canvases find them there (~0.3 s at start).

:func:`warm_up` makes them (a small Image and Labels layer in mm, kept by no viewer) before the window is handed over, so they are paid once at start-up
(and, made before :func:`.startup_gc.freeze_startup_objects`, skipped by later collections).
"""

from __future__ import annotations

import string

import numpy as np
from napari._vispy.utils.qt_font import QtTextureFont
from napari.layers import Image, Labels
from qtpy.QtGui import QGuiApplication
from vispy.visuals.line.dash_atlas import DashAtlas
from vispy.visuals.text.text import SDFRendererCPU

from .vispy_caches import install as install_vispy_caches

#: what the canvases write: vispy's metrics probe, titles and notes ("T1-pre — not loaded",
#: "resliced onto T1-pre"), edge letters, scale bars ("20 mm", "500 µm")
WARM_GLYPHS = "ÅÉÑŐjgpqy" + string.digits + string.ascii_lowercase + "RLAPSIT" + " -—.:µ"


def warm_glyphs() -> None:
    """Compute :data:`WARM_GLYPHS`' distance fields into the glyph memo (napari's font class)."""
    install_vispy_caches()
    font = QtTextureFont({"face": QGuiApplication.font().family(), "bold": False, "italic": False}, SDFRendererCPU())
    for char in WARM_GLYPHS:
        font[char]


def warm_up() -> None:
    Image(np.zeros((2, 2, 2), np.float32), units="mm")
    Labels(np.zeros((2, 2, 2), np.int32), units="mm")
    DashAtlas()
    warm_glyphs()
