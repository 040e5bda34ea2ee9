"""Report plots: each takes a matplotlib ``ax`` and the report's data, draws, returns the ``ax``.

Colour is applied here (the report's data holds plain maps in [0, 1]).
"""

from __future__ import annotations

import numpy as np

from ..explain.colormaps import DEFAULT_OVERLAY_COLORMAP, overlay_listed_colormap
from .model import MriFigure, PatchTile, PcrSection, SurvivalSection

#: the viewer's default colormap and threshold, so a map looks the same in both
OVERLAY_CMAP = DEFAULT_OVERLAY_COLORMAP
OVERLAY_ALPHA = 0.55
OVERLAY_FLOOR = 0.15  # Grad-CAM below this is not painted (keeps the anatomy readable)
MASK_COLOUR = "#00e5ff"
SLIDE_ALPHA = 0.6


def _window(image: np.ndarray) -> tuple:
    """Display window of an MRI slice: its 1st–99th percentiles."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1, 99])
    return float(low), float(high if high > low else low + 1.0)


def plot_mri_slice(ax, figure: MriFigure, show_overlay: bool = True):
    """Grey MRI slice with Grad-CAM (jet, transparent below a floor) and the mask contour."""
    rows, cols = figure.image.shape
    extent = (0, cols * figure.spacing[1], rows * figure.spacing[0], 0)  # mm, row 0 at the top
    low, high = _window(figure.image)
    ax.imshow(figure.image, cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="nearest")
    if show_overlay and figure.overlay is not None:
        ax.imshow(figure.overlay, cmap=overlay_listed_colormap(OVERLAY_CMAP, OVERLAY_FLOOR), vmin=0.0, vmax=1.0,
                  alpha=OVERLAY_ALPHA, extent=extent, interpolation="nearest")
    if figure.mask is not None and np.any(figure.mask):
        ys = (np.arange(rows) + 0.5) * figure.spacing[0]
        xs = (np.arange(cols) + 0.5) * figure.spacing[1]
        ax.contour(xs, ys, figure.mask.astype(float), levels=[0.5], colors=MASK_COLOUR, linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_anchor("N")  # images line up under their titles
    ax.set_title(f"{figure.sequence} - slice {figure.slice_index + 1}/{figure.slice_count}\n({figure.slice_reason})",
                 fontsize=8)
    return ax


def plot_slide_attention(ax, thumbnail: np.ndarray, heatmap=None, downsample: float = 1.0, title: str = ""):
    """Slide thumbnail with the painter's raster (``HeatmapRaster``; NaN = no patch, transparent)
    drawn over it at its own resolution (``downsample``: the thumbnail's level-0 px per pixel)."""
    ax.imshow(thumbnail, interpolation="bilinear")
    if heatmap is not None:
        height, width = thumbnail.shape[:2]
        ax.imshow(heatmap.data, cmap=overlay_listed_colormap(OVERLAY_CMAP), vmin=0.0, vmax=1.0, alpha=SLIDE_ALPHA,
                  extent=heatmap.extent(downsample), interpolation="nearest")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    return ax


def plot_patch_tile(ax, tile: PatchTile, rank: int):
    """One top patch with its rank and score (position and footprint below it)."""
    ax.imshow(tile.rgb, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"#{rank}  {tile.score:.2f}", fontsize=6, pad=2)
    ax.set_xlabel(f"({tile.coords[0]}, {tile.coords[1]})\n{tile.size} px", fontsize=5, labelpad=1)
    return ax


def plot_fold_probabilities(ax, pcr: PcrSection):
    """Each fold model's probability (dots), the ensemble mean ± spread, and the threshold."""
    folds = np.asarray(pcr.fold_probabilities, dtype=float)
    ax.axvspan(max(0.0, pcr.probability - pcr.spread), min(1.0, pcr.probability + pcr.spread), color="#c6dbef")
    ax.axvline(pcr.threshold, color="0.4", linestyle=":", linewidth=1)
    ax.scatter(folds, np.zeros_like(folds), s=18, color="#2171b5", zorder=3, label="fold models")
    ax.plot([pcr.probability], [0], marker="|", markersize=18, color="#08306b", mew=2, label="mean")
    ax.set_xlim(0, 1)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.set_xlabel("probability of pCR", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper right", frameon=False, ncol=2, markerscale=0.5)
    return ax


def plot_survival_curve(ax, survival: SurvivalSection):
    """S(t) as a step curve over months, with S = 0.5 and the median survival marked."""
    times = np.asarray(survival.times_months, dtype=float)
    values = np.asarray(survival.survival, dtype=float)
    end = times[-1] * 1.15 if times[-1] > 0 else 1.0
    ax.step(np.append(times, end), np.append(values, values[-1]), where="post", color="#b2182b", linewidth=1.8,
            label=f"{survival.model_name} (risk {survival.risk:.3f})")
    ax.plot(times, values, "o", color="#b2182b", markersize=3)
    if survival.tail_open:
        ax.annotate("last bin open-ended", (times[-1], values[-1]), textcoords="offset points", xytext=(6, 6), fontsize=6)
    ax.axhline(0.5, color="0.6", linestyle=":", linewidth=1)
    median = survival.median_survival_months
    if median is not None:
        ax.axvline(median, color="0.6", linestyle="--", linewidth=1)
        ax.annotate(f"median {median:.1f} months", (median, 0.5), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlim(0, end)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("months", fontsize=8)
    ax.set_ylabel("S(t), probability of surviving beyond t", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return ax


def plot_table(ax, rows, col_widths, header=None, font_size=7, monospace_cols=()):
    """A borderless text table in ``ax`` (axes coordinates); ``col_widths`` are fractions."""
    ax.set_axis_off()
    lines = ([header] if header else []) + [list(r) for r in rows]
    if not lines:
        return ax
    step = min(0.12, 1.0 / max(len(lines), 1))
    lefts = np.concatenate([[0.0], np.cumsum(col_widths)[:-1]])
    for i, line in enumerate(lines):
        y = 1.0 - (i + 0.5) * step
        for j, cell in enumerate(line):
            ax.text(lefts[j], y, str(cell), transform=ax.transAxes, fontsize=font_size, va="center",
                    family="monospace" if j in monospace_cols else None,
                    weight="bold" if header and i == 0 else "normal")
    return ax
