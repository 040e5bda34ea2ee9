"""The PDF report as a DICOM Encapsulated PDF (PS3.3 A.45.1), in the source study with a new series.

highdicom has no class for it, so this builds on its :class:`highdicom.base.SOPClass` (SOP
common, patient, general study, series and equipment attributes, taken from the source) and
adds the Encapsulated Document and SC Equipment modules; the source images go in the Source
Instance Sequence (the IOD has no Frame of Reference module: the frame is referenced through
those images). The PDF bytes are stored unchanged (padded to even length, the real length
in Encapsulated Document Length), so :func:`read_encapsulated_pdf` returns the very file.
"""

from __future__ import annotations

import datetime

import pydicom
from highdicom.base import SOPClass
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from ...errors import Harm3Error
from .common import ExportSettings, finish, identity_copies, new_uid

ENCAPSULATED_PDF_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"


def _patient_study(first: Dataset) -> dict:
    keywords = {"patient_id": "PatientID", "patient_name": "PatientName", "patient_birth_date": "PatientBirthDate",
                "patient_sex": "PatientSex", "accession_number": "AccessionNumber", "study_id": "StudyID",
                "study_date": "StudyDate", "study_time": "StudyTime",
                "referring_physician_name": "ReferringPhysicianName"}
    return {argument: first.get(keyword) or None for argument, keyword in keywords.items()}


def _source_item(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def build_encapsulated_pdf(pdf: bytes, sources, settings: ExportSettings, series_number: int,
                           title: str = "napari-harm3 case report", now: datetime.datetime | None = None) -> Dataset:
    """An Encapsulated PDF of ``pdf`` in the study of ``sources[0]`` (pydicom headers), listing
    every source instance."""
    if not pdf.startswith(b"%PDF"):
        raise Harm3Error("the report to encapsulate is not a PDF (it does not start with %PDF)")
    sources = identity_copies(list(sources), settings)
    if not sources:
        raise Harm3Error("an encapsulated PDF needs at least one DICOM source to take its study from")
    first = sources[0]
    now = now or datetime.datetime.now()
    ds = SOPClass(study_instance_uid=str(first.StudyInstanceUID), series_instance_uid=new_uid(),
                  series_number=series_number, sop_instance_uid=new_uid(), sop_class_uid=ENCAPSULATED_PDF_SOP_CLASS,
                  instance_number=1, modality="DOC", transfer_syntax_uid=ExplicitVRLittleEndian,
                  series_description=title[:64], manufacturer=settings.manufacturer,
                  manufacturer_model_name=settings.model_name, software_versions=settings.software_version,
                  device_serial_number=settings.device_serial, content_date=now.date(), content_time=now.time(),
                  **_patient_study(first))
    ds.ConversionType = "WSD"                  # SC Equipment: workstation
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "NO" if settings.deidentify else "YES"   # the PDF names the patient unless de-identified
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.SourceInstanceSequence = [_source_item(s) for s in sources]
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    return finish(ds, settings)


def read_encapsulated_pdf(path_or_dataset) -> bytes:
    """The PDF file stored in an Encapsulated PDF object."""
    ds = path_or_dataset if isinstance(path_or_dataset, Dataset) else pydicom.dcmread(str(path_or_dataset))
    data = bytes(ds.EncapsulatedDocument)
    length = int(ds.get("EncapsulatedDocumentLength", len(data)) or len(data))
    return data[:length]
