"""Figure data for a report: MRI key slices, slide thumbnail, attention maps and top patches.

Everything here turns model outputs (maps in the voxel space of a volume, scores per slide
patch) into the plain arrays of :mod:`.model`; no colour, no matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import MriFigure, PatchTile

#: longest side of the slide thumbnail kept in a report
THUMBNAIL_MAX_SIDE = 512
#: side in pixels of a top-patch tile in the gallery
TILE_PX = 128


@dataclass(frozen=True, eq=False)
class PatchAttention:
    """Scores of one model over a slide's patches: level-0 (x, y) corners, one score each.

    ``patch_size`` is the patch side in level-0 pixels (a 256-px patch at 5x on a 20x slide is 1024).
    """

    label: str
    coords: np.ndarray  # (N, 2) int, level-0 (x, y)
    scores: np.ndarray  # (N,) float
    patch_size: int


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


def percentile_scores(scores: np.ndarray) -> np.ndarray:
    """Scores → their percentile rank in [0, 1] (ties share a rank), as CLAM's heatmaps do:
    attention is long-tailed, ranks show where the model looked most without one patch
    washing out the rest. A single patch gets 1."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size <= 1:
        return np.ones_like(scores)
    order = np.sort(scores)
    low = np.searchsorted(order, scores, side="left")
    high = np.searchsorted(order, scores, side="right") - 1
    return (low + high) / 2.0 / (scores.size - 1)


def paint_attention(attention: PatchAttention, thumbnail_shape, downsample: float) -> np.ndarray:
    """A float map on the thumbnail grid: each patch's percentile score over its footprint
    (mean where patches overlap), NaN where no patch lies."""
    height, width = int(thumbnail_shape[0]), int(thumbnail_shape[1])
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    values = percentile_scores(attention.scores)
    side = max(1, int(round(attention.patch_size / downsample)))
    for (x, y), value in zip(np.asarray(attention.coords), values):
        col, row = int(x / downsample), int(y / downsample)
        r0, r1 = max(0, row), min(height, row + side)
        c0, c1 = max(0, col), min(width, col + side)
        if r0 < r1 and c0 < c1:
            total[r0:r1, c0:c1] += value
            count[r0:r1, c0:c1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def top_patch_tiles(slide, attention: PatchAttention, k: int = 4, tile_px: int = TILE_PX) -> tuple:
    """The ``k`` highest-scoring patches as RGB tiles of about ``tile_px`` pixels, best first."""
    order = np.argsort(-np.asarray(attention.scores, dtype=np.float64), kind="stable")[:k]
    wanted = max(1.0, attention.patch_size / tile_px)
    level = int(slide.get_best_level_for_downsample(wanted))
    level_downsample = float(slide.level_downsamples[level])
    side = max(1, int(round(attention.patch_size / level_downsample)))
    tiles = []
    for i in order:
        x, y = (int(v) for v in attention.coords[i])
        rgb = np.asarray(slide.read_region((x, y), level, (side, side)))[..., :3]
        step = max(1, side // tile_px)
        tiles.append(PatchTile(coords=(x, y), size=int(attention.patch_size), score=float(attention.scores[i]),
                               rgb=_block_mean_rgb(rgb, step)))
    return tuple(tiles)

