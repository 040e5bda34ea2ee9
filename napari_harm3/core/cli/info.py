"""``harm3 info PATH…`` — a readable summary of MRI volumes, DICOM folders, masks and slides.

* NIfTI image / DICOM image file: shape, spacing, orientation, world extent, description,
  intensity range and default display window.
* NIfTI label volume / RTSTRUCT: each label's name and volume in mL.
* Folder: the DICOM series it holds (sub-folders included).
* Whole-slide image: levels, microns per pixel, objective power, backend, associated images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Harm3Error, InputFileError


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
    from ..io.dicom_series import dicom_file_kind
    from ..io.mri import is_nifti_path

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder; check the path")
    if path.is_dir():
        return _describe_folder(path)
    if is_nifti_path(path):
        return _describe_nifti(path)
    kind = dicom_file_kind(path)
    if kind == "volume":
        from ..io.mri import read_volume

        return _describe_volume(read_volume(path), "MRI volume (DICOM series)")
    if kind == "rtstruct":
        return _describe_rtstruct(path)
    return _describe_slide(path)


def _fmt(values, digits: int = 3) -> str:
    return " × ".join(f"{v:.{digits}g}" for v in values)


def _describe_volume(volume, kind: str) -> list[str]:
    from ..mri.windowing import auto_window

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
    window = auto_window(data)
    lines.append(f"  intensity: {float(np.nanmin(data)):.4g} to {float(np.nanmax(data)):.4g}; auto window {window[0]:.4g} to {window[1]:.4g}")
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
    from ..io.masks import looks_like_labels, read_label_volume
    from ..io.mri import read_nifti

    volume = read_nifti(path)
    if np.issubdtype(volume.data.dtype, np.integer) and looks_like_labels(volume.data):
        return _describe_labels(read_label_volume(path), "label volume (NIfTI)")
    return _describe_volume(volume, "MRI volume (NIfTI)")


def _describe_rtstruct(path: Path) -> list[str]:
    from ..io.masks import read_rtstruct, read_rtstruct_dataset

    try:
        labels = read_rtstruct(path)
    except InputFileError as exc:  # contours without their image: list the ROIs only
        ds = read_rtstruct_dataset(path)
        names = [str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]
        return [f"{path}: RTSTRUCT", f"  ROIs: {', '.join(names) or 'none'}", f"  volumes unknown: {exc.reason}"]
    return _describe_labels(labels, "RTSTRUCT (rasterised on its image series)")


def _describe_folder(path: Path) -> list[str]:
    from ..io.mri import list_dicom_series

    series = list_dicom_series(path, recursive=True)
    if not series:
        raise InputFileError(path, "holds no DICOM series (nor does any sub-folder); choose a DICOM folder or a file")
    lines = [f"{path}: folder with {len(series)} DICOM series"]
    for info in series:
        where = Path(info.folder)
        relative = where.relative_to(path) if where != path and where.is_relative_to(path) else Path(".")
        lines.append(f"  [{info.modality or '?'}] {info.description} — {info.n_files} file{'s' if info.n_files != 1 else ''} in {relative}/")
        lines.append(f"      series {info.uid}")
    return lines


def _describe_slide(path: Path) -> list[str]:
    from ..io.dicom_series import one_line
    from ..io.wsi import open_slide

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
