"""One slide → tissue → patch coordinates at a magnification → CLAM patch file.

:func:`patch_slide` is the pure computation; :func:`write_patches` saves its result in CLAM's
layout (and, with ``save_mask``, a PNG of the tissue mask with the contours drawn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..progress import report
from .feature_files import write_patch_file
from .magnification import MagnificationPlan, plan_magnification
from .patch_grid import patch_coordinates
from .slide_source import open_wsi, slide_name
from .tissue import Tissue, TissueParams, segment_tissue


@dataclass(frozen=True)
class PatchSet:
    """Patch coordinates of one slide at one magnification, with how they were made."""

    slide: str
    coords: np.ndarray  # (N, 2) int64 level-0 (x, y) top-left, CLAM order
    plan: MagnificationPlan
    tissue: Tissue = field(repr=False)
    contour_fn: str = "four_pt"
    level_dimensions: tuple = ()
    level_downsamples: tuple = ()
    slide_path: str = ""

    def __len__(self) -> int:
        return len(self.coords)

    def clam_attrs(self) -> dict:
        """CLAM's attributes of the ``coords`` dataset plus ours (magnification, sizes, params)."""
        level = self.plan.read_level
        level_dim = tuple(int(v) for v in self.level_dimensions[level])
        downsample = self.level_downsamples[level]
        sx = self.level_dimensions[0][0] / level_dim[0]
        sy = self.level_dimensions[0][1] / level_dim[1]
        downsample_xy = (downsample, downsample) if (sx, sy) == (downsample, downsample) else (sx, sy)
        params = self.tissue.params
        return {
            "patch_size": int(self.plan.read_size),
            "patch_level": int(level),
            "downsample": np.asarray(downsample_xy, dtype=np.float64),
            "downsampled_level_dim": np.asarray(level_dim, dtype=np.int64),
            "level_dim": np.asarray(level_dim, dtype=np.int64),
            "name": self.slide,
            "magnification": -1.0 if self.plan.magnification is None else float(self.plan.magnification),
            "base_magnification": -1.0 if self.plan.base_magnification is None else float(self.plan.base_magnification),
            "magnification_source": self.plan.source,
            "patch_size_level0": int(self.plan.patch_size_level0),
            "target_patch_size": int(self.plan.patch_size),
            "contour_fn": self.contour_fn,
            "seg_level": int(self.tissue.seg_level),
            "tissue_params": {k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in params.__dict__.items()},
            "slide_path": self.slide_path,
        }


def patch_slide(slide_path, mag: float | None = 20, patch_size: int = 256,
                params: TissueParams = TissueParams(), contour_fn: str = "four_pt",
                mpp: float | None = None, step: int | None = None, slide=None,
                tissue: Tissue | None = None, progress=None) -> PatchSet:
    """Segment tissue and lay the patch grid at ``mag`` (None = level-0 pixels, CLAM's default).

    ``step`` is in output pixels (default: ``patch_size``, no overlap). A slide without mpp or
    objective power raises :class:`MissingMetadataError` unless ``mpp`` is given.
    """
    slide = slide if slide is not None else open_wsi(slide_path, mpp=mpp)
    plan = plan_magnification(slide, mag, patch_size, mpp=mpp, path=slide_path)
    report(progress, 0.0, "segmenting tissue")
    tissue = tissue if tissue is not None else segment_tissue(slide, params)
    report(progress, 0.5, f"{len(tissue)} tissue contours; laying the patch grid")
    step0 = plan.patch_size_level0 if step is None else int(round(step * plan.patch_size_level0 / plan.patch_size))
    coords = patch_coordinates(tissue.contours, tissue.holes, plan.patch_size_level0, step0, contour_fn,
                               level0_dim=slide.level_dimensions[0])
    report(progress, 1.0, f"{len(coords)} patches")
    return PatchSet(slide_name(slide_path), coords, plan, tissue, contour_fn,
                    tuple(slide.level_dimensions), tuple(slide.level_downsamples), str(slide_path))


def write_patches(patch_set: PatchSet, path, save_mask: bool = False, overwrite: bool = True) -> Path:
    """Write the CLAM patch file (and ``{slide}_mask.png`` next to it with ``save_mask``)."""
    path = write_patch_file(path, patch_set.coords, patch_set.clam_attrs(), overwrite=overwrite)
    if save_mask:
        write_mask_png(patch_set, path.parent.parent / "masks" / f"{patch_set.slide}_mask.png")
    return path


def write_mask_png(patch_set: PatchSet, path) -> Path:
    """The segmentation-level tissue mask (grey), kept contours (green), holes (blue), patches (red)."""
    tissue = patch_set.tissue
    inverse = 1.0 / np.asarray(tissue.scale)
    canvas = cv2.cvtColor(tissue.mask // 2, cv2.COLOR_GRAY2BGR)
    cv2.drawContours(canvas, [np.round(c * inverse).astype(np.int32) for c in tissue.contours], -1, (0, 255, 0), 1)
    for holes in tissue.holes:
        cv2.drawContours(canvas, [np.round(h * inverse).astype(np.int32) for h in holes], -1, (255, 0, 0), 1)
    size = patch_set.plan.patch_size_level0 * inverse
    for x, y in patch_set.coords * inverse:
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + size[0]), int(y + size[1])), (0, 0, 255), 1)
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        ok, encoded = cv2.imencode(".png", canvas)
        tmp.write_bytes(encoded.tobytes())
    return path
