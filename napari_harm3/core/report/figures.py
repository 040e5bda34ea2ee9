"""Figure data for a report: MRI key slices, slide thumbnail, tissue pixels and top patches.

Everything here turns model outputs (maps in the voxel space of a volume, scores per slide
patch) into the plain arrays of :mod:`.model`; no colour, no matplotlib. Slide heatmaps are
painted by the one painter (``core/explain/heatmap.py``), not here.
"""

from __future__ import annotations

import numpy as np

from ..explain.patch_scores import PatchScores
from .model import MriFigure, PatchTile

#: longest side of the slide thumbnail kept in a report
THUMBNAIL_MAX_SIDE = 512
#: side in pixels of a top-patch tile in the gallery
TILE_PX = 128


def key_slice(mask: np.ndarray | None, overlay: np.ndarray | None, slice_count: int) -> tuple:
    """(index, reason): the slice with the tumour mask's largest cross-section, else the
    Grad-CAM peak, else the centre of the volume."""
    if mask is not None and np.any(mask):
        areas = np.count_nonzero(np.asarray(mask).reshape(slice_count, -1), axis=1)
        return int(np.argmax(areas)), "largest tumour cross-section"
    if overlay is not None and np.any(np.nan_to_num(overlay) > 0):
        flat = int(np.nanargmax(overlay))
        return int(np.unravel_index(flat, np.shape(overlay))[0]), "Grad-CAM peak"
    return slice_count // 2, "volume centre"


def mri_figure(sequence: str, data: np.ndarray, spacing, overlay: np.ndarray | None = None,
               mask: np.ndarray | None = None) -> MriFigure:
    """The key slice of a (slice, row, column) volume with its overlay and mask on the same grid.

    ``spacing`` is (dz, dy, dx) in mm; ``overlay`` (e.g. Grad-CAM) and ``mask`` must have the
    volume's shape (explanations are maps in the voxel space of the image they explain).
    """
    data = np.asarray(data)
    for name, other in (("overlay", overlay), ("mask", mask)):
        if other is not None and np.shape(other) != data.shape:
            raise ValueError(f"{sequence}: {name} shape {np.shape(other)} differs from the volume's {data.shape}")
    index, reason = key_slice(mask, overlay, data.shape[0])
    layer = None if overlay is None else np.clip(np.nan_to_num(np.asarray(overlay[index], dtype=np.float32)), 0.0, 1.0)
    return MriFigure(
        sequence=sequence,
        slice_index=index,
        slice_count=int(data.shape[0]),
        slice_reason=reason,
        image=np.asarray(data[index], dtype=np.float32),
        overlay=layer,
        mask=None if mask is None else np.asarray(mask[index]) > 0,
        spacing=(float(spacing[1]), float(spacing[2])),
    )


def slide_thumbnail(slide, max_side: int = THUMBNAIL_MAX_SIDE) -> tuple:
    """(RGB uint8 thumbnail, level-0 pixels per thumbnail pixel) of a slide.

    ``slide`` has the surface of the project's slide readers: ``level_dimensions``,
    ``level_downsamples``, ``get_best_level_for_downsample``, ``read_region`` → RGB.
    """
    width, height = slide.level_dimensions[0]
    wanted = max(width, height) / max_side
    level = int(slide.get_best_level_for_downsample(max(1.0, wanted)))
    level_width, level_height = slide.level_dimensions[level]
    region = np.asarray(slide.read_region((0, 0), level, (level_width, level_height)))[..., :3]
    step = max(1, int(np.ceil(max(level_width, level_height) / max_side)))
    thumbnail = _block_mean_rgb(region, step)
    return thumbnail, width / thumbnail.shape[1]


def _block_mean_rgb(rgb: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = (rgb.shape[0] // step) * step, (rgb.shape[1] // step) * step
    blocks = rgb[:height, :width].reshape(height // step, step, width // step, step, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def tissue_pixels(thumbnail: np.ndarray, white: float = 0.8, saturation: float = 0.07) -> np.ndarray:
    """Bool (H, W): thumbnail pixels that are tissue — not near-white glass and not grey (a
    saturation test, as CLAM's tissue mask); used to say how much tissue a map covers."""
    rgb = np.asarray(thumbnail[..., :3], dtype=np.float32) / 255.0
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    return (sat > saturation) & (low < white)


def patch_rgb(slide, x: int, y: int, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB of the level-0 region at (x, y), composited onto white where the
    reader gives alpha (OpenSlide's premultiplied RGBA)."""
    region = np.asarray(slide.read_region((int(x), int(y)), 0, (int(size), int(size))))
    if region.shape[-1] == 4:
        alpha = region[..., 3:4].astype(np.float32) / 255.0
        region = (region[..., :3].astype(np.float32) + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(region[..., :3], dtype=np.uint8)


#: a top patch is shown only when at least this share of it is tissue
MIN_TISSUE = 0.5
#: how many of the best-scoring patches are looked at to find the top ones that are tissue
MAX_CANDIDATES = 64


def top_patch_tiles(slide, scores: PatchScores, k: int = 4, tile_px: int = TILE_PX,
                    min_tissue: float = MIN_TISSUE) -> tuple:
    """The ``k`` highest-scoring patches that are mostly tissue (≥ ``min_tissue`` of their pixels;
    a border patch that is mostly glass is passed over), best first, as RGB tiles of about
    ``tile_px`` pixels, each read over its whole footprint (a 5× patch spans 4× the level-0 pixels
    of a 20× one) from the pyramid level closest to the tile's resolution."""
    wanted = max(1.0, scores.footprint / tile_px)
    level = int(slide.get_best_level_for_downsample(wanted))
    level_downsample = float(slide.level_downsamples[level])
    side = max(1, int(round(scores.footprint / level_downsample)))
    tiles = []
    for i in scores.top(MAX_CANDIDATES):
        x, y = (int(v) for v in scores.coords[i])
        rgb = _block_mean_rgb(np.asarray(slide.read_region((x, y), level, (side, side)))[..., :3],
                              max(1, side // tile_px))
        if tissue_pixels(rgb).mean() < min_tissue:
            continue
        tiles.append(PatchTile(coords=(x, y), size=scores.footprint, score=float(scores.scores[i]), rgb=rgb,
                               magnification=scores.magnification))
        if len(tiles) == k:
            break
    return tuple(tiles)
