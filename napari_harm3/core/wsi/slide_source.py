"""Open a whole-slide image for the pipeline (through the project's reader, ``core.io.wsi``).

The pipeline relies only on this surface of the returned slide: ``level_dimensions``,
``level_downsamples``, ``mpp`` (None when unknown), ``objective_power``, ``backend``,
``read_region(location, level, size)`` → RGB uint8 (h, w, 3) on white, and
``get_best_level_for_downsample`` (OpenSlide's rule). ``open_slide`` tries OpenSlide first, so
the level list is OpenSlide's whenever OpenSlide reads the file (CLAM's segmentation level).
"""

from __future__ import annotations

from pathlib import Path

from ..io.wsi import open_slide


def open_wsi(path, mpp: float | None = None):
    """Open ``path``; ``mpp`` (µm per level-0 pixel) overrides or supplies the metadata's."""
    return open_slide(path, mpp=mpp)


def slide_name(path) -> str:
    """CLAM's slide name: the file name without its last extension."""
    name = Path(path).name
    return name.rsplit(".", 1)[0] if "." in name else name
