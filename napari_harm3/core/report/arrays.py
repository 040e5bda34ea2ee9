"""Arrays inside a report's JSON: a small, PNG-ready copy plus a summary of the original."""

from __future__ import annotations

import warnings

import numpy as np

#: longest side of a 2D map or image written into the JSON (keeps a report's JSON < ~1 MB)
JSON_MAX_SIDE = 64


def downsample(array: np.ndarray, max_side: int = JSON_MAX_SIDE) -> np.ndarray:
    """Shrink a 2D (H, W) or (H, W, C) array by block averaging so its longest side <= max_side.

    NaN (no data, e.g. slide background without patches) stays NaN only where a whole block is NaN.
    """
    array = np.asarray(array)
    height, width = array.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / max_side)))
    if step == 1:
        return array.astype(np.float64)
    rows, cols = int(np.ceil(height / step)), int(np.ceil(width / step))
    padded = np.full((rows * step, cols * step) + array.shape[2:], np.nan)
    padded[:height, :width] = array
    blocks = padded.reshape(rows, step, cols, step, *array.shape[2:])
    with np.errstate(invalid="ignore"), _quiet_empty_mean():
        return np.nanmean(blocks, axis=(1, 3))


class _quiet_empty_mean:
    """Silence numpy's 'Mean of empty slice' warning (all-NaN blocks stay NaN on purpose)."""

    def __enter__(self):
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def array_to_json(array: np.ndarray | None, max_side: int = JSON_MAX_SIDE, decimals: int = 3) -> dict | None:
    """``{"shape", "dtype", "min", "max", "preview_shape", "preview"}`` for a 2D map or RGB image.

    ``preview`` is the block-averaged copy as nested lists (NaN → ``null``); uint8 images stay
    integers 0–255, floats are rounded to ``decimals``.
    """
    if array is None:
        return None
    array = np.asarray(array)
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array.ravel()
    small = downsample(array, max_side)
    if array.dtype == np.uint8 or array.dtype == bool:
        preview = np.where(np.isfinite(small), np.rint(small), np.nan)
        values = _nested(preview, decimals=0)
    else:
        values = _nested(np.round(small, decimals), decimals=decimals)
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "min": _number(finite.min()) if finite.size else None,
        "max": _number(finite.max()) if finite.size else None,
        "preview_shape": list(small.shape),
        "preview": values,
    }


def _number(value):
    value = value.item() if hasattr(value, "item") else value
    return bool(value) if isinstance(value, (bool, np.bool_)) else value


def _nested(array: np.ndarray, decimals: int):
    """Nested lists with ``None`` for NaN (JSON has no NaN); ints when ``decimals == 0``."""
    finite = np.isfinite(array)
    values = np.where(finite, array, 0.0)
    objects = (values.astype(np.int64) if decimals == 0 else values).astype(object)
    objects[~finite] = None
    return objects.tolist()
