"""DICOM image series: list the series in a folder and read one as a :class:`Volume`.

Listing reads headers only (``stop_before_pixels``); reading decodes each slice's pixels once.
Slices are sorted by their ImagePositionPatient projected on the slice normal (the cross
product of the ImageOrientationPatient row and column directions), rescaled with
RescaleSlope/RescaleIntercept, and checked for one grid: same orientation, size and pixel
spacing, and evenly spaced positions (a missing slice is an error, not a silent gap).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .mri import RTSTRUCT_SOP_CLASS, VOLUME_MODALITIES, WSI_SOP_CLASS, Volume, _REVERSE_XYZ

# Every tag that listing and the kind test need (SOP class, modality, series UID and
# description, frame of reference, Rows, Columns) comes before (0028,0011): stopping there
# skips big RTSTRUCT contour sequences, private blocks and pixel data.
_LAST_HEADER_TAG = 0x00280011


def _read_header(path):
    """The DICOM header up to Columns (0028,0011); raises on foreign files."""
    from pydicom.filereader import read_partial

    with open(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd-but-readable headers (VR mismatches) are common
        return read_partial(handle, stop_when=lambda tag, vr, length: tag > _LAST_HEADER_TAG)


@dataclass(frozen=True)
class DicomSeriesInfo:
    """One DICOM series found in a folder (from headers only)."""

    uid: str
    description: str
    modality: str
    n_files: int
    folder: str
    files: tuple[str, ...] = field(default=(), repr=False)
    kind: str = "volume"  # "volume", "rtstruct", "slide" or "other"
    sop_class_uid: str = ""
    frame_of_reference_uid: str | None = None
    series_number: int | None = None


def is_dicom_file(path) -> bool:
    """True when the file carries the DICOM preamble marker ``DICM`` at byte 128. Never raises."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def _kind_of(ds) -> str:
    sop = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", "")).upper()
    if sop == WSI_SOP_CLASS or modality == "SM":
        return "slide"
    if sop == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":
        return "rtstruct"
    if modality in VOLUME_MODALITIES and "Rows" in ds:
        return "volume"
    return "other"


def dicom_file_kind(path) -> str | None:
    """``"volume"``, ``"rtstruct"``, ``"slide"``, ``"other"`` for a DICOM file, None otherwise.

    Parses the header only up to (0028,0011), so big contour sequences and pixel data are
    never read. Never raises.
    """
    if not is_dicom_file(path):
        return None
    try:
        ds = _read_header(path)
    except Exception:
        return None
    return _kind_of(ds)


def _scan_headers(folder: Path, recursive: bool):
    files = folder.rglob("*") if recursive else folder.iterdir()
    for path in sorted(files):
        if not path.is_file() or path.name.startswith(".") or not is_dicom_file(path):
            continue
        try:
            yield path, _read_header(path)
        except Exception:  # a damaged file is skipped when listing; reading reports it
            continue


def _one_file_per_instance(members):
    """Drop files repeating a SOPInstanceUID (one image saved in several encodings); the
    first file (by name) of each instance stays."""
    seen, kept = set(), []
    for path, ds in members:
        instance = str(ds.get("SOPInstanceUID", "") or path)
        if instance not in seen:
            seen.add(instance)
            kept.append((path, ds))
    return kept


def _describe(ds, fallback: str) -> str:
    for keyword in ("SeriesDescription", "ProtocolName"):
        text = str(ds.get(keyword, "") or "").strip()
        if text:
            return text
    number = ds.get("SeriesNumber")
    return f"series {number}" if number is not None else fallback


def list_dicom_series(folder, recursive: bool = False) -> list[DicomSeriesInfo]:
    """The DICOM series in ``folder`` (sub-folders too when ``recursive``), told apart by
    SeriesInstanceUID, sorted by series number then description. Headers only."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "not a folder; pass the folder holding the DICOM slices")
    groups: dict[str, list] = {}
    for path, ds in _scan_headers(folder, recursive):
        uid = str(ds.get("SeriesInstanceUID", "") or f"(no SeriesInstanceUID) {path.parent}")
        groups.setdefault(uid, []).append((path, ds))
    infos = []
    for uid, members in groups.items():
        members = _one_file_per_instance(members)
        first = members[0][1]
        number = first.get("SeriesNumber")
        parents = {str(p.parent) for p, _ in members}
        infos.append(
            DicomSeriesInfo(
                uid=uid,
                description=_describe(first, fallback=Path(members[0][0]).parent.name),
                modality=str(first.get("Modality", "")),
                n_files=len(members),
                folder=parents.pop() if len(parents) == 1 else str(folder),
                files=tuple(str(p) for p, _ in members),
                kind=_kind_of(first),
                sop_class_uid=str(first.get("SOPClassUID", "")),
                frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")) or None,
                series_number=int(number) if number not in (None, "") else None,
            )
        )
    return sorted(infos, key=lambda s: (s.series_number is None, s.series_number or 0, s.description))


def _series_list_text(infos) -> str:
    return "; ".join(f"{s.uid} ({s.description}, {s.modality}, {s.n_files} files)" for s in infos)


def read_dicom_series(folder, series_uid: str | None = None) -> Volume:
    """Read one image series of ``folder`` as a :class:`Volume`.

    ``series_uid`` picks the series; without it the folder must hold exactly one image series,
    otherwise the error lists them (uid and description) so the caller can choose.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputFileError(folder, "no such folder; check the path")
    infos = list_dicom_series(folder)
    if not infos:
        has_files = any(p.is_file() for p in folder.iterdir())
        reason = "holds no DICOM files" if has_files else "is empty"
        raise InputFileError(folder, f"{reason}; choose the folder that holds the series' .dcm slices")
    if series_uid is not None:
        chosen = [s for s in infos if s.uid == series_uid]
        if not chosen:
            raise InputFileError(folder, f"has no series {series_uid}; it holds: {_series_list_text(infos)}")
        return read_dicom_files(chosen[0].files, source=str(folder))
    images = [s for s in infos if s.kind == "volume"]
    if not images:
        raise InputFileError(folder, f"holds no MR/CT image series (found: {_series_list_text(infos)})")
    if len(images) > 1:
        raise InputFileError(
            folder, f"holds {len(images)} image series; choose one by SeriesInstanceUID: {_series_list_text(images)}"
        )
    return read_dicom_files(images[0].files, source=str(folder))


def read_dicom_file_series(path) -> Volume:
    """Read the whole series that the DICOM file ``path`` belongs to (from its folder)."""
    path = Path(path)
    try:
        ds = _read_header(path)
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from exc
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    instance = str(ds.get("SOPInstanceUID", "") or "")
    if uid:
        for info in list_dicom_series(path.parent):
            if info.uid == uid:
                # the chosen file stands for its instance, whatever other copies the folder has
                others = [f for f in info.files if _instance_of(f) != instance]
                return read_dicom_files([str(path)] + others, source=str(path))
    return read_dicom_files([str(path)], source=str(path))


def _instance_of(path) -> str:
    try:
        return str(_read_header(path).get("SOPInstanceUID", "") or path)
    except Exception:
        return str(path)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _float_list(ds, keyword, path, count):
    value = ds.get(keyword)
    if value is None or len(value) != count:
        raise InputFileError(path, f"lacks {keyword}; cannot place the slice in patient space")
    return np.array([float(v) for v in value])


def _read_slice(path: str):
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from exc
    if "PixelData" not in ds:
        raise InputFileError(path, "DICOM file has no pixel data (not an image slice); open the image series instead")
    if str(ds.get("SOPClassUID", "")) == WSI_SOP_CLASS:
        raise InputFileError(path, "is a whole-slide microscopy image, not an MRI slice; open it as a slide")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise InputFileError(path, "multi-frame (enhanced) DICOM is not supported yet; export the series as single-frame slices")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputFileError(path, "colour DICOM image; an MRI/CT slice must be grey-level")
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise InputFileError(path, f"pixel data cannot be decoded (transfer syntax {syntax}: {one_line(exc)})") from exc
    return ds, pixels


def _slice_geometry(ds, path):
    orientation = _float_list(ds, "ImageOrientationPatient", path, 6)
    position = _float_list(ds, "ImagePositionPatient", path, 3)
    spacing = ds.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise InputFileError(path, "lacks PixelSpacing; cannot size the voxels")
    return orientation, position, np.array([float(v) for v in spacing])


def read_dicom_files(files, source: str) -> Volume:
    """Read the given single-frame slices of one series into a :class:`Volume`."""
    files = [str(f) for f in files]
    if not files:
        raise InputFileError(source, "no DICOM slices to read")
    slices = [_read_slice(f) for f in files]
    first, first_pixels = slices[0]
    orientation, _, pixel_spacing = _slice_geometry(first, files[0])
    positions = []
    for (ds, pixels), path in zip(slices, files):
        o, p, s = _slice_geometry(ds, path)
        if not np.allclose(o, orientation, atol=1e-4):
            raise InputFileError(source, f"slices have different orientations ({Path(path).name}); not one volume")
        if pixels.shape != first_pixels.shape or not np.allclose(s, pixel_spacing, rtol=1e-4):
            raise InputFileError(source, f"slices have different sizes or pixel spacing ({Path(path).name}); not one volume")
        positions.append(p)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array(positions)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    step = _slice_step(positions, normal, first, source)
    matrix = np.column_stack([step, col_dir * pixel_spacing[0], row_dir * pixel_spacing[1]])
    affine_xyz = np.eye(4)
    affine_xyz[:3, :3] = matrix
    affine_xyz[:3, 3] = positions[0]
    data, rescaled = _stack_rescaled([slices[i] for i in order])
    return Volume(
        data=data,
        affine=_REVERSE_XYZ @ affine_xyz,  # world (x, y, z) -> (z, y, x); index already (k, j, i)
        name=_describe(first, fallback=Path(files[0]).parent.name),
        source=str(source),
        description=str(first.get("SeriesDescription", "") or ""),
        series_uid=str(first.get("SeriesInstanceUID", "")) or None,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")) or None,
        metadata=_series_metadata(first, len(files), rescaled),
    )


def _slice_step(positions, normal, first, source) -> np.ndarray:
    """The world vector from one slice to the next; checks even spacing."""
    if len(positions) == 1:
        thickness = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        return normal * float(thickness)
    gaps = np.diff(positions @ normal)
    if np.any(gaps < 1e-3):
        raise InputFileError(
            source,
            "several slices share one position (multi-echo, dynamic or diffusion series?); "
            "split it into one folder per echo/time point",
        )
    median = float(np.median(gaps))
    if np.max(np.abs(gaps - median)) > max(0.01, 0.02 * median):
        raise InputFileError(
            source, f"uneven slice spacing ({gaps.min():.3g}–{gaps.max():.3g} mm): slices are missing or mixed"
        )
    return (positions[-1] - positions[0]) / (len(positions) - 1)


def _stack_rescaled(slices) -> tuple[np.ndarray, bool]:
    """Stack pixel arrays, applying RescaleSlope/Intercept (float32 when they are not 1/0)."""
    params = [(float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)) for ds, _ in slices]
    raw = np.stack([pixels for _, pixels in slices])
    if all(p == (1.0, 0.0) for p in params):
        return raw, False
    slopes = np.array([p[0] for p in params], np.float32)[:, None, None]
    intercepts = np.array([p[1] for p in params], np.float32)[:, None, None]
    return raw.astype(np.float32) * slopes + intercepts, True


def _series_metadata(ds, n_files: int, rescaled: bool) -> dict:
    keywords = {
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
    metadata = {"format": "DICOM", "n_files": n_files, "rescaled": rescaled}
    for key, keyword in keywords.items():
        value = ds.get(keyword)
        if value not in (None, ""):
            metadata[key] = value if isinstance(value, str) else _plain(value)
    return metadata


def _plain(value):
    try:
        return float(value) if not isinstance(value, int) else int(value)
    except (TypeError, ValueError):
        return str(value)
