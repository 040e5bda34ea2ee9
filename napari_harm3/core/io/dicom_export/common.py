"""What every exported object shares: the source series, new UIDs, the equipment, de-identification.

Conventions: our volumes' affines map index (k, j, i) to world (z, y, x) LPS mm
(``core/io/mri.py``); highdicom's map (slice, row, column) to (x, y, z) LPS mm, so
:func:`highdicom_affine` swaps the world axes. Source series are read as headers only
(no pixel data): the objects reference them, they never copy their pixels.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import highdicom
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from .... import __version__
from ...errors import Harm3Error, InputFileError
from ..dicom_series import is_dicom_file, list_dicom_series

#: swaps world (x, y, z) ↔ (z, y, x) on homogeneous vectors; its own inverse
_SWAP_WORLD = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
#: type-1 dates/times kept (with a dummy value) when de-identifying; every other date/time is emptied
_DUMMY_DATE_TIME = {"ContentDate": "19000101", "ContentTime": "000000"}
#: top-level attributes that identify a patient or a visit beyond name/ID/dates (removed)
_IDENTIFYING = ("OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName",
                "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "IssuerOfPatientID",
                "PatientComments", "MedicalRecordLocator", "ResponsiblePerson", "PatientAge", "PatientSize",
                "PatientWeight", "EthnicGroup", "Occupation", "AdditionalPatientHistory", "StudyDescription",
                "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
                "DeidentificationMethodCodeSequence", "IssuerOfAccessionNumberSequence")
_EMPTIED = ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "ReferringPhysicianName")
DEIDENTIFICATION_METHOD = "napari-harm3: pseudonym; names, IDs, dates removed; UIDs kept"


def highdicom_affine(affine) -> np.ndarray:
    """Our (k, j, i) → (z, y, x) affine as highdicom's (slice, row, column) → (x, y, z)."""
    return _SWAP_WORLD @ np.asarray(affine, dtype=float)


def our_affine(hd_affine) -> np.ndarray:
    """Inverse of :func:`highdicom_affine`."""
    return _SWAP_WORLD @ np.asarray(hd_affine, dtype=float)


#: highdicom's geometry tolerance for matching a read-back volume onto our grid (DS positions
#: carry ~1e-6 mm rounding; its default is stricter than what 16-character decimals keep)
_GEOMETRY_TOLERANCE = 1e-3


def on_grid(volume, geometry):
    """A highdicom volume read from an object, permuted/flipped/padded onto ``geometry`` (no resampling)."""
    try:
        return volume.match_geometry(geometry, tol=_GEOMETRY_TOLERANCE)
    except RuntimeError as exc:
        raise Harm3Error(f"the object does not lie on the expected grid ({exc})") from None


@dataclass(frozen=True)
class ExportSettings:
    """Who made the objects and how identity is written (one per export)."""

    pseudonym: str | None = None          # set: de-identified (the report's pseudonym)
    manufacturer: str = "napari-harm3 project"
    model_name: str = "napari-harm3"
    software_version: str = __version__
    device_serial: str = "napari-harm3-software"   # type 1 in SEG/PM; we are software, not a device
    series_number_base: int = 900

    @property
    def deidentify(self) -> bool:
        return self.pseudonym is not None

    def equipment(self) -> dict:
        """Keyword arguments highdicom's SEG and parametric map take for the equipment."""
        return {"manufacturer": self.manufacturer, "manufacturer_model_name": self.model_name,
                "software_versions": self.software_version, "device_serial_number": self.device_serial}


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """One DICOM image series the objects are derived from: headers in slice order, and its grid."""

    datasets: tuple = field(repr=False)   # pydicom headers (no pixels), sorted along the slice normal
    folder: str = ""

    @property
    def first(self) -> Dataset:
        return self.datasets[0]

    @property
    def series_uid(self) -> str:
        return str(self.first.SeriesInstanceUID)

    @property
    def study_uid(self) -> str:
        return str(self.first.StudyInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str | None:
        return str(self.first.get("FrameOfReferenceUID", "")) or None

    @property
    def description(self) -> str:
        return str(self.first.get("SeriesDescription", "") or "")

    def plane_positions(self) -> np.ndarray:
        """(N, 3) ImagePositionPatient (x, y, z) of every frame."""
        first = self.first
        if int(first.get("NumberOfFrames", 1) or 1) > 1:
            return np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                             for f in first.PerFrameFunctionalGroupsSequence])
        return np.array([[float(v) for v in ds.ImagePositionPatient] for ds in self.datasets])

    def _in_plane_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(world step of one row down, one column right), x y z mm."""
        first = self.first
        if int(first.get("NumberOfFrames", 1) or 1) > 1:
            groups = first.SharedFunctionalGroupsSequence[0]
            frame = first.PerFrameFunctionalGroupsSequence[0]
            pick = lambda name: (groups.get(name) or frame.get(name))[0]  # noqa: E731
            orientation, spacing = pick("PlaneOrientationSequence").ImageOrientationPatient, \
                pick("PixelMeasuresSequence").PixelSpacing
        else:
            orientation, spacing = first.ImageOrientationPatient, first.PixelSpacing
        o = np.array([float(v) for v in orientation])
        return o[3:] * float(spacing[0]), o[:3] * float(spacing[1])

    def check_grid(self, affine, shape, what: str) -> None:
        """Raise :class:`Harm3Error` unless ``shape``/``affine`` (ours) is this series' voxel grid
        (the slices may come in any order)."""
        rows, cols = int(self.first.Rows), int(self.first.Columns)
        positions = self.plane_positions()
        name = self.description or self.series_uid
        if tuple(shape) != (len(positions), rows, cols):
            raise Harm3Error(f"{what} has shape {tuple(shape)}, but series {name} is {len(positions)}×{rows}×{cols}; "
                             "it must lie on the series' voxels")
        grid = highdicom_affine(affine)
        down, right = self._in_plane_steps()
        if not (np.allclose(grid[:3, 1], down, atol=1e-3) and np.allclose(grid[:3, 2], right, atol=1e-3)):
            raise Harm3Error(f"{what} is not on the grid of series {name}: its rows and columns run elsewhere")
        planes = grid[:3, 3] + np.outer(np.arange(shape[0]), grid[:3, 0])
        gaps = np.linalg.norm(planes[:, None, :] - positions[None, :, :], axis=-1).min(axis=1)
        if gaps.max() > 0.05:
            raise Harm3Error(f"{what} is not on the grid of series {name}: "
                             f"its slices lie up to {gaps.max():.2f} mm from the series' slices")


def _header(path) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for foreign files
        raise InputFileError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})"[:300]) from exc


def _slice_order(datasets) -> list:
    first = datasets[0]
    orientation = np.array([float(v) for v in first.ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    return sorted(datasets, key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))


def read_source_series(path, series_uid: str | None = None) -> SourceSeries:
    """The headers of the image series at ``path`` (a DICOM folder, or one file of the series),
    chosen as :func:`~napari_harm3.core.io.dicom_series.read_dicom_series` chooses."""
    path = Path(path)
    if path.is_file():
        uid = series_uid or str(_header(path).get("SeriesInstanceUID", ""))
        folder = path.parent
    else:
        uid, folder = series_uid, path
    infos = [s for s in list_dicom_series(folder) if s.kind == "volume"]
    chosen = [s for s in infos if uid is None or s.uid == uid]
    if len(chosen) != 1:
        what = "no MR/CT image series" if not chosen else f"{len(chosen)} image series (name one by SeriesInstanceUID)"
        raise InputFileError(path, f"holds {what}; the DICOM objects need exactly one source series")
    datasets = [_header(f) for f in chosen[0].files]
    if len(datasets) > 1 or int(datasets[0].get("NumberOfFrames", 1) or 1) == 1:
        datasets = _slice_order(datasets)
    return SourceSeries(datasets=tuple(datasets), folder=str(chosen[0].folder))


def read_source_instance(path) -> SourceSeries:
    """One DICOM instance (e.g. a whole-slide image file) as a source, headers only."""
    path = Path(path)
    if not (path.is_file() and is_dicom_file(path)):
        raise InputFileError(path, "not a DICOM file")
    return SourceSeries(datasets=(_header(path),), folder=str(path.parent))


def new_uid() -> str:

    return str(highdicom.UID())


def identity_copies(datasets, settings: ExportSettings) -> list:
    """``datasets`` as highdicom should copy patient and study from: unchanged, or (de-identified)
    with the pseudonym as name and ID and no other identifier or date."""
    if not settings.deidentify:
        return list(datasets)
    copies = []
    for ds in datasets:
        clean = copy.deepcopy(ds)
        scrub_identity(clean, settings.pseudonym)
        copies.append(clean)
    return copies


def scrub_identity(ds: Dataset, pseudonym: str) -> Dataset:
    """In place: pseudonym as PatientName/PatientID; other identifiers removed; every date and
    time emptied (type-1 content date/time get a dummy value); other person names emptied;
    private elements removed. UIDs are kept so the object still references its sources."""
    ds.remove_private_tags()
    for keyword in _IDENTIFYING:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword in _EMPTIED:
        if keyword in ds:
            setattr(ds, keyword, "")
    _empty_dates_and_names(ds, top=True)
    ds.PatientName = pseudonym
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    return ds


def _empty_dates_and_names(ds: Dataset, top: bool) -> None:
    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value:
                _empty_dates_and_names(item, top=False)
        elif element.VR in ("DA", "DT", "TM"):
            element.value = _DUMMY_DATE_TIME.get(element.keyword, "") if top else ""
        elif element.VR == "PN" and not (top and element.keyword == "PatientName"):
            element.value = ""


def finish(ds: Dataset, settings: ExportSettings) -> Dataset:
    """Last step of every object: de-identify the result itself when asked (highdicom adds its
    own creation dates), then return it."""
    if settings.deidentify:
        scrub_identity(ds, settings.pseudonym)
    return ds


def save_dataset(ds: Dataset, path) -> Path:
    """Write ``ds`` as a DICOM file (preamble, file meta) to ``path`` (inside a scratch folder)."""
    path = Path(path)
    ds.save_as(str(path), enforce_file_format=True)
    return path
