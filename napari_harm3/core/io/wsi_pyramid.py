"""Lazy pyramid levels for napari: one region read per slice request.

napari shows a multiscale image by slicing ``layer.data[level][rows, cols]`` for the part of
the canvas in view and converting the result with ``np.asarray``. :class:`SlideLevelArray`
answers such a slice with exactly **one** ``read_region`` call on the slide (OpenSlide or
tiffslide decode and cache the tiles), instead of a graph of many small dask tasks. Nothing
is held in memory between requests, so memory does not grow with slide size
(``benchmarks/bench_slide_viewing.py`` measures the alternatives) — except the small overview
levels that :func:`hold_overview` reads once, off the GUI thread, when a case opens: napari
shows a whole slide from one of them, and reading it in the first draw froze the window for
0.3–0.5 s on every case open (issue 15). They are at most ``HOLD_PIXELS`` each, so what is
held is bounded whatever the slide's size.
"""

from __future__ import annotations

import numbers

import numpy as np

#: ``np.asarray(level)`` on anything larger refuses, instead of decoding gigapixels.
MAX_FULL_READ_PIXELS = 256 * 1024 * 1024
#: levels up to this many pixels are held in memory by :func:`hold_overview` (12 MB each)
HOLD_PIXELS = 4 * 1024 * 1024


def _axis_range(index, length: int, axis: str):
    """(start, stop, step, keep_axis) of one index on an axis of ``length``."""
    if isinstance(index, slice):
        start, stop, step = index.indices(length)
        if step < 0:
            raise IndexError(f"negative steps are not supported on slide {axis}")
        return start, max(start, stop), step, True
    if isinstance(index, numbers.Integral):
        position = int(index) + (length if index < 0 else 0)
        if not 0 <= position < length:
            raise IndexError(f"{axis} index {index} out of range for length {length}")
        return position, position + 1, 1, False
    raise IndexError(f"slide levels take integers and slices, not {type(index).__name__}")


def _normalise_key(key) -> tuple:
    """Expand ``key`` to exactly (rows, cols, channels)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (3 - (len(key) - 1))
        key = key[:at] + fill + key[at + 1 :]
    if len(key) > 3:
        raise IndexError(f"too many indices for a (rows, cols, 3) slide level: {len(key)}")
    return key + (slice(None),) * (3 - len(key))


class SlideLevelArray:
    """A read-only, array-like view of one pyramid level: shape (height, width, 3), uint8.

    Slicing reads the covering region once through the slide and then applies steps and the
    channel index in numpy. The object keeps only a reference to the open slide.
    """

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __init__(self, slide, level: int):
        self.slide = slide
        self.level = int(level)
        width, height = slide.level_dimensions[self.level]
        self.shape = (int(height), int(width), 3)
        self._held: np.ndarray | None = None

    def hold(self) -> None:
        """Read the whole level once and answer slices from memory from now on."""
        if self._held is None:
            held = self[:, :]
            held.setflags(write=False)
            self._held = held

    @property
    def held(self) -> bool:
        return self._held is not None

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1] * 3

    @property
    def nbytes(self) -> int:
        return self.size

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"SlideLevelArray({self.slide.path.name!r}, level={self.level}, shape={self.shape})"

    def __getitem__(self, key) -> np.ndarray:
        rows, cols, channels = _normalise_key(key)
        r0, r1, r_step, keep_rows = _axis_range(rows, self.shape[0], "row")
        c0, c1, c_step, keep_cols = _axis_range(cols, self.shape[1], "column")
        if self._held is not None:
            region = self._held[r0:r1, c0:c1]
        else:
            region = self.slide.read_level(self.level, (c0, r0), (c1 - c0, r1 - r0))
        region = region[:: r_step, :: c_step]
        if not keep_rows:
            region = region[0]
        if not keep_cols:
            region = region[:, 0] if keep_rows else region[0]
        return region[..., channels]

    def __array__(self, dtype=None, copy=None):
        height, width, _ = self.shape
        if height * width > MAX_FULL_READ_PIXELS:
            raise MemoryError(
                f"refusing to decode all of level {self.level} ({width}x{height} px) of "
                f"{self.slide.path.name}; slice a region instead"
            )
        pixels = self[:, :]
        return pixels if dtype is None else pixels.astype(dtype)


def hold_overview(levels, max_pixels: int = HOLD_PIXELS) -> int:
    """Hold in memory every level of ``levels`` (a :class:`SlideLevelArray` pyramid) of at most
    ``max_pixels``; returns how many. Call it off the GUI thread (a case reader's worker)."""
    count = 0
    for level in levels:
        if isinstance(level, SlideLevelArray) and level.shape[0] * level.shape[1] <= max_pixels:
            level.hold()
            count += 1
    return count
