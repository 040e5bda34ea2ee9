"""Overlay colours, one choice for the viewer and the report.

The default is matplotlib's **inferno**: perceptually uniform, readable in grey print, and
dark-to-bright so that "more" is always brighter. An overlay's colour table is transparent at NaN
(no value: glass, outside the crop box) and below the display threshold, so a thresholded map
hides nothing under it; above the threshold a value keeps its colour from the full [0, 1] range
(moving the threshold does not change what a colour means).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps as mpl_colormaps
from matplotlib.colors import ListedColormap

DEFAULT_OVERLAY_COLORMAP = "inferno"
#: colormaps offered in the viewer (all perceptually uniform)
OVERLAY_COLORMAPS = ("inferno", "magma", "viridis", "plasma", "cividis")
TABLE_SIZE = 256


def overlay_colours(name: str = DEFAULT_OVERLAY_COLORMAP, threshold: float = 0.0, n: int = TABLE_SIZE) -> tuple:
    """(controls, RGBA colours) of the overlay colormap: ``n`` + 2 control points in [0, 1], fully
    transparent below ``threshold`` (a step at it), ``name``'s colours above."""
    threshold = float(np.clip(threshold, 0.0, 1.0))
    base = mpl_colormaps[name]
    above = np.linspace(threshold, 1.0, n)
    colours = np.asarray(base(above), dtype=np.float64)
    if threshold <= 0.0:
        return above, colours
    gap = min(1e-4, threshold / 2)
    controls = np.concatenate([[0.0, threshold - gap], above])
    colours = np.concatenate([np.zeros((2, 4)), colours])
    return controls, colours


def overlay_listed_colormap(name: str = DEFAULT_OVERLAY_COLORMAP, threshold: float = 0.0) -> ListedColormap:
    """A matplotlib colormap for the report: same colours, NaN and below-threshold transparent."""
    samples = np.linspace(0.0, 1.0, TABLE_SIZE)
    colours = np.asarray(mpl_colormaps[name](samples), dtype=np.float64)
    colours[samples < threshold, 3] = 0.0
    clear = (0.0, 0.0, 0.0, 0.0)
    return ListedColormap(colours, name=f"{name}-from-{threshold:g}").with_extremes(bad=clear, under=clear)
