"""``harm3 info PATH…`` — a readable summary of MRI volumes, DICOM folders, masks and slides.

* NIfTI image / DICOM image file: shape, spacing, orientation, world extent, description,
  intensity range and default display window; for DICOM also the transfer syntax, frames and
  the file's own window presets. A multi-frame file holding several volumes (stacks) lists
  them, each with the selector (``FILE#:N``) that picks it.
* NIfTI label volume / RTSTRUCT: each label's name and volume in mL.
* Folder: the DICOM series it holds (sub-folders included), their transfer syntax, and the
  volumes of series that hold several (``FOLDER#UID:N`` picks one).
* Whole-slide image: levels, microns per pixel, objective power, backend, associated images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Harm3Error, InputFileError, one_line
from ..io.dicom_pixels import undecodable_reason
from ..io.dicom_series import _read_header, dicom_file_kind, read_dicom_file_series
from ..io.masks import (
    looks_like_labels,
    read_label_volume,
    read_rtstruct,
    read_rtstruct_dataset,
)
from ..io.mri import is_nifti_path, list_dicom_series, read_nifti, read_volume
from ..io.wsi import open_slide
from ..mri.windowing import auto_window


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarise MRI volumes, DICOM folders, tumour masks and slides",
        description="Print a readable summary of each PATH (NIfTI, DICOM file or folder, RTSTRUCT, whole-slide image).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file or folder to describe")
    parser.set_defaults(handler=run)


def run(args) -> int:
    for number, path in enumerate(args.paths):
        if number:
            print()
        print("\n".join(describe(path)))
    return 0


def describe(path) -> list[str]:
    """Summary lines for one path; raises InputFileError for paths that cannot be read."""

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder; check the path")
    if path.is_dir():
        return _describe_folder(path)
    if is_nifti_path(path):
        return _describe_nifti(path)
    kind = dicom_file_kind(path)
    if kind == "volume":
        return _describe_dicom_file(path)
    if kind == "rtstruct":
        return _describe_rtstruct(path)
    return _describe_slide(path)


def _fmt(values, digits: int = 3) -> str:
    return " × ".join(f"{v:.{digits}g}" for v in values)


def _describe_volume(volume, kind: str) -> list[str]:

    low, high = volume.world_bounds()
    data = volume.data
    lines = [
        f"{volume.source}: {kind}",
        f"  name: {volume.name}",
        f"  shape (slices, rows, columns): {' × '.join(str(n) for n in volume.shape)}, {data.dtype}",
        f"  spacing (z, y, x): {_fmt(volume.spacing)} mm",
        f"  orientation: {volume.orientation_codes()} (direction of increasing slice, row, column; LPS world)",
        f"  world extent (z, y, x) mm: {_fmt(low, 4)} to {_fmt(high, 4)}",
    ]
    if volume.description:
        lines.append(f"  description: {volume.description}")
    if volume.series_uid:
        lines.append(f"  series: {volume.series_uid}")
    metadata = dict(volume.metadata)
    for key in ("modality", "manufacturer", "manufacturer_model", "echo_time", "repetition_time", "warning"):
        if key in metadata:
            lines.append(f"  {key.replace('_', ' ')}: {metadata[key]}")
    lines.extend(_dicom_lines(metadata))
    window = auto_window(data)
    lines.append(f"  intensity: {float(np.nanmin(data)):.4g} to {float(np.nanmax(data)):.4g}; auto window {window[0]:.4g} to {window[1]:.4g}")
    return lines


def _dicom_lines(metadata) -> list[str]:
    """Transfer syntax, frames/stacks and window presets of a DICOM volume's metadata."""
    if metadata.get("format") != "DICOM":
        return []
    lossy = " — lossy" if metadata.get("lossy_compression") else ""
    lines = [f"  transfer syntax: {metadata.get('transfer_syntax', '?')}{lossy}"]
    frames = f"  frames: {metadata.get('n_frames', '?')} in {metadata.get('n_files', '?')} file(s)"
    if metadata.get("multiframe"):
        frames += f", multi-frame ({metadata.get('sop_class', 'enhanced')})"
    if metadata.get("n_stacks", 1) > 1:
        frames += f"; volume {metadata.get('stack')} of {metadata['n_stacks']}: {metadata.get('stack_label', '')}"
    lines.append(frames)
    presets = metadata.get("window_presets") or ()
    if presets:
        shown = ", ".join(f"{p['center']:g}/{p['width']:g}" + (f" ({p['explanation']})" if p["explanation"] else "") for p in presets[:4])
        more = f" and {len(presets) - 4} more" if len(presets) > 4 else ""
        lines.append(f"  DICOM window presets (centre/width): {shown}{more}")
    return lines


def _describe_dicom_file(path: Path) -> list[str]:
    """One DICOM image file: its volume, or the list of volumes when the file holds several."""

    uid = str(_read_header(path).get("SeriesInstanceUID", "") or "")
    holding = [s for s in list_dicom_series(path.parent) if s.uid == uid and str(path) in s.files]
    if len(holding) < 2:
        return _describe_volume(read_volume(path), "MRI volume (DICOM series)")
    first = holding[0]
    lines = [
        f"{path}: DICOM file with {len(holding)} volumes (stacks) of series {first.uid}",
        f"  transfer syntax: {first.transfer_syntax}",
    ]
    for info in holding:
        volume = read_dicom_file_series(path, series_uid=f":{info.stack}")
        lines.append(f"  volume {info.stack} — {info.stack_label}: {' × '.join(str(n) for n in volume.shape)}, "
                     f"spacing {_fmt(volume.spacing)} mm, {volume.orientation_codes()} (select: {path}#:{info.stack})")
    return lines


def _describe_labels(labels, kind: str) -> list[str]:
    lines = [
        f"{labels.source}: {kind}",
        f"  grid (slices, rows, columns): {' × '.join(str(n) for n in labels.shape)}, spacing {_fmt(labels.spacing)} mm",
    ]
    present = set(labels.labels())
    roi_volumes = labels.metadata.get("roi_volumes_ml", {})  # RTSTRUCT: each ROI whole, overlaps included
    for label, name in sorted(labels.label_names.items()):
        painted = labels.volume_ml(label) if label in present else 0.0
        volume = roi_volumes.get(name, painted)
        note = f" ({painted:.2f} mL not covered by a smaller ROI)" if abs(volume - painted) > 1e-6 else ""
        lines.append(f"  label {label} {name!r}: {volume:.2f} mL{note}")
    reference = labels.metadata.get("reference_source")
    if reference:
        lines.append(f"  drawn on: {reference}")
    return lines


def _describe_nifti(path: Path) -> list[str]:

    volume = read_nifti(path)
    if np.issubdtype(volume.data.dtype, np.integer) and looks_like_labels(volume.data):
        return _describe_labels(read_label_volume(path), "label volume (NIfTI)")
    return _describe_volume(volume, "MRI volume (NIfTI)")


def _describe_rtstruct(path: Path) -> list[str]:

    try:
        labels = read_rtstruct(path)
    except InputFileError as exc:  # contours without their image: list the ROIs only
        ds = read_rtstruct_dataset(path)
        names = [str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]
        return [f"{path}: RTSTRUCT", f"  ROIs: {', '.join(names) or 'none'}", f"  volumes unknown: {exc.reason}"]
    return _describe_labels(labels, "RTSTRUCT (rasterised on its image series)")


def _describe_folder(path: Path) -> list[str]:

    series = list_dicom_series(path, recursive=True)
    if not series:
        raise InputFileError(path, "holds no DICOM series (nor does any sub-folder); choose a DICOM folder or a file")
    n_series = len({info.uid for info in series})
    volumes = f" ({len(series)} volumes)" if len(series) > n_series else ""
    lines = [f"{path}: folder with {n_series} DICOM series{volumes}"]
    for info in series:
        where = Path(info.folder)
        relative = where.relative_to(path) if where != path and where.is_relative_to(path) else Path(".")
        frames = f", {info.n_frames} frames" if info.n_frames != info.n_files and info.kind == "volume" else ""
        lines.append(f"  [{info.modality or '?'}] {info.description} — {info.n_files} file{'s' if info.n_files != 1 else ''}"
                     f"{frames} in {relative}/ ({_syntax_short(info.transfer_syntax)})")
        problem = undecodable_reason(info.transfer_syntax_uid) if info.kind == "volume" and info.transfer_syntax_uid else None
        if problem:
            lines.append(f"      cannot be read here: {problem}")
        if info.stack is None:
            lines.append(f"      series {info.uid}")
        else:
            lines.append(f"      series {info.uid}, volume {info.stack} of {info.n_stacks} (select: {relative}#{info.selector})")
    return lines


def _syntax_short(text: str) -> str:
    """The transfer syntax's name without its UID (the folder listing is wide enough)."""
    return text.rsplit(" (", 1)[0] if text else "?"


def _describe_slide(path: Path) -> list[str]:

    try:
        slide = open_slide(path)
    except Harm3Error:
        raise
    except Exception as exc:  # a foreign file the slide reader did not recognise cleanly
        raise InputFileError(path, f"not an MRI volume, mask, DICOM folder or slide ({one_line(exc)})") from exc
    try:
        levels = ", ".join(
            f"{w}×{h} (÷{d:.3g})" for (w, h), d in zip(slide.level_dimensions, slide.level_downsamples)
        )
        mpp = f"{slide.mpp:.4g} µm/px" if slide.mpp is not None else "unknown (not in the metadata)"
        power = f"{slide.objective_power:g}×" if slide.objective_power else "unknown"
        associated = ", ".join(sorted(slide.associated_images)) or "none"
        return [
            f"{path}: whole-slide image ({slide.backend}, vendor {slide.vendor or 'unknown'})",
            f"  levels ({len(slide.level_dimensions)}): {levels}",
            f"  microns per pixel: {mpp}",
            f"  objective power: {power}",
            f"  associated images: {associated}",
        ]
    finally:
        slide.close()
