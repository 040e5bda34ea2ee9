"""C-FIND at study and series level (Study Root), returning frozen records.

Patient identifiers (name, ID, birth date, accession number) are kept in the records so that a
caller who asked for them can show them; :meth:`StudyRecord.row` leaves them out unless told.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as StudyRootFind,
)

from .association import LOGGER, PacsError, association, hold_reactor, make_ae, status_text
from .config import PacsConfig

#: SOP classes of non-image objects (no pixels to read as a volume)
NON_IMAGE_MODALITIES = frozenset({"SR", "SEG", "RTSTRUCT", "PR", "KO", "DOC", "REG", "RTPLAN", "RTDOSE", "OT"})


@dataclass(frozen=True)
class SeriesRecord:
    study_uid: str
    uid: str
    modality: str
    description: str
    number: int | None
    n_instances: int | None

    @property
    def is_image(self) -> bool:
        return self.modality not in NON_IMAGE_MODALITIES


@dataclass(frozen=True)
class StudyRecord:
    uid: str
    date: str
    description: str
    modalities: tuple[str, ...]
    n_series: int | None
    n_instances: int | None
    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    series: tuple[SeriesRecord, ...] = ()

    def row(self, show_identifiers: bool = False) -> dict:
        row = {"date": self.date, "study": self.uid, "description": self.description,
               "modalities": "/".join(self.modalities), "series": _count(self.n_series),
               "objects": _count(self.n_instances)}
        if show_identifiers:
            row = {"patient_id": self.patient_id, "patient_name": self.patient_name,
                   "accession": self.accession, **row}
        return row


def _count(value) -> str:
    return "" if value is None else str(value)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _find(config: PacsConfig, query, what: str) -> list:

    ae = make_ae(config)
    ae.add_requested_context(StudyRootFind)
    matches = []
    with association(ae, config, what) as assoc:
        hold_reactor(assoc)
        for status, identifier in assoc.send_c_find(query, StudyRootFind):
            if status is None or "Status" not in status:
                raise PacsError(f"{config.where()}: {what} got {status_text(status)}")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    matches.append(identifier)
            elif code != 0x0000:
                raise PacsError(f"{config.where()}: {what} failed with status {status_text(status)}")
    LOGGER.info("%s: %d matches", what, len(matches))
    return matches


def _study_query(patient_id: str | None, study_uid: str | None):

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = patient_id or ""
    ds.PatientName = ""
    ds.StudyInstanceUID = study_uid or ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyDescription = ""
    ds.AccessionNumber = ""
    ds.ModalitiesInStudy = ""
    ds.NumberOfStudyRelatedSeries = None
    ds.NumberOfStudyRelatedInstances = None
    return ds


def find_series(config: PacsConfig, study_uid: str) -> tuple[SeriesRecord, ...]:
    """The series of one study (C-FIND, SERIES level), by series number."""

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesDescription = ""
    ds.SeriesNumber = None
    ds.NumberOfSeriesRelatedInstances = None
    records = [
        SeriesRecord(study_uid=study_uid, uid=_text(m.get("SeriesInstanceUID")), modality=_text(m.get("Modality")),
                     description=_text(m.get("SeriesDescription")), number=_int(m.get("SeriesNumber")),
                     n_instances=_int(m.get("NumberOfSeriesRelatedInstances")))
        for m in _find(config, ds, "C-FIND (series)")
    ]
    return tuple(sorted(records, key=lambda r: (r.number is None, r.number or 0, r.description)))


def find_studies(config: PacsConfig, patient_id: str | None = None, study_uid: str | None = None,
                 with_series: bool = True) -> tuple[StudyRecord, ...]:
    """Studies of a patient (``patient_id``, wildcards * and ? allowed) or one study (``study_uid``),
    each with its series when ``with_series``; by date."""
    if not (patient_id or study_uid):
        raise PacsError("give a patient ID or a study UID to search for")
    studies = []
    for m in _find(config, _study_query(patient_id, study_uid), "C-FIND (studies)"):
        uid = _text(m.get("StudyInstanceUID"))
        modalities = m.get("ModalitiesInStudy") or ()
        modalities = (modalities,) if isinstance(modalities, str) else tuple(str(v) for v in modalities)
        studies.append(StudyRecord(
            uid=uid, date=_text(m.get("StudyDate")), description=_text(m.get("StudyDescription")),
            modalities=modalities, n_series=_int(m.get("NumberOfStudyRelatedSeries")),
            n_instances=_int(m.get("NumberOfStudyRelatedInstances")), patient_id=_text(m.get("PatientID")),
            patient_name=_text(m.get("PatientName")), accession=_text(m.get("AccessionNumber")),
            series=find_series(config, uid) if with_series and uid else ()))
    return tuple(sorted(studies, key=lambda s: (s.date, s.uid)))
