"""Display windows (contrast limits) for MRI volumes. Pure numpy.

MRI intensities have no absolute unit, so windows come from the image's own histogram.
Much of a scan is dark background (air), which drags any percentile towards 0; the rules
therefore look only at **foreground** voxels: those brighter than
``p2 + 10 % × (p98 − p2)`` of all finite voxels (the background/object threshold of FSL's
brain extraction tool, BET: Smith 2002). Otsu's threshold is *not* used: on MRI it tends to
split fat from all other tissue, which would render muscle black.

* ``auto``: the 1st-99th percentiles of the foreground (a few hot voxels do not wash out
  the image; nearly all tissue keeps its contrast).
* ``soft tissue``: the 5th-95th percentiles of the foreground, a narrower window that
  stretches muscle / fat / tumour contrast at the cost of saturating the brightest
  (fat, fluid, vessels) and darkest tissue.
* ``full range``: the finite minimum and maximum.
* the DICOM's own windows (WindowCenter / WindowWidth, read into the volume's metadata as
  ``window_presets``), named ``DICOM: <explanation>`` (or ``DICOM: C <centre> W <width>``), in
  the volume's values, with DICOM's linear VOI edges (PS3.3 C.11.2.1.2):
  ``centre − 0.5 ∓ (width − 1) / 2``.

Every function returns ``(low, high)`` floats with ``low < high``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: the most voxels a window looks at; larger volumes are subsampled with a regular stride
MAX_SAMPLES = 2_000_000


def _finite_sample(data) -> np.ndarray:
    flat = np.asarray(data).ravel()
    if flat.size > MAX_SAMPLES:
        flat = flat[:: int(np.ceil(flat.size / MAX_SAMPLES))]
    flat = flat.astype(np.float64, copy=False)
    return flat[np.isfinite(flat)]


def background_threshold(values: np.ndarray) -> float:
    """``p2 + 0.1 * (p98 - p2)`` of ``values`` (FSL BET's background threshold)."""
    p2, p98 = np.percentile(values, [2.0, 98.0])
    return float(p2 + 0.1 * (p98 - p2))


def foreground_values(data) -> np.ndarray:
    """Finite voxel values above :func:`background_threshold` (all finite values when that
    leaves fewer than 1 % of them)."""
    values = _finite_sample(data)
    if values.size == 0:
        return values
    foreground = values[values > background_threshold(values)]
    return foreground if foreground.size >= max(1, values.size // 100) else values


def _ordered(low: float, high: float) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not high > low:
        high = low + 1.0
    return low, high


def percentile_window(data, lower: float, upper: float) -> tuple[float, float]:
    """(low, high) = the ``lower`` and ``upper`` percentiles of the foreground voxels."""
    values = foreground_values(data)
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [lower, upper])
    return _ordered(low, high)


def auto_window(data) -> tuple[float, float]:
    """Default window: 1st-99th percentiles of the foreground (see module docstring)."""
    return percentile_window(data, 1.0, 99.0)


def soft_tissue_window(data) -> tuple[float, float]:
    """Soft-tissue window: 5th-95th percentiles of the foreground, for muscle/fat/tumour contrast."""
    return percentile_window(data, 5.0, 95.0)


def full_range_window(data) -> tuple[float, float]:
    """The finite minimum and maximum (of every voxel, not a sample)."""
    values = np.asarray(data)
    if np.issubdtype(values.dtype, np.floating):
        values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    return _ordered(values.min(), values.max())


#: preset name -> function(data) -> (low, high)
WINDOW_PRESETS: dict[str, Callable[[np.ndarray], tuple[float, float]]] = {
    "auto": auto_window,
    "soft tissue": soft_tissue_window,
    "full range": full_range_window,
}


DICOM_PREFIX = "DICOM: "


def dicom_windows(metadata) -> dict[str, tuple[float, float]]:
    """{preset name: (low, high)} of the DICOM's own windows in ``metadata["window_presets"]``
    (``{"center", "width", "explanation"}`` dicts; none for NIfTI or a DICOM without them)."""
    out: dict[str, tuple[float, float]] = {}
    for item in (metadata or {}).get("window_presets", ()) or ():
        try:
            centre, width = float(item["center"]), float(item["width"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (np.isfinite(centre) and np.isfinite(width) and width > 0):
            continue
        explanation = str(item.get("explanation", "") or "").strip()
        name = DICOM_PREFIX + (explanation or f"C {centre:g} W {width:g}")
        if name in out:
            name = f"{name} (C {centre:g} W {width:g})"
        half = (width - 1.0) / 2.0
        out.setdefault(name, _ordered(centre - 0.5 - half, centre - 0.5 + half))
    return out


def window_preset_names(metadata=None) -> list[str]:
    """The histogram presets, then the volume's own DICOM windows."""
    return list(WINDOW_PRESETS) + list(dicom_windows(metadata))


def window_limits(preset: str, data, metadata=None) -> tuple[float, float]:
    """(low, high) of window ``preset`` for ``data`` (a histogram rule or one of the DICOM's own)."""
    if preset in WINDOW_PRESETS:
        low, high = WINDOW_PRESETS[preset](data)
        return float(low), float(high)
    own = dicom_windows(metadata)
    if preset in own:
        return own[preset]
    raise ValueError(f"unknown window preset {preset!r}; choose one of {', '.join(window_preset_names(metadata))}")
