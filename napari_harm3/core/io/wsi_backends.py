"""The two slide-reading libraries behind :class:`~napari_harm3.core.io.wsi.Slide`.

Each backend opens one file and offers the same small surface: level geometry, parsed
metadata (microns per pixel, objective power, vendor), raw properties, associated image
names, and region reads that always return RGB ``uint8`` with **white** where the slide
has no pixels (outside the image, transparent areas).

* :class:`OpenSlideBackend` — OpenSlide (C library via openslide-python + openslide-bin).
  openslide-python hands back RGBA whose alpha is *not* premultiplied (its binding undoes
  the C library's premultiplication), so transparency is composited over white as
  ``rgb * a + 255 * (1 - a)``.
* :class:`TiffSlideBackend` — tiffslide (tifffile + zarr). It pads out-of-bounds regions with
  black, so this backend reads only the in-bounds part and fills the rest with white itself.

Library exceptions raised while reading become :class:`InputFileError` (one readable line).
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import openslide
import tifffile
import tiffslide

from ..errors import InputFileError
from .wsi_sniff import tifffile_warnings

WHITE = 255


class NotASlideError(InputFileError):
    """The file is readable but is not a whole-slide image (e.g. an untiled single-image TIFF)."""


def positive_float(value) -> float | None:
    """``value`` as a finite positive float, or None (missing, empty, zero, garbage)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _all_opaque(rgba: np.ndarray) -> bool:
    """True when every alpha is 255 (one vectorised uint32 comparison on little-endian)."""
    if sys.byteorder == "little" and rgba.flags.c_contiguous:
        return bool((rgba.view(np.uint32) >= 0xFF000000).all())
    return bool(rgba[..., 3].min() == 255)


def rgba_over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight (non-premultiplied) RGBA ``uint8`` over white → RGB ``uint8``."""
    if rgba.size == 0:
        return np.ascontiguousarray(rgba[..., :3])
    rgba = np.ascontiguousarray(rgba)
    if _all_opaque(rgba):
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)  # a SIMD copy; numpy's strided copy is ~10× slower
    a = rgba[..., 3:4].astype(np.uint16)
    out = (rgba[..., :3].astype(np.uint16) * a + WHITE * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def to_rgb_uint8(pixels: np.ndarray) -> np.ndarray:
    """Grey (h, w) / (h, w, 1), RGB or RGBA ``uint8`` → contiguous RGB ``uint8``."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    depth = pixels.shape[-1]
    if depth == 1:
        return np.repeat(pixels, 3, axis=-1)
    if depth == 4:
        return rgba_over_white(pixels)
    return np.ascontiguousarray(pixels[..., :3])


@contextlib.contextmanager
def reading(path, what: str, errors: tuple[type[BaseException], ...]):
    """Turn a library error raised while reading ``what`` into :class:`InputFileError`."""
    try:
        yield
    except InputFileError:
        raise
    except errors as exc:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputFileError(path, f"cannot read {what} (file damaged or truncated?): {detail}") from exc


def _white(size) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), WHITE, dtype=np.uint8)


class OpenSlideBackend:
    """A slide opened with OpenSlide."""

    name = "openslide"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._errors = (openslide.OpenSlideError, OSError, ValueError)
        self._osr = openslide.OpenSlide(str(path))
        props = self._osr.properties
        self.properties = {str(k): str(v) for k, v in props.items()}
        self.vendor = props.get("openslide.vendor") or None
        self.mpp_x = positive_float(props.get("openslide.mpp-x"))
        self.mpp_y = positive_float(props.get("openslide.mpp-y"))
        self.objective_power = positive_float(props.get("openslide.objective-power"))
        self.level_dimensions = tuple((int(w), int(h)) for w, h in self._osr.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in self._osr.level_downsamples)
        self.associated_names = tuple(self._osr.associated_images.keys())

    def read_region(self, location, level: int, size) -> np.ndarray:
        """OpenSlide semantics: ``location`` in level-0 pixels, ``size`` at ``level``."""
        width, height = size
        if width == 0 or height == 0:
            return _white(size)
        with reading(self.path, f"region {tuple(location)} at level {level}", self._errors):
            image = self._osr.read_region((int(location[0]), int(location[1])), level, (width, height))
        return rgba_over_white(np.asarray(image))

    def read_level(self, level: int, origin, size) -> np.ndarray:
        """Region whose top-left is ``origin`` (x, y) in *level* pixels."""
        ds = self.level_downsamples[level]
        return self.read_region((round(origin[0] * ds), round(origin[1] * ds)), level, size)

    def associated(self, name: str) -> np.ndarray:
        with reading(self.path, f"associated image {name!r}", self._errors):
            image = self._osr.associated_images[name]
        return to_rgb_uint8(np.asarray(image.convert("RGBA")))

    def close(self) -> None:
        self._osr.close()


class TiffSlideBackend:
    """A slide opened with tiffslide (tifffile + zarr)."""

    name = "tiffslide"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._errors = (tifffile.TiffFileError, OSError, ValueError, RuntimeError, KeyError, IndexError)
        with tifffile_warnings():
            self._ts = tiffslide.TiffSlide(str(path))
        try:
            with tifffile_warnings(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*metadata parsing only partially implemented")
                self._init_metadata()
        except BaseException:
            self._ts.close()
            raise

    def _init_metadata(self) -> None:
        props = self._ts.properties
        self.properties = {str(k): str(v) for k, v in props.items() if v is not None}
        vendor = props.get("tiffslide.vendor")
        if not vendor:
            with contextlib.suppress(Exception):
                vendor = tiffslide.TiffSlide.detect_format(str(self.path))
        self.vendor = vendor or None
        self.mpp_x = positive_float(props.get("tiffslide.mpp-x"))
        self.mpp_y = positive_float(props.get("tiffslide.mpp-y"))
        self.objective_power = positive_float(props.get("tiffslide.objective-power"))
        self.level_dimensions = tuple((int(w), int(h)) for w, h in self._ts.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in self._ts.level_downsamples)
        self.associated_names = tuple(self._ts.associated_images.keys())
        tile_width = props.get("tiffslide.level[0].tile-width")
        if self.vendor == "generic-tiff" and len(self.level_dimensions) == 1 and not tile_width:
            raise NotASlideError(
                self.path,
                "an untiled single-image TIFF is not a whole-slide image (no tiles, no pyramid); "
                "open it as an ordinary image",
            )
        dtype = self._ts.ts_tifffile.series[props.get("tiffslide.series-index", 0)].dtype
        if dtype != np.uint8:
            raise InputFileError(self.path, f"{dtype} pixels: only 8-bit (RGB or grey) slides are supported")

    def read_level(self, level: int, origin, size) -> np.ndarray:
        """Region whose top-left is ``origin`` (x, y) in *level* pixels; white outside."""
        width, height = size
        level_w, level_h = self.level_dimensions[level]
        x0, y0 = int(origin[0]), int(origin[1])
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + width, level_w), min(y0 + height, level_h)
        if cx0 >= cx1 or cy0 >= cy1:
            return _white(size)
        ds = self.level_downsamples[level]
        # tiffslide maps a level-0 location to int(location / ds): ceil lands on (cx0, cy0)
        location = (math.ceil(cx0 * ds), math.ceil(cy0 * ds))
        with reading(self.path, f"region {(x0, y0)} at level {level}", self._errors):
            pixels = self._ts.read_region(location, level, (cx1 - cx0, cy1 - cy0), as_array=True, padding=False)
        pixels = to_rgb_uint8(np.asarray(pixels))
        if (cx0, cy0, cx1, cy1) == (x0, y0, x0 + width, y0 + height):
            return pixels
        out = _white(size)
        out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = pixels
        return out

    def read_region(self, location, level: int, size) -> np.ndarray:
        """OpenSlide semantics: ``location`` in level-0 pixels, ``size`` at ``level``."""
        ds = self.level_downsamples[level]
        origin = (math.floor(location[0] / ds), math.floor(location[1] / ds))
        return self.read_level(level, origin, size)

    def associated(self, name: str) -> np.ndarray:
        with reading(self.path, f"associated image {name!r}", self._errors):
            image = self._ts.associated_images[name]
            return to_rgb_uint8(np.asarray(image.convert("RGBA")))

    def close(self) -> None:
        self._ts.close()


BACKENDS = {"openslide": OpenSlideBackend, "tiffslide": TiffSlideBackend}
