"""Writing screenshots (RGBA arrays) as PNG files, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtGui import QImage

from ..core.atomic import atomic_path


def save_png(image: np.ndarray, path, overwrite: bool = True) -> Path:
    """Write an (h, w, 3|4) uint8 array to ``path`` as PNG (no partial file under the name)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (h, w, 3|4) image, got shape {image.shape}")
    if image.shape[2] == 3:
        image = np.ascontiguousarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]))
    h, w = image.shape[:2]
    qimage = QImage(image.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if not qimage.save(str(tmp), "PNG"):
            raise OSError(f"could not write {path}")
    return path
