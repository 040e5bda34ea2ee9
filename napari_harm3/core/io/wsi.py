"""Whole-slide images: open with OpenSlide (or tiffslide), read regions, lazy pyramids.

>>> with open_slide("case01.svs") as slide:                     # doctest: +SKIP
...     tile = slide.read_region((x, y), 0, (512, 512))          # RGB uint8 (512, 512, 3)
...     levels = slide.pyramid()                                 # napari multiscale data

Coordinates follow OpenSlide: ``location`` is (x, y) in level-0 pixels, ``size`` is
(width, height) at the requested level; arrays are (rows, cols, 3). Regions are always RGB
``uint8`` with **white** where the slide has no pixels (outside the image, transparent).

Microns per pixel is never guessed: ``slide.mpp`` is the metadata's value, the value the
user entered (``open_slide(path, mpp=0.25)`` or ``slide.with_mpp(0.25)``), or None. Code
that needs a physical scale calls :meth:`Slide.require_mpp`, which raises
:class:`MissingMetadataError` telling the user how to supply it.

Backends: ``backend="auto"`` tries OpenSlide first and falls back to tiffslide; both can
be forced. They may disagree on a file (an NDPI has 7 OpenSlide levels but 4 in tiffslide;
DICOM-WSI mpp differs in the 4th digit), so never assume equal level lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

from ..errors import MPP_HINTS, Harm3Error, InputFileError, MissingMetadataError
from .wsi_backends import BACKENDS, NotASlideError
from .wsi_pyramid import SlideLevelArray
from .wsi_sniff import DICOM_WSI_KIND, describe_file_kind, is_slide_file, is_tiff_header, tiff_damage

__all__ = ["Slide", "open_slide", "is_slide_file"]

#: How to supply a missing microns-per-pixel value (used in messages).
MPP_HINT = "enter µm/px in the Case tab of the HARM3 case panel"


class _AssociatedImages(Mapping):
    """Lazy mapping name → RGB uint8 image; decodes an image on first access only."""

    def __init__(self, backend):
        self._backend = backend
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._backend.associated_names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._backend.associated(name)
        return self._cache[name]

    def __iter__(self):
        return iter(self._backend.associated_names)

    def __len__(self) -> int:
        return len(self._backend.associated_names)

    def __repr__(self) -> str:
        return f"<associated images {list(self)}>"


def _checked_mpp(value) -> float:
    try:
        mpp = float(value)
    except (TypeError, ValueError):
        mpp = float("nan")
    if not (math.isfinite(mpp) and mpp > 0):
        raise Harm3Error(f"microns per pixel must be a positive number, got {value!r}")
    return mpp


class Slide:
    """An open whole-slide image (context manager; :meth:`close` releases the file)."""

    def __init__(self, backend, mpp=None):
        self._backend = backend
        self.path: Path = backend.path
        self.backend: str = backend.name
        self.vendor: str | None = backend.vendor
        self.level_dimensions: tuple[tuple[int, int], ...] = backend.level_dimensions
        self.level_downsamples: tuple[float, ...] = backend.level_downsamples
        self.level_count: int = len(self.level_dimensions)
        self.objective_power: float | None = backend.objective_power
        self.properties: Mapping[str, str] = MappingProxyType(backend.properties)
        self.associated_images: Mapping[str, np.ndarray] = _AssociatedImages(backend)
        if mpp is not None:
            self.mpp_x = self.mpp_y = _checked_mpp(mpp)
            self.mpp_source = "user"
        else:
            self.mpp_x = backend.mpp_x if backend.mpp_x is not None else backend.mpp_y
            self.mpp_y = backend.mpp_y if backend.mpp_y is not None else backend.mpp_x
            self.mpp_source = "metadata" if self.mpp_x is not None else None
        self._pyramid: list[SlideLevelArray] | None = None

    # --- metadata -----------------------------------------------------------------------
    @property
    def mpp(self) -> float | None:
        """Microns per level-0 pixel (mean of x and y), or None when unknown."""
        if self.mpp_x is None:
            return None
        return (self.mpp_x + self.mpp_y) / 2.0

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0."""
        return self.level_dimensions[0]

    def require_mpp(self) -> float:
        """The mpp, or :class:`MissingMetadataError` saying how the user can supply it."""
        if self.mpp is None:
            raise MissingMetadataError(f"{self.path.name}: the slide's metadata has no microns-per-pixel value",
                                       hints=MPP_HINTS)
        return self.mpp

    def with_mpp(self, mpp) -> "Slide":
        """The same open slide with the user's microns per pixel (``mpp_source='user'``).

        The new object shares the open file with this one: closing either closes both.
        """
        return Slide(self._backend, mpp=_checked_mpp(mpp))

    # --- pixels -------------------------------------------------------------------------
    def _check_level(self, level) -> int:
        if not isinstance(level, (int, np.integer)) or not 0 <= level < self.level_count:
            raise IndexError(f"level {level!r} out of range: {self.path.name} has {self.level_count} levels")
        return int(level)

    @staticmethod
    def _check_size(size) -> tuple[int, int]:
        width, height = (int(s) for s in size)
        if width < 0 or height < 0:
            raise ValueError(f"region size must not be negative, got {tuple(size)}")
        return width, height

    def read_region(self, location, level, size) -> np.ndarray:
        """RGB uint8 (h, w, 3) of ``size`` (w, h) at ``level``, top-left ``location`` in level-0 px."""
        level = self._check_level(level)
        return self._backend.read_region((int(location[0]), int(location[1])), level, self._check_size(size))

    def read_level(self, level, origin, size) -> np.ndarray:
        """Like :meth:`read_region`, with ``origin`` (x, y) in pixels *of that level*.

        Exact at levels whose downsample is not an integer (where a level-0 location
        cannot address every level pixel); used by :meth:`pyramid`.
        """
        level = self._check_level(level)
        return self._backend.read_level(level, (int(origin[0]), int(origin[1])), self._check_size(size))

    def get_best_level_for_downsample(self, downsample) -> int:
        """OpenSlide's rule: the coarsest level whose downsample is at most ``downsample``."""
        for level, level_downsample in enumerate(self.level_downsamples):
            if downsample < level_downsample:
                return max(0, level - 1)
        return self.level_count - 1

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """RGB uint8 image of the whole slide, its longer side ``max_size`` px (or less)."""
        width0, height0 = self.dimensions
        scale = min(1.0, max_size / max(width0, height0))
        target = (max(1, round(width0 * scale)), max(1, round(height0 * scale)))
        level = self.get_best_level_for_downsample(1.0 / scale)
        width, height = self.level_dimensions[level]
        out = np.empty((target[1], target[0], 3), dtype=np.uint8)
        rows_per_strip = max(1, (32 * 1024 * 1024) // max(1, width))  # bounded memory
        y_out = 0
        for y in range(0, height, rows_per_strip):
            strip = self.read_level(level, (0, y), (width, min(rows_per_strip, height - y)))
            y_next = round(min(height, y + rows_per_strip) * target[1] / height)
            if y_next > y_out:
                image = Image.fromarray(strip).resize((target[0], y_next - y_out), Image.Resampling.BOX)
                out[y_out:y_next] = np.asarray(image)
                y_out = y_next
        return out

    def pyramid(self) -> list[SlideLevelArray]:
        """Lazy levels (h, w, 3) uint8, level 0 first; each slice is one region read."""
        if self._pyramid is None:
            self._pyramid = [SlideLevelArray(self, level) for level in range(self.level_count)]
        return self._pyramid

    # --- life cycle ---------------------------------------------------------------------
    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        mpp = f"{self.mpp:.5g} µm/px ({self.mpp_source})" if self.mpp else "mpp unknown"
        return (
            f"<Slide {self.path.name!r} {self.backend}/{self.vendor} "
            f"{self.dimensions[0]}x{self.dimensions[1]} {self.level_count} levels, {mpp}>"
        )


def _probe(slide: Slide) -> None:
    """Decode a pixel at the far corner of the coarsest and the finest level (truncation)."""
    for level in {slide.level_count - 1, 0}:
        width, height = slide.level_dimensions[level]
        slide.read_level(level, (width - 1, height - 1), (1, 1))


def _open_with(name: str, path: Path, mpp) -> Slide:
    backend = BACKENDS[name](path)
    try:
        slide = Slide(backend, mpp=mpp)
        _probe(slide)
    except BaseException:
        backend.close()
        raise
    return slide


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "reason", exc)).split()) or type(exc).__name__
    return text[:120]


def open_slide(path, backend: str = "auto", mpp=None) -> Slide:
    """Open a whole-slide image.

    ``backend``: "auto" (OpenSlide, then tiffslide), "openslide" or "tiffslide".
    ``mpp``: microns per pixel entered by the user; overrides or supplies the metadata's.
    Raises :class:`InputFileError` for missing, empty, damaged or non-slide files.
    """
    path = Path(path)
    if backend not in ("auto", *BACKENDS):
        raise Harm3Error(f"unknown slide backend {backend!r}; use 'auto', 'openslide' or 'tiffslide'")
    if mpp is not None:
        mpp = _checked_mpp(mpp)
    if not path.exists():
        raise InputFileError(path, "file not found")
    if not path.is_file():
        raise InputFileError(path, "is a folder, not a slide file (MRXS: open the .mrxs file)")
    if path.stat().st_size == 0:
        raise InputFileError(path, "empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if is_tiff_header(head):
        damage = tiff_damage(path)
        if damage:
            raise InputFileError(path, damage)

    names = list(BACKENDS) if backend == "auto" else [backend]
    failures: dict[str, BaseException] = {}
    for name in names:
        try:
            return _open_with(name, path, mpp)
        except NotASlideError:
            raise
        except Exception as exc:  # noqa: BLE001 - library errors become one readable line
            failures[name] = exc
    only = next(iter(failures.values()))
    if len(failures) == 1 and isinstance(only, InputFileError):
        raise only
    raise InputFileError(path, _failure_reason(path, failures))


def _failure_reason(path: Path, failures: dict[str, BaseException]) -> str:
    kind = describe_file_kind(path)
    details = "; ".join(f"{name}: {_one_line(exc)}" for name, exc in failures.items())
    if kind not in (None, "a TIFF file", DICOM_WSI_KIND):
        return f"not a whole-slide image: it looks like {kind} ({details})"
    return f"cannot read it as a whole-slide image, damaged or unsupported ({details})"
