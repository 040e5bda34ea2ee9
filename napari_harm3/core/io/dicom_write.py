"""Write a :class:`~napari_harm3.core.io.mri.Volume` as a classic single-frame MR DICOM series.

Geometry: the volume's affine maps index (k, j, i) to world (z, y, x) mm LPS; DICOM wants, per
slice k, ImagePositionPatient (x, y, z of voxel (k, 0, 0)), ImageOrientationPatient (the
directions of increasing column index i, then row index j), PixelSpacing (row spacing = |j
step|, column spacing = |i step|) and SliceThickness / SpacingBetweenSlices (the slice step along
the plane normal). :func:`napari_harm3.core.io.mri.read_volume` reads the series back to the same
voxels and affine when the slice step points along the normal (row × column), as it does for
every volume read from DICOM; otherwise the reader sorts the slices the other way round (the same
image, indexed from the other end). In-plane axes must be orthogonal (DICOM has no shear).

Voxels: integers that fit int16 (or uint16) are written as they are; anything else is scaled
linearly into int16 with RescaleSlope/RescaleIntercept (the reader applies them), so reading back
gives the values to within half a slope step.

:func:`write_case_dicom` writes a case's four MRI volumes as the series of ONE study, with series
descriptions the default PACS rules assign ("T1 pre", "T1 post", "T2 pre FS", "T2 post FS").
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DSfloat

from ..errors import Harm3Error
from ..mri.case_volumes import read_case_volumes
from ..vocabulary import SEQUENCES
from .case import load_case, save_case
from .mri import _REVERSE_XYZ, Volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: series descriptions of a synthetic study; the default PACS rules (core/pacs/rules.py) read them
SYNTH_SERIES_DESCRIPTIONS = {"t1_pre": "T1 pre", "t1_post": "T1 post", "t2_pre": "T2 pre FS", "t2_post": "T2 post FS"}
DICOM_DIR = "dicom"


@dataclass(frozen=True)
class DicomStudy:
    """The study (and patient) a written series belongs to."""

    study_uid: str
    patient_id: str
    patient_name: str = ""
    study_date: str = ""          # YYYYMMDD
    study_time: str = ""
    study_id: str = ""
    accession: str = ""
    description: str = ""
    manufacturer: str = "napari-harm3"


def deterministic_uid(*parts) -> str:
    """A DICOM UID ``2.25.<UUID as integer>`` from a name-based (version 5) UUID of ``parts``:
    the same parts give the same UID."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, chr(31).join(str(p) for p in parts)).int}"


def _ds(value: float):

    return DSfloat(float(value), auto_format=True)


def _plane_geometry(affine: np.ndarray):
    """(row direction, column direction, pixel spacing [row, column], slice step) in x, y, z."""
    xyz = _REVERSE_XYZ @ np.asarray(affine, float)  # index (k, j, i) → world (x, y, z)
    step, j_step, i_step = xyz[:3, 0], xyz[:3, 1], xyz[:3, 2]
    spacing = np.array([np.linalg.norm(j_step), np.linalg.norm(i_step)])
    if not np.all(spacing > 0) or not np.linalg.norm(step) > 0:
        raise Harm3Error("the volume's affine is degenerate (a zero voxel size); cannot write DICOM")
    row_dir, col_dir = i_step / spacing[1], j_step / spacing[0]
    if abs(float(row_dir @ col_dir)) > 1e-6:
        raise Harm3Error("the volume's in-plane axes are not orthogonal; DICOM image planes cannot hold a shear")
    return row_dir, col_dir, spacing, step, xyz[:3, 3]


def _pixel_encoding(data: np.ndarray):
    """(stored array, signed, slope, intercept) for ``data``."""
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if np.issubdtype(data.dtype, np.integer):
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if lo >= -32768 and hi <= 32767:
            return data.astype(np.int16), True, 1.0, 0.0
        if lo >= 0 and hi <= 65535:
            return data.astype(np.uint16), False, 1.0, 0.0
    values = np.asarray(data, np.float64)
    if not np.all(np.isfinite(values)):
        raise Harm3Error("the volume holds NaN or infinite values; DICOM pixels cannot")
    lo, hi = float(values.min()), float(values.max())
    slope = (hi - lo) / 65534.0 if hi > lo else 1.0
    intercept = lo + 32767.0 * slope
    stored = np.clip(np.round((values - intercept) / slope), -32767, 32767).astype(np.int16)
    return stored, True, slope, intercept


def write_volume_dicom(volume: Volume, folder, study: DicomStudy, *, series_description: str,
                       series_number: int = 1, series_uid: str | None = None,
                       frame_of_reference_uid: str | None = None) -> Path:
    """Write ``volume`` as an MR series into ``folder`` (must not exist or be empty), atomically:
    the slices go to a hidden scratch folder renamed into place. Returns ``folder``."""

    folder = Path(folder).absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Harm3Error(f"{folder} exists and is not empty; choose another folder")
    row_dir, col_dir, spacing, step, origin = _plane_geometry(volume.affine)
    normal = np.cross(row_dir, col_dir)
    stored, signed, slope, intercept = _pixel_encoding(np.asarray(volume.data))
    series_uid = series_uid or deterministic_uid(study.study_uid, series_number, series_description)
    frame = frame_of_reference_uid or volume.frame_of_reference_uid or deterministic_uid(study.study_uid, "frame")
    nz, ny, nx = stored.shape
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", suffix=".partial", dir=folder.parent))
    try:
        for k in range(nz):
            position = origin + k * step
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.SOPClassUID = MR_IMAGE_STORAGE
            ds.SOPInstanceUID = deterministic_uid(series_uid, k)
            ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
            ds.StudyDate, ds.StudyTime = study.study_date, study.study_time
            ds.SeriesDate, ds.SeriesTime = study.study_date, study.study_time
            ds.ContentDate, ds.ContentTime = study.study_date, study.study_time
            ds.AccessionNumber = study.accession
            ds.Modality = "MR"
            ds.Laterality = ""  # 2C: empty = unpaired body part
            ds.Manufacturer = study.manufacturer
            ds.ReferringPhysicianName = ""
            ds.StudyDescription = study.description
            ds.SeriesDescription = series_description
            ds.PatientName = study.patient_name
            ds.PatientID = study.patient_id
            ds.PatientBirthDate = ""
            ds.PatientSex = ""
            ds.ScanningSequence = "RM"  # research mode: a synthetic or derived image
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.SliceThickness = _ds(abs(float(step @ normal)))
            ds.RepetitionTime = ""
            ds.EchoTime = ""
            ds.EchoTrainLength = ""
            ds.SpacingBetweenSlices = _ds(abs(float(step @ normal)))
            ds.PatientPosition = "HFS"
            ds.StudyInstanceUID = study.study_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = study.study_id
            ds.SeriesNumber = int(series_number)
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [_ds(v) for v in position]
            ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
            ds.FrameOfReferenceUID = frame
            ds.PositionReferenceIndicator = ""
            ds.SliceLocation = _ds(float(position @ normal))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = ny, nx
            ds.PixelSpacing = [_ds(spacing[0]), _ds(spacing[1])]
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = 1 if signed else 0
            if (slope, intercept) != (1.0, 0.0):
                ds.RescaleIntercept = _ds(intercept)
                ds.RescaleSlope = _ds(slope)
            ds.PixelData = np.ascontiguousarray(stored[k]).astype("<i2" if signed else "<u2").tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            pydicom.dcmwrite(scratch / f"IM{k + 1:04d}.dcm", ds, enforce_file_format=True)
        if folder.exists():
            folder.rmdir()
        os.rename(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def write_case_dicom(case, folder_name: str = DICOM_DIR, descriptions=None, study: DicomStudy | None = None):
    """Write the case's MRI volumes as the series of one study under ``case.root / folder_name``
    (``<key>/IM0001.dcm`` …), repoint the manifest's ``mri`` at those folders (masks and
    transforms stay) and return the re-read case. Volumes keep their own file geometry; the
    manifest's registration transforms still apply to them."""

    descriptions = {**SYNTH_SERIES_DESCRIPTIONS, **(descriptions or {})}
    study = study or DicomStudy(study_uid=deterministic_uid(case.case_id, "study"), patient_id=case.case_id,
                                patient_name=f"SYNTHETIC^{case.case_id}", study_date="20250101",
                                study_time="120000", study_id="1", description="synthetic phantom (napari-harm3)")
    volumes = read_case_volumes(case, with_masks=False)
    frame = next((v.frame_of_reference_uid for v in volumes.volumes.values() if v.frame_of_reference_uid), None)
    frame = frame or deterministic_uid(study.study_uid, "frame")
    written = {}
    for number, key in enumerate(SEQUENCES, start=1):
        if key not in volumes.volumes:
            continue
        own = dataclasses.replace(volumes.volumes[key], affine=volumes.original_affines[key])
        written[key] = write_volume_dicom(own, Path(case.root) / folder_name / key, study,
                                          series_description=descriptions[key], series_number=number,
                                          frame_of_reference_uid=frame)
    updated = dataclasses.replace(case, mri={**dict(case.mri), **written})
    save_case(updated, case.manifest or Path(case.root) / "case.yaml", overwrite=True)
    return load_case(case.manifest or Path(case.root) / "case.yaml")
