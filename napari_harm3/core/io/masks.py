"""Tumour masks: NIfTI label volumes and DICOM RTSTRUCT contours as :class:`LabelVolume`.

RTSTRUCT contours are world points (x, y, z) mm LPS. Each ROI is rasterised on the grid of a
reference image: points go to fractional voxel indices through the inverse of the reference
affine, every planar contour is filled on the slice it lies on, and the contours of one ROI
that lie on one plane combine even-odd, so a contour inside another is a hole. A voxel is
inside when its centre is. Overlapping ROIs share one label array: larger ROIs are painted
first, so a structure nested inside another (a mass inside its oedema) stays visible; use
:func:`rasterise_rtstruct` for each ROI's full, overlapping mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np
import pydicom

from ..errors import InputFileError
from .dicom_series import (
    dicom_file_kind,
    is_dicom_file,
    list_dicom_series,
    one_line,
    read_series,
)
from .mri import Volume, is_nifti_path, read_nifti

#: a NIfTI holding more distinct values than this is an image, not labels
MAX_LABELS = 255


@dataclass(frozen=True)
class LabelVolume(Volume):
    """A :class:`Volume` of integer labels (0 = background) with a name per label."""

    label_names: Mapping[int, str] = field(default_factory=dict)

    def labels(self) -> list[int]:
        """Label values present, background excluded."""
        return [int(v) for v in np.unique(self.data) if v != 0]

    def volume_ml(self, label: int) -> float:
        """Volume of ``label`` in millilitres."""
        return float(np.count_nonzero(self.data == label)) * self.voxel_volume_ml

    def centroid_world(self, label: int) -> np.ndarray:
        """World centroid (z, y, x) mm LPS of ``label``'s voxels (NaN when absent)."""
        index = np.argwhere(self.data == label)
        if len(index) == 0:
            return np.full(3, np.nan)
        return self.index_to_world(index.mean(axis=0)[None])[0]


def looks_like_labels(data: np.ndarray, max_labels: int = MAX_LABELS) -> bool:
    """True when ``data`` holds few distinct non-negative whole numbers (a label volume)."""
    if data.dtype == bool:
        return True
    if not np.issubdtype(data.dtype, np.number):
        return False
    if np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            return False
    values = np.unique(data)
    return len(values) <= max_labels + 1 and values.min() >= 0


def _smallest_label_dtype(max_value: int):
    for dtype in (np.uint8, np.uint16, np.int32):
        if max_value <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def read_label_volume(path) -> LabelVolume:
    """Read a NIfTI label volume (integer labels, 0 = background)."""
    volume = read_nifti(path)
    if not looks_like_labels(volume.data):
        raise InputFileError(
            path, f"not a label volume: voxels are not a few non-negative whole numbers (≤ {MAX_LABELS} labels); open it as an image"
        )
    data = volume.data.astype(_smallest_label_dtype(int(volume.data.max(initial=0))), copy=False)
    values = [int(v) for v in np.unique(data) if v != 0]
    names = {v: ("mask" if len(values) == 1 else f"label {v}") for v in values}
    return LabelVolume(
        data=np.ascontiguousarray(data),
        affine=volume.affine,
        name=volume.name,
        source=volume.source,
        description=volume.description,
        metadata={**volume.metadata, "kind": "labels"},
        label_names=names,
    )


# ---------------------------------------------------------------- RTSTRUCT


def _find_rtstruct_file(path: Path) -> Path:
    if path.is_file():
        kind = dicom_file_kind(path)
        if kind != "rtstruct":
            raise InputFileError(path, "not a DICOM RTSTRUCT file (no contour structure set)")
        return path
    if path.is_dir():
        found = [f for f in sorted(path.iterdir()) if f.is_file() and dicom_file_kind(f) == "rtstruct"]
        if len(found) == 1:
            return found[0]
        if not found:
            raise InputFileError(path, "holds no DICOM RTSTRUCT file")
        raise InputFileError(path, f"holds {len(found)} RTSTRUCT files; open one of them: {', '.join(f.name for f in found)}")
    raise InputFileError(path, "no such file or folder; check the path")


def read_rtstruct_dataset(path: Path):
    """The RTSTRUCT file's pydicom dataset (contours are parsed lazily)."""

    try:
        return pydicom.dcmread(str(path))
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from exc


def referenced_series_uids(ds) -> list[str]:
    """SeriesInstanceUIDs of the image series an RTSTRUCT was drawn on."""
    uids = []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = str(series.get("SeriesInstanceUID", "") or "")
                if uid and uid not in uids:
                    uids.append(uid)
    return uids


def find_reference_series(rtstruct_path) -> Volume:
    """Find and read the image series an RTSTRUCT refers to, searching the RTSTRUCT's folder,
    its parent and the parent's other sub-folders."""
    path = _find_rtstruct_file(Path(rtstruct_path))
    return _find_reference(path, read_rtstruct_dataset(path))


def _find_reference(path: Path, ds) -> Volume:
    wanted = referenced_series_uids(ds)
    if not wanted:
        raise InputFileError(path, "names no referenced image series; open the image first and pass it as the reference")
    folder = path.parent
    candidates = [folder, folder.parent] + [d for d in sorted(folder.parent.iterdir()) if d.is_dir() and d != folder]
    for candidate in candidates:
        for info in list_dicom_series(candidate):
            if info.uid in wanted and info.kind == "volume":
                return read_series(info)
    raise InputFileError(
        path,
        f"its image series {wanted[0]} was not found in {folder}, its parent or sibling folders; "
        "put the series next to it or open the image and pass it as the reference",
    )


def _contour_points(contour) -> np.ndarray:
    """ContourData as (N, 3) world (x, y, z); parses the raw text directly (pydicom's
    per-value conversion is ~40x slower on large structure sets)."""
    element = contour.get_item(0x30060050)
    value = getattr(element, "value", None)
    if isinstance(value, (bytes, bytearray)):
        numbers = np.array(value.decode("ascii").strip(" \\0").split("\\"), dtype=float)
    else:
        numbers = np.asarray([float(v) for v in contour.ContourData], dtype=float)
    return numbers.reshape(-1, 3)


def _contours_by_roi(ds, path) -> dict[int, tuple[str, list[np.ndarray], tuple | None]]:
    names = {int(r.ROINumber): str(r.get("ROIName", f"ROI {r.ROINumber}")) for r in ds.get("StructureSetROISequence", [])}
    rois = {}
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        contours = []
        for contour in roi.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper() != "CLOSED_PLANAR":
                continue
            points = _contour_points(contour)
            if len(points) >= 3:
                contours.append(points)
        colour = roi.get("ROIDisplayColor")
        colour = tuple(int(c) for c in colour) if colour is not None and len(colour) == 3 else None
        rois[number] = (names.get(number, f"ROI {number}"), contours, colour)
    if not names:
        raise InputFileError(path, "RTSTRUCT lists no ROIs (empty StructureSetROISequence)")
    for number, name in names.items():
        rois.setdefault(number, (name, [], None))
    return dict(sorted(rois.items()))


def fill_polygons_even_odd(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Fill (row, column) polygons on a 2-D grid with the even-odd rule (pixel centres).

    The polygons are filled together, so one inside another makes a hole.
    """
    mask = np.zeros(shape, dtype=bool)
    edges = []
    for polygon in polygons:
        p = np.asarray(polygon, float)
        edges.append(np.column_stack([p, np.roll(p, -1, axis=0)]))  # r0, c0, r1, c1
    if not edges:
        return mask
    e = np.concatenate(edges)
    e = e[e[:, 0] != e[:, 2]]  # horizontal edges never cross a row centre line
    if len(e) == 0:
        return mask
    rows = np.arange(max(0, int(np.ceil(e[:, [0, 2]].min()))), min(shape[0] - 1, int(np.floor(e[:, [0, 2]].max()))) + 1)
    if len(rows) == 0:
        return mask
    r0, c0, r1, c1 = (e[:, n][None, :] for n in range(4))
    y = rows[:, None].astype(float)
    crosses = (r0 <= y) != (r1 <= y)  # half-open: each vertex counted once
    t = np.where(crosses, (y - r0) / np.where(r1 == r0, 1, r1 - r0), 0)
    xs = np.where(crosses, c0 + t * (c1 - c0), np.inf)
    xs.sort(axis=1)  # crossings of each row, left to right; inf pads the unused slots
    if xs.shape[1] % 2:
        xs = np.column_stack([xs, np.full(len(rows), np.inf)])
    enter, leave = xs[:, 0::2], xs[:, 1::2]  # even-odd: inside between crossing 2m and 2m+1
    valid = np.isfinite(leave)
    starts = np.clip(np.ceil(enter[valid]), 0, shape[1]).astype(int)
    stops = np.clip(np.floor(leave[valid]) + 1, 0, shape[1]).astype(int)
    row_of = np.broadcast_to(np.arange(len(rows))[:, None], valid.shape)[valid]
    keep = stops > starts
    change = np.zeros((len(rows), shape[1] + 1), dtype=np.int32)
    np.add.at(change, (row_of[keep], starts[keep]), 1)
    np.add.at(change, (row_of[keep], stops[keep]), -1)
    mask[rows] = np.cumsum(change[:, :-1], axis=1) > 0
    return mask


def _frame_of_reference_uid(ds) -> str:
    frames = ds.get("ReferencedFrameOfReferenceSequence") or []
    return str(frames[0].get("FrameOfReferenceUID", "") or "") if len(frames) else ""


def rasterise_contours(contours, reference: Volume) -> tuple[np.ndarray, int]:
    """Rasterise one ROI's closed planar contours (world x, y, z mm LPS) on ``reference``'s grid.

    Returns the boolean mask and how many contours fell outside the grid.
    """
    mask = np.zeros(reference.shape, dtype=bool)
    planes: dict[tuple[int, float], list[np.ndarray]] = {}
    outside = 0
    for points in contours:
        index = reference.world_to_index(points[:, ::-1])  # (x, y, z) -> (z, y, x) -> (k, j, i)
        k_exact = float(index[:, 0].mean())
        k = int(np.round(k_exact))
        if not 0 <= k < reference.shape[0]:
            outside += 1
            continue
        # contours of one source plane combine even-odd; planes sharing a slice are OR-ed
        planes.setdefault((k, round(k_exact, 2)), []).append(index[:, 1:])
    for (k, _), polygons in planes.items():
        mask[k] |= fill_polygons_even_odd(polygons, reference.shape[1:])
    return mask, outside


def rasterise_rtstruct(path, reference: Volume | None = None) -> tuple[dict[str, np.ndarray], Volume, object]:
    """Each ROI's mask on the reference grid: ``({ROI name: bool mask}, reference, details)``
    where details = (RTSTRUCT file, dataset, {ROI name: display colour}, contours off the grid)."""
    path = _find_rtstruct_file(Path(path))
    ds = read_rtstruct_dataset(path)
    if reference is None:
        reference = _find_reference(path, ds)
    rt_frame = _frame_of_reference_uid(ds)
    if rt_frame and reference.frame_of_reference_uid and rt_frame != reference.frame_of_reference_uid:
        raise InputFileError(
            path, f"its contours use frame of reference {rt_frame}, the reference image {reference.frame_of_reference_uid}; choose an image of the same study"
        )
    masks, colours, total, outside = {}, {}, 0, 0
    for _, (name, contours, colour) in _contours_by_roi(ds, path).items():
        masks[name], dropped = rasterise_contours(contours, reference)
        colours[name] = colour
        total += len(contours)
        outside += dropped
    if total and outside == total:
        raise InputFileError(path, "no contour falls inside the reference image; choose the image series it was drawn on")
    return masks, reference, (path, ds, colours, outside)


def read_rtstruct(path, reference: Volume | None = None) -> LabelVolume:
    """Rasterise an RTSTRUCT's ROIs into one :class:`LabelVolume` on ``reference``'s grid.

    Without ``reference`` the referenced image series is found next to the RTSTRUCT. Labels
    are 1..N in StructureSetROISequence order; larger ROIs are painted first.
    """
    masks, reference, (source_file, ds, colours, outside) = rasterise_rtstruct(path, reference)
    names = list(masks)
    data = np.zeros(reference.shape, dtype=_smallest_label_dtype(len(names)))
    for label in sorted(range(1, len(names) + 1), key=lambda n: -int(masks[names[n - 1]].sum())):
        data[masks[names[label - 1]]] = label
    label_names = {n + 1: name for n, name in enumerate(names)}
    return LabelVolume(
        data=data,
        affine=reference.affine.copy(),
        name=str(ds.get("StructureSetLabel", "") or source_file.stem),
        source=str(source_file),
        description=str(ds.get("SeriesDescription", "") or ""),
        series_uid=str(ds.get("SeriesInstanceUID", "")) or None,
        frame_of_reference_uid=reference.frame_of_reference_uid,
        metadata={
            "format": "DICOM RTSTRUCT",
            "kind": "labels",
            "reference_series_uid": reference.series_uid,
            "reference_source": reference.source,
            "label_colors": {n + 1: colours[name] for n, name in enumerate(names) if colours[name] is not None},
            "roi_volumes_ml": {name: float(m.sum()) * reference.voxel_volume_ml for name, m in masks.items()},
            "contours_outside_grid": outside,
        },
        label_names=label_names,
    )


def is_mask_path(path) -> bool:
    """Cheap check: an RTSTRUCT file/folder, or a NIfTI whose header stores integers. Never raises."""
    try:
        path = Path(path)
        if path.is_dir():
            return any(f.is_file() and dicom_file_kind(f) == "rtstruct" for f in sorted(path.iterdir())[:64])
        if is_nifti_path(path):
            return _nifti_header_is_integer(path)
        return is_dicom_file(path) and dicom_file_kind(path) == "rtstruct"
    except Exception:
        return False


def _nifti_header_is_integer(path: Path) -> bool:

    image = nib.load(str(path))
    slope, inter = image.header.get_slope_inter()
    return np.issubdtype(image.get_data_dtype(), np.integer) and slope in (None, 1.0) and inter in (None, 0.0)


def read_mask(path, reference: Volume | None = None) -> LabelVolume:
    """Read a tumour mask: a NIfTI label volume, or an RTSTRUCT file/folder (on ``reference``)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder; check the path")
    if path.is_file() and is_nifti_path(path):
        return read_label_volume(path)
    return read_rtstruct(path, reference=reference)
