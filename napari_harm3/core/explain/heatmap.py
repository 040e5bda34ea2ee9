"""The one painter: per-patch scores → a raster over the slide, for the viewer and the report alike.

Choices (one each, documented here and nowhere else):

- **Normalisation.** A pixel shows the *percentile rank* of its patch's score among the
  slide's patches (:func:`.patch_scores.percentile_ranks`): 0.8 means "more attended than
  80 % of this slide's patches", whatever the model's raw scale. A threshold t therefore hides
  the least attended t × 100 % of the patches.
- **Footprint.** Every patch covers its whole footprint (level-0 pixels, as recorded by the
  patch files), never a point or a grid step guessed from the coordinates.
- **Overlap.** Where footprints overlap (per-contour grids of CLAM), the higher rank wins.
- **Empty.** Where no patch lies the raster holds NaN; colormaps (:mod:`.colormaps`) make NaN
  and values below the threshold transparent, so the glass stays white.
- **Resolution.** One raster pixel is ``d = footprint / 8`` level-0 pixels (a patch spans 8 × 8
  raster pixels whatever the slide size). The raster's origin (ox, oy) is shifted by less than d
  so that the most common patch grid falls exactly on raster pixels (CLAM lays one grid per
  tissue contour); raster pixel (r, c) covers level-0 x ∈ [ox + c·d, ox + (c+1)·d),
  y ∈ [oy + r·d, oy + (r+1)·d). A pixel belongs to the patch that holds its centre, so the
  footprints of patches on another contour's grid are exact to d/2 (1/16 of a patch side).

The viewer places the raster with :meth:`HeatmapRaster.napari_placement` (µm, pixel centres);
the report draws the same array over its thumbnail with :meth:`HeatmapRaster.extent`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .patch_scores import PatchScores

#: raster pixels per patch side
OVERSAMPLE = 8


@dataclass(frozen=True, eq=False)
class HeatmapRaster:
    key: str
    label: str
    data: np.ndarray         # (rows, cols) float32: percentile rank of the patch there, NaN = no patch
    downsample: float        # level-0 pixels per raster pixel
    origin: tuple = (0.0, 0.0)  # level-0 (x, y) of raster pixel (0, 0)'s top-left corner

    def napari_placement(self, mpp: float | None) -> tuple:
        """(scale, translate) for a napari image layer over a slide layer of ``scale = (mpp, mpp)``
        (pixel centres: slide pixel i sits at world i·mpp). Without an mpp the slide is in pixels (1)."""
        unit = float(mpp) if mpp else 1.0
        step = self.downsample * unit
        ox, oy = self.origin
        return (step, step), ((oy + self.downsample / 2.0 - 0.5) * unit, (ox + self.downsample / 2.0 - 0.5) * unit)

    def extent(self, pixels_per_unit: float = 1.0) -> tuple:
        """matplotlib ``imshow`` extent (left, right, bottom, top) in image pixels of a picture with
        ``pixels_per_unit`` level-0 pixels per picture pixel (a thumbnail's downsample), pixel edges
        at integers − 0.5 as ``imshow`` draws a picture."""
        rows, cols = self.data.shape
        unit = float(pixels_per_unit)
        left, top = self.origin[0] / unit - 0.5, self.origin[1] / unit - 0.5
        return (left, left + cols * self.downsample / unit, top + rows * self.downsample / unit, top)

    def sample(self, shape, pixels_per_unit: float) -> np.ndarray:
        """The raster read at the pixel centres of a picture of ``shape`` (rows, cols) with
        ``pixels_per_unit`` level-0 pixels per picture pixel (nearest raster pixel; NaN outside)."""
        rows, cols = int(shape[0]), int(shape[1])
        r = np.floor(((np.arange(rows) + 0.5) * pixels_per_unit - self.origin[1]) / self.downsample).astype(np.int64)
        c = np.floor(((np.arange(cols) + 0.5) * pixels_per_unit - self.origin[0]) / self.downsample).astype(np.int64)
        out = np.full((rows, cols), np.nan, dtype=np.float32)
        rr = (r >= 0) & (r < self.data.shape[0])
        cc = (c >= 0) & (c < self.data.shape[1])
        out[np.ix_(rr, cc)] = self.data[np.ix_(r[rr], c[cc])]
        return out


def _grid_origin(coords: np.ndarray, step: float) -> tuple:
    """The (x, y) offset in [0, step) shared by most patches (their contour's grid)."""
    if not len(coords):
        return 0.0, 0.0
    offsets = np.mod(coords, step)
    values, counts = np.unique(offsets, axis=0, return_counts=True)
    ox, oy = values[int(np.argmax(counts))]
    return float(ox), float(oy)


def paint_heatmap(scores: PatchScores, slide_size) -> HeatmapRaster:
    """Rasterise ``scores`` over a slide of level-0 ``slide_size`` = (width, height)."""
    width, height = int(slide_size[0]), int(slide_size[1])
    step = scores.footprint / float(OVERSAMPLE)
    ox, oy = _grid_origin(scores.coords, step)
    cols, rows = max(1, int(np.ceil((width - ox) / step))), max(1, int(np.ceil((height - oy) / step)))
    raster = np.full((rows, cols), -1.0, dtype=np.float32)
    if len(scores):
        ranks = scores.ranks().astype(np.float32)
        x, y = scores.coords[:, 0] - ox, scores.coords[:, 1] - oy
        # raster pixels whose centre lies inside a patch's footprint: [x, x + footprint)
        first_col = np.ceil((x / step) - 0.5).astype(np.int64)
        first_row = np.ceil((y / step) - 0.5).astype(np.int64)
        last_col = np.ceil(((x + scores.footprint) / step) - 0.5).astype(np.int64)  # exclusive
        last_row = np.ceil(((y + scores.footprint) / step) - 0.5).astype(np.int64)
        span = int((last_col - first_col).max(initial=0)), int((last_row - first_row).max(initial=0))
        for dr in range(span[1]):
            for dc in range(span[0]):
                r, c = first_row + dr, first_col + dc
                keep = (r < last_row) & (c < last_col) & (r >= 0) & (c >= 0) & (r < rows) & (c < cols)
                np.maximum.at(raster, (r[keep], c[keep]), ranks[keep])
    raster[raster < 0] = np.nan
    return HeatmapRaster(key=scores.key, label=scores.label, data=raster, downsample=step, origin=(ox, oy))


def tissue_coverage(raster: HeatmapRaster, tissue: np.ndarray, pixels_per_unit: float) -> float:
    """Share of a picture's tissue pixels (``tissue``: bool (rows, cols)) where the raster has a value."""
    values = raster.sample(tissue.shape, pixels_per_unit)
    count = int(np.count_nonzero(tissue))
    return float(np.count_nonzero(np.isfinite(values) & tissue)) / count if count else 0.0
