"""Tissue segmentation of a whole-slide image, following CLAM's algorithm.

Steps (Lu et al., "Data-efficient and weakly supervised computational pathology on whole-slide
images", Nat. Biomed. Eng. 2021; mahmoodlab/CLAM ``WholeSlideImage.segmentTissue``):

1. read the whole level that ``get_best_level_for_downsample(64)`` picks (or ``seg_level``);
2. RGB → HSV, median blur of the saturation channel (kernel ``mthresh``);
3. binary threshold at ``sthresh`` (or Otsu when ``use_otsu``);
4. morphological closing with a ``close`` × ``close`` square (skipped when 0);
5. contours with their holes (``RETR_CCOMP``); a tissue contour is kept when its area minus its
   holes' areas exceeds ``a_t``; of its holes, the ``max_n_holes`` largest are kept when larger
   than ``a_h``. Areas are in units of one ``ref_patch_size``² level-0 patch (512² by default);
6. contours are scaled to level-0 pixels by the per-axis downsample of the segmentation level.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import Harm3Error

#: (sthresh, mthresh, close, a_t, a_h, max_n_holes) of CLAM's preset CSV files
PRESETS = {
    "tcga": dict(sthresh=8, mthresh=7, close=4, a_t=16, a_h=4, max_n_holes=8),
    "biopsy": dict(sthresh=15, mthresh=11, close=2, a_t=1, a_h=1, max_n_holes=2),
    "resection": dict(sthresh=15, mthresh=11, close=4, a_t=100, a_h=16, max_n_holes=8),
}

SEGMENTATION_DOWNSAMPLE = 64


@dataclass(frozen=True)
class TissueParams:
    """Parameters of :func:`segment_tissue`; the defaults are CLAM's ``create_patches_fp.py``."""

    sthresh: int = 8
    sthresh_up: int = 255
    mthresh: int = 7
    close: int = 4
    use_otsu: bool = False
    a_t: float = 100
    a_h: float = 16
    max_n_holes: int = 8
    ref_patch_size: int = 512
    seg_level: int = -1
    keep_ids: tuple = ()
    exclude_ids: tuple = ()

    @classmethod
    def from_preset(cls, preset: str | None = None, **overrides) -> "TissueParams":
        """CLAM defaults, updated by a named preset, then by explicit overrides (None = unset)."""
        values = {}
        if preset:
            if preset not in PRESETS:
                raise Harm3Error(f"unknown tissue preset {preset!r}; choose one of {', '.join(PRESETS)}")
            values.update(PRESETS[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise Harm3Error(f"unknown tissue parameter(s): {', '.join(sorted(unknown))}")
        if int(values.get("mthresh", cls.mthresh)) % 2 == 0:
            raise Harm3Error("mthresh (median blur kernel) must be odd")
        return cls(**values)


@dataclass(frozen=True)
class Tissue:
    """Tissue contours and their holes in level-0 pixels, and the mask they came from."""

    contours: list  # [(M, 1, 2) int32 (x, y) level 0]
    holes: list  # [[(K, 1, 2) int32]] one list per contour
    seg_level: int
    scale: tuple  # (sx, sy) level-0 px per segmentation-level px
    mask: np.ndarray = field(repr=False)  # (h, w) uint8 {0, 255} at the segmentation level
    params: TissueParams = TissueParams()

    def __len__(self) -> int:
        return len(self.contours)


def level_scale(level_dimensions, level: int) -> tuple:
    """Per-axis downsample (sx, sy) of ``level`` from its dimensions (as CLAM does)."""
    w0, h0 = level_dimensions[0]
    w, h = level_dimensions[level]
    return (w0 / float(w), h0 / float(h))


def saturation_mask(rgb: np.ndarray, params: TissueParams) -> np.ndarray:
    """Binary tissue mask (uint8 0/255) from an RGB image: blurred saturation, threshold, closing."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2HSV)
    saturation = cv2.medianBlur(np.ascontiguousarray(hsv[..., 1]), int(params.mthresh))
    if params.use_otsu:
        _, mask = cv2.threshold(saturation, 0, params.sthresh_up, cv2.THRESH_OTSU + cv2.THRESH_BINARY)
    else:
        _, mask = cv2.threshold(saturation, params.sthresh, params.sthresh_up, cv2.THRESH_BINARY)
    if params.close > 0:
        kernel = np.ones((int(params.close), int(params.close)), np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return mask


def filter_contours(contours, hierarchy: np.ndarray, area_min: float, hole_area_min: float,
                    max_n_holes: int) -> tuple:
    """Keep outer contours whose area net of holes exceeds ``area_min`` and their largest holes.

    ``hierarchy`` is OpenCV's (N, 4) RETR_CCOMP table; column 3 is the parent index.
    Returns (contours, holes) with holes as one list per kept contour, largest first.
    """
    if not len(contours):
        return [], []
    parents = hierarchy[:, 3]
    areas = np.array([cv2.contourArea(c) for c in contours])
    kept, kept_holes = [], []
    for index in np.flatnonzero(parents == -1):
        hole_ids = np.flatnonzero(parents == index)
        net_area = areas[index] - areas[hole_ids].sum()
        if net_area == 0 or not net_area > area_min:
            continue
        largest_first = sorted(hole_ids, key=lambda h: areas[h], reverse=True)[:max_n_holes]
        kept.append(contours[index])
        kept_holes.append([contours[h] for h in largest_first if areas[h] > hole_area_min])
    return kept, kept_holes


def _to_level0(contour: np.ndarray, scale) -> np.ndarray:
    return np.array(contour * np.asarray(scale), dtype=np.int32)


def segment_tissue_image(rgb: np.ndarray, scale=(1.0, 1.0), params: TissueParams = TissueParams(),
                         seg_level: int = 0) -> Tissue:
    """Segment tissue in an RGB image of the slide at one level (``scale`` = its downsample)."""
    mask = saturation_mask(rgb, params)
    patch_area = int(params.ref_patch_size ** 2 / (scale[0] * scale[1]))
    found, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    hierarchy = np.zeros((0, 4), int) if hierarchy is None else hierarchy.reshape(-1, 4)
    contours, holes = filter_contours(found, hierarchy, params.a_t * patch_area,
                                      params.a_h * patch_area, params.max_n_holes)
    contours = [_to_level0(c, scale) for c in contours]
    holes = [[_to_level0(h, scale) for h in group] for group in holes]
    ids = sorted(set(params.keep_ids or range(len(contours))) - set(params.exclude_ids))
    ids = [i for i in ids if 0 <= i < len(contours)]
    return Tissue([contours[i] for i in ids], [holes[i] for i in ids], seg_level,
                  tuple(scale), mask, params)


def segmentation_level(slide, params: TissueParams = TissueParams()) -> int:
    """The level CLAM segments at: ``seg_level`` or the best level for a downsample of 64."""
    if params.seg_level >= 0:
        if params.seg_level >= len(slide.level_dimensions):
            raise Harm3Error(f"seg_level {params.seg_level} does not exist (the slide has {len(slide.level_dimensions)} levels)")
        return params.seg_level
    return int(slide.get_best_level_for_downsample(SEGMENTATION_DOWNSAMPLE))


#: a segmentation level larger than this (pixels) is refused, as CLAM does (w·h > 1e8)
MAX_SEGMENTATION_PIXELS = 1e8


def segment_tissue(slide, params: TissueParams = TissueParams()) -> Tissue:
    """Segment the tissue of an open slide (see the module docstring for the algorithm)."""
    level = segmentation_level(slide, params)
    width, height = slide.level_dimensions[level]
    if width * height > MAX_SEGMENTATION_PIXELS:
        raise Harm3Error(f"segmentation level {level} is {width}×{height} px, too large to segment in memory; "
                         "pass a coarser seg_level")
    rgb = slide.read_region((0, 0), level, (width, height))
    return segment_tissue_image(rgb, level_scale(slide.level_dimensions, level), params, level)


def tissue_overlay(tissue: Tissue) -> np.ndarray:
    """The kept contours filled (holes cut out) at the segmentation level, uint8 0/255."""
    overlay = np.zeros_like(tissue.mask)
    inverse = 1.0 / np.asarray(tissue.scale)
    for contour, holes in zip(tissue.contours, tissue.holes):
        cv2.drawContours(overlay, [np.round(contour * inverse).astype(np.int32)], -1, 255, -1)
        if holes:
            cv2.drawContours(overlay, [np.round(h * inverse).astype(np.int32) for h in holes], -1, 0, -1)
    return overlay
