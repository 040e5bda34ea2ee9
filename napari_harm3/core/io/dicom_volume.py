"""One stack of DICOM frames → a :class:`Volume`: geometry checks, slice order, rescale, metadata.

Frames are sorted by their ImagePositionPatient projected on the slice normal (the cross
product of the ImageOrientationPatient row and column directions), rescaled with their
RescaleSlope/RescaleIntercept (float32 when any is not 1/0), and checked for one grid: same
size, orientation and pixel spacing, and evenly spaced positions (a missing slice is an
error, not a silent gap). The classic series and every stack of an Enhanced file go through
the same code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .dicom_frames import Frame, Stack
from .dicom_pixels import is_lossy, syntax_name, transfer_syntax_of
from .mri import _REVERSE_XYZ, Volume

_SERIES_KEYWORDS = {
    "modality": "Modality",
    "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName",
    "magnetic_field_strength": "MagneticFieldStrength",
    "echo_time": "EchoTime",
    "repetition_time": "RepetitionTime",
    "slice_thickness": "SliceThickness",
    "series_number": "SeriesNumber",
    "sequence_name": "SequenceName",
    "study_instance_uid": "StudyInstanceUID",
}


def describe_series(ds, fallback: str) -> str:
    """SeriesDescription, else ProtocolName, else "series N", else ``fallback``."""
    for keyword in ("SeriesDescription", "ProtocolName"):
        text = str(ds.get(keyword, "") or "").strip()
        if text:
            return text
    number = ds.get("SeriesNumber")
    return f"series {number}" if number is not None else fallback


def _where(frame: Frame, multiframe: bool) -> str:
    name = Path(frame.file).name
    return f"frame {frame.index + 1} of {name}" if multiframe else name


def _checked_geometry(frames, source, multiframe: bool, label: str):
    """(orientation, pixel spacing) shared by ``frames``; raises one line naming the odd frame."""
    within = f" in {label}" if label else ""
    for frame in frames:
        for value, what in ((frame.orientation, "ImageOrientationPatient (Plane Orientation)"),
                            (frame.position, "ImagePositionPatient (Plane Position)"),
                            (frame.pixel_spacing, "PixelSpacing (Pixel Measures)")):
            if value is None:
                raise InputFileError(source, f"{_where(frame, multiframe)} lacks {what}; cannot place it in patient space")
    first = frames[0]
    for frame in frames[1:]:
        if (frame.rows, frame.columns) != (first.rows, first.columns):
            raise InputFileError(
                source, f"frames of different sizes{within} ({first.rows}×{first.columns} and {frame.rows}×{frame.columns} "
                f"in {_where(frame, multiframe)}); not one volume")
        if not np.allclose(frame.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise InputFileError(source, f"frames with different pixel spacing{within} ({_where(frame, multiframe)}); not one volume")
        if not np.allclose(frame.orientation, first.orientation, atol=1e-3):
            raise InputFileError(source, f"frames with different orientations{within} ({_where(frame, multiframe)}); not one volume")
    return np.array(first.orientation), np.array(first.pixel_spacing)


def _slice_step(positions, normal, first: Frame, source, label: str) -> np.ndarray:
    """The world vector from one slice to the next; checks even spacing."""
    if len(positions) == 1:
        return normal * float(first.slice_spacing or first.slice_thickness or 1.0)
    gaps = np.diff(positions @ normal)
    within = f" in {label}" if label else ""
    if np.any(gaps < 1e-3):
        raise InputFileError(
            source,
            f"several slices share one position{within} (multi-echo, dynamic or diffusion images that carry "
            "nothing to tell them apart?); split the series into one folder per echo/time point",
        )
    median = float(np.median(gaps))
    if np.max(np.abs(gaps - median)) > max(0.01, 0.02 * median):
        raise InputFileError(
            source, f"uneven slice spacing{within} ({gaps.min():.3g}–{gaps.max():.3g} mm): slices are missing or mixed"
        )
    return (positions[-1] - positions[0]) / (len(positions) - 1)


def _rescaled(frames, raw: np.ndarray) -> tuple[np.ndarray, bool]:
    if all((f.slope, f.intercept) == (1.0, 0.0) for f in frames):
        return raw, False
    slopes = np.array([f.slope for f in frames], np.float32)[:, None, None]
    intercepts = np.array([f.intercept for f in frames], np.float32)[:, None, None]
    return raw.astype(np.float32) * slopes + intercepts, True


def stack_volume(stack: Stack, pixels, ds, source, n_stacks: int = 1, multiframe: bool = False) -> Volume:
    """The :class:`Volume` of ``stack``; ``pixels[(file, index)]`` is each frame's decoded 2-D
    array and ``ds`` a dataset of the series (names, metadata)."""
    frames = list(stack.frames)
    orientation, pixel_spacing = _checked_geometry(frames, source, multiframe, stack.label)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array([f.position for f in frames])
    order = np.argsort(positions @ normal, kind="stable")
    frames, positions = [frames[i] for i in order], positions[order]
    step = _slice_step(positions, normal, frames[0], source, stack.label)
    matrix = np.column_stack([step, col_dir * pixel_spacing[0], row_dir * pixel_spacing[1]])
    affine_xyz = np.eye(4)
    affine_xyz[:3, :3] = matrix
    affine_xyz[:3, 3] = positions[0]
    data, rescaled = _rescaled(frames, np.stack([pixels[(f.file, f.index)] for f in frames]))
    name = describe_series(ds, fallback=Path(frames[0].file).parent.name)
    description = str(ds.get("SeriesDescription", "") or "")
    if stack.label:
        name, description = f"{name} — {stack.label}", f"{description or name} — {stack.label}"
    return Volume(
        data=data,
        affine=_REVERSE_XYZ @ affine_xyz,  # world (x, y, z) -> (z, y, x); index already (k, j, i)
        name=name,
        source=str(source),
        description=description,
        series_uid=str(ds.get("SeriesInstanceUID", "")) or None,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or None,
        metadata=series_metadata(ds, stack, frames, rescaled, n_stacks, multiframe),
    )


def window_presets(frames) -> tuple[dict, ...]:
    """The DICOM's own display windows (centre, width, explanation), most frequent first, ties
    in order of distance from the middle slice (scanners often store one window per slice; the
    middle one suits the volume best). In the volume's values: DICOM applies VOI after the
    modality rescale, as the volume is stored."""
    middle = (len(frames) - 1) / 2
    from_middle = sorted(range(len(frames)), key=lambda i: (abs(i - middle), i))
    counts = Counter(w for i in from_middle for w in frames[i].windows)
    return tuple({"center": c, "width": w, "explanation": e} for (c, w, e), _ in counts.most_common())


def _shared_value(ds, sequence: str, keyword: str):
    shared = ds.get("SharedFunctionalGroupsSequence", None)
    inner = shared[0].get(sequence) if shared else None
    return inner[0].get(keyword) if inner else None


def series_metadata(ds, stack: Stack, frames, rescaled: bool, n_stacks: int, multiframe: bool) -> dict:
    """What later views need: acquisition facts, windows, transfer syntax, frames and stacks."""
    syntax = transfer_syntax_of(ds)
    files = stack.files
    metadata = {
        "format": "DICOM",
        "n_files": len(files),
        "n_frames": len(frames),
        "rescaled": rescaled,
        "transfer_syntax": syntax_name(syntax),
        "transfer_syntax_uid": str(syntax),
        "lossy_compression": is_lossy(syntax) or str(ds.get("LossyImageCompression", "") or "") == "01",
        "multiframe": multiframe,
        "n_stacks": n_stacks,
        "window_presets": window_presets(frames),
    }
    if n_stacks > 1:
        metadata.update(stack=stack.number, stack_label=stack.label)
    for key, keyword in _SERIES_KEYWORDS.items():
        value = ds.get(keyword)
        if value not in (None, ""):
            metadata[key] = value if isinstance(value, str) else _plain(value)
    if frames[0].echo_time is not None:
        metadata["echo_time"] = frames[0].echo_time
    if "slice_thickness" not in metadata and frames[0].slice_thickness is not None:
        metadata["slice_thickness"] = frames[0].slice_thickness
    if "repetition_time" not in metadata:
        tr = _shared_value(ds, "MRTimingAndRelatedParametersSequence", "RepetitionTime")
        if tr not in (None, ""):
            metadata["repetition_time"] = _plain(tr)
    sop = ds.get("SOPClassUID")
    if sop:
        metadata["sop_class"] = getattr(sop, "name", str(sop))
    return metadata


def _plain(value):
    try:
        return float(value) if not isinstance(value, int) else int(value)
    except (TypeError, ValueError):
        return str(value)
