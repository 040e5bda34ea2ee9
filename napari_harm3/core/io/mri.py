"""MRI volumes: the :class:`Volume` dataclass, NIfTI reading/writing, and format dispatch.

Coordinate convention (see docs/CONVENTIONS.md): ``data`` is indexed (k, j, i) = (slice, row,
column) and ``affine`` maps index (k, j, i, 1) to world (z, y, x, 1) in millimetres, in
**LPS** patient coordinates (DICOM's: x to the patient's left, y to posterior, z to superior).
The affine can be given to napari as a layer affine unchanged, so volumes of one patient
line up in world coordinates whatever their grids.

NIfTI files are stored in RAS with index order (i, j, k); :func:`read_nifti` flips x and y and
reverses both the index and the world axis order. DICOM series are read by
:mod:`napari_harm3.core.io.dicom_series` (re-exported here).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np

from ..atomic import atomic_path
from ..errors import InputFileError

NIFTI_SUFFIXES = (".nii", ".nii.gz")

#: SOP class of DICOM VL Whole Slide Microscopy images (slides, not MRI)
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
#: SOP class of DICOM RT Structure Sets (contours, not images)
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: DICOM modalities read as volumes
VOLUME_MODALITIES = frozenset({"MR", "CT", "PT", "NM"})

# index (i, j, k) <-> (k, j, i) and world (x, y, z) <-> (z, y, x): the same 4x4 permutation
_REVERSE_XYZ = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Volume:
    """A 3-D image on a grid placed in patient space.

    ``data`` is (nz, ny, nx) = (slice, row, column); ``affine`` maps (k, j, i, 1) to
    (z, y, x, 1) in mm, LPS patient coordinates.
    """

    data: np.ndarray
    affine: np.ndarray
    name: str
    source: str
    description: str = ""
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    metadata: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if np.ndim(self.data) != 3:
            raise ValueError(f"Volume data must be 3-D (slice, row, column), got shape {np.shape(self.data)}")
        if np.shape(self.affine) != (4, 4):
            raise ValueError(f"Volume affine must be 4x4, got shape {np.shape(self.affine)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nz, ny, nx)."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (dz, dy, dx) in mm: lengths of the affine's index columns."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm³)."""
        return abs(float(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def index_to_world(self, points) -> np.ndarray:
        """Map (N, 3) index points (k, j, i) to world (z, y, x) mm LPS."""
        points = np.asarray(points, dtype=float)
        return points @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, points) -> np.ndarray:
        """Map (N, 3) world points (z, y, x) mm LPS to fractional index (k, j, i)."""
        points = np.asarray(points, dtype=float)
        inverse = np.linalg.inv(self.affine)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) world (z, y, x) over the centres of the volume's 8 corner voxels."""
        nz, ny, nx = self.shape
        corners = np.array([[k, j, i] for k in (0, nz - 1) for j in (0, ny - 1) for i in (0, nx - 1)], float)
        world = self.index_to_world(corners)
        return world.min(axis=0), world.max(axis=0)

    def orientation_codes(self) -> str:
        """Patient direction of increasing (k, j, i), e.g. ``"SPL"`` for a plain axial LPS scan."""
        labels = {0: "SI", 1: "PA", 2: "LR"}  # world axis -> (positive, negative) letters
        codes = []
        for column in self.affine[:3, :3].T:
            axis = int(np.argmax(np.abs(column)))
            codes.append(labels[axis][0] if column[axis] > 0 else labels[axis][1])
        return "".join(codes)


def _has_suffix(path: Path, suffixes) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def is_nifti_path(path) -> bool:
    """True for names ending in .nii or .nii.gz (no reading)."""
    return _has_suffix(Path(path), NIFTI_SUFFIXES)


def nifti_affine_to_lps(ras_affine: np.ndarray) -> np.ndarray:
    """Convert a NIfTI affine ((i, j, k) -> RAS (x, y, z)) to ours ((k, j, i) -> LPS (z, y, x))."""
    return _REVERSE_XYZ @ _RAS_TO_LPS @ np.asarray(ras_affine, float) @ _REVERSE_XYZ


def lps_affine_to_nifti(affine: np.ndarray) -> np.ndarray:
    """Inverse of :func:`nifti_affine_to_lps`."""
    return _RAS_TO_LPS @ _REVERSE_XYZ @ np.asarray(affine, float) @ _REVERSE_XYZ


def _load_nifti(path: Path):
    if not path.is_file():
        raise InputFileError(path, "no such file; check the path")
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for foreign files
        raise InputFileError(path, f"not a readable NIfTI file ({_short(exc)}); check it is a .nii/.nii.gz image") from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputFileError(path, f"is a {type(image).__name__}, not a NIfTI image")
    return image


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def read_nifti(path) -> Volume:
    """Read a 3-D NIfTI image (RAS) as a :class:`Volume` in our LPS (z, y, x) convention.

    Scaling (scl_slope/inter) is applied by nibabel; a 4-D file with one volume is squeezed.
    """
    path = Path(path)
    image = _load_nifti(path)
    shape = image.shape
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) > 3 and int(np.prod(shape[3:])) != 1:
        raise InputFileError(path, f"is {len(shape)}-D with shape {shape}; only single 3-D volumes are supported (split the series first)")
    try:
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # truncated gzip, short file, bad dtype …
        raise InputFileError(path, f"image data cannot be read ({_short(exc)}); the file may be truncated or corrupt") from exc
    array = np.asarray(array).reshape(shape[:3])
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise InputFileError(path, f"unsupported voxel type {array.dtype}; expected a grey-level image")
    data = np.ascontiguousarray(array.transpose(2, 1, 0))
    header = image.header
    metadata = {
        "format": "NIfTI",
        "header_orientation": "".join(nib.aff2axcodes(image.affine)),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
    }
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        metadata["warning"] = "no orientation in the header: world position is a guess"
    description = header["descrip"].tobytes().split(b"\0")[0].decode("latin-1").strip()
    return Volume(
        data=data,
        affine=nifti_affine_to_lps(image.affine),
        name=_nifti_stem(path),
        source=str(path),
        description=description,
        metadata=metadata,
    )


def _nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def write_nifti(volume: Volume, path, overwrite: bool = False) -> Path:
    """Write ``volume`` as NIfTI (.nii or .nii.gz), atomically; :func:`read_nifti` reads it back
    with the same data and affine. Returns the path written."""
    path = Path(path)
    if not is_nifti_path(path):
        raise InputFileError(path, "output name must end in .nii or .nii.gz")
    ras_affine = lps_affine_to_nifti(volume.affine)
    data = np.asarray(volume.data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    image = nib.Nifti1Image(np.asfortranarray(data.transpose(2, 1, 0)), ras_affine)
    image.header.set_sform(ras_affine, code=1)  # scanner coordinates; authoritative on read
    try:
        image.header.set_qform(ras_affine, code=1)
    except Exception:  # sheared affine (gantry tilt): qform cannot hold it, the sform does
        image.header.set_qform(None, code=0)
    if volume.description:
        image.header["descrip"] = volume.description.encode("latin-1", "replace")[:79]
    payload = image.to_bytes()
    if path.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(payload)
    return path


def read_volume(path, series_uid: str | None = None) -> Volume:
    """Read an MRI volume from a NIfTI file, a DICOM file (its whole series) or a DICOM folder.

    ``series_uid`` is the series selector after ``#`` in a case manifest (``UID``, ``UID:N`` or
    ``:N``; see :mod:`napari_harm3.core.io.dicom_series`); it applies to DICOM only."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder; check the path")
    if path.is_file() and is_nifti_path(path):
        return read_nifti(path)
    if path.is_dir():
        return read_dicom_series(path, series_uid=series_uid)
    kind = dicom_file_kind(path)
    if kind == "volume":
        return read_dicom_file_series(path, series_uid=series_uid)
    if kind == "rtstruct":
        raise InputFileError(path, "is a DICOM RTSTRUCT (tumour contours), not an image; open it as a mask")
    if kind == "slide":
        raise InputFileError(path, "is a DICOM whole-slide microscopy image, not an MRI volume; open it as a slide")
    if kind == "other":
        return read_dicom_file_series(path, series_uid=series_uid)  # an unusual modality: reading says what is missing
    raise InputFileError(path, "not an MRI volume: expected a .nii/.nii.gz file, a DICOM file or a folder of DICOM slices")


def is_mri_path(path) -> bool:
    """Cheap check: a NIfTI file, or a DICOM image file/folder (MR, CT, PT, NM).

    False for whole-slide DICOM, RTSTRUCT and other non-volume DICOM, and for foreign files.
    Never raises.
    """
    try:
        path = Path(path)
        if path.is_file():
            if is_nifti_path(path):
                return True
            return dicom_file_kind(path) == "volume"
        if path.is_dir():
            return any(dicom_file_kind(f) == "volume" for f in _first_files(path, limit=64))
    except Exception:
        return False
    return False


def _first_files(folder: Path, limit: int):
    count = 0
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith("."):
            yield entry
            count += 1
            if count >= limit:
                return


# DICOM series reading lives in dicom_series.py, which imports Volume from here; these thin
# wrappers import it on first use so neither module needs the other at import time.
def list_dicom_series(folder, recursive: bool = False):
    """The DICOM series in ``folder``; see :func:`napari_harm3.core.io.dicom_series.list_dicom_series`."""
    from .dicom_series import (
        list_dicom_series as impl,  # lazy: import cycle (dicom_series imports Volume from here)
    )

    return impl(folder, recursive=recursive)


def read_dicom_series(folder, series_uid: str | None = None) -> Volume:
    """One image series of ``folder``; see :func:`napari_harm3.core.io.dicom_series.read_dicom_series`."""
    from .dicom_series import (
        read_dicom_series as impl,  # lazy: import cycle (dicom_series imports Volume from here)
    )

    return impl(folder, series_uid=series_uid)


def read_dicom_file_series(path, series_uid: str | None = None) -> Volume:
    """The series that DICOM file ``path`` belongs to; see :mod:`napari_harm3.core.io.dicom_series`."""
    from .dicom_series import (
        read_dicom_file_series as impl,  # lazy: import cycle (dicom_series imports Volume from here)
    )

    return impl(path, series_uid=series_uid)


def is_dicom_file(path) -> bool:
    """True for a file with the DICOM ``DICM`` marker. Never raises."""
    from .dicom_series import (
        is_dicom_file as impl,  # lazy: import cycle (dicom_series imports Volume from here)
    )

    return impl(path)


def dicom_file_kind(path) -> str | None:
    """``"volume"``, ``"rtstruct"``, ``"slide"``, ``"other"``, or None for non-DICOM. Never raises."""
    from .dicom_series import (
        dicom_file_kind as impl,  # lazy: import cycle (dicom_series imports Volume from here)
    )

    return impl(path)


def __getattr__(name):
    if name == "DicomSeriesInfo":
        from .dicom_series import (
            DicomSeriesInfo,  # lazy: import cycle (dicom_series imports Volume from here)
        )

        return DicomSeriesInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Volume",
    "DicomSeriesInfo",
    "read_nifti",
    "write_nifti",
    "read_volume",
    "is_mri_path",
    "is_nifti_path",
    "list_dicom_series",
    "read_dicom_series",
    "read_dicom_file_series",
    "nifti_affine_to_lps",
    "lps_affine_to_nifti",
]
