"""Retrieve one study from the configured peer into a folder: C-GET, or C-MOVE to our own
storage SCP started for the duration of the retrieval.

Objects land as ``<folder>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, written byte for byte as
received (no re-encoding). The storage handler accepts only objects of the requested study whose
UIDs are plain DICOM UIDs (so nothing can be written outside the folder), and, for C-MOVE, only
associations from the peer's AE title. A retrieval that ends with failed or refused objects, a
failure status, or no objects at all raises :class:`PacsError`; the caller removes the folder.
``progress`` may raise ``Cancelled`` (checked at each response from the peer).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import (
    ALL_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    StoragePresentationContexts,
    build_role,
    evt,
    sop_class,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet as StudyRootGet,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelMove as StudyRootMove,
)

from ..progress import ProgressFn, report
from .association import (
    LOGGER,
    PacsError,
    association,
    connection_handlers,
    hold_reactor,
    make_ae,
    status_text,
    tls_context,
)
from .config import PacsConfig
from .query import find_studies

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: SOP classes proposed first for C-GET (one association holds at most 128 contexts)
_FIRST_STORAGE_CLASSES = (
    "MRImageStorage", "EnhancedMRImageStorage", "CTImageStorage", "EnhancedCTImageStorage",
    "RTStructureSetStorage", "SegmentationStorage", "ParametricMapStorage", "ComprehensiveSRStorage",
    "EnhancedSRStorage", "BasicTextSRStorage", "Comprehensive3DSRStorage", "KeyObjectSelectionDocumentStorage",
    "EncapsulatedPDFStorage", "SecondaryCaptureImageStorage", "GrayscaleSoftcopyPresentationStateStorage",
    "PositronEmissionTomographyImageStorage", "VLWholeSlideMicroscopyImageStorage", "SpatialRegistrationStorage",
    "RawDataStorage",
)


@dataclass(frozen=True)
class RetrieveResult:
    folder: Path
    method: str          # "C-GET" or "C-MOVE"
    n_objects: int
    n_bytes: int
    seconds: float

    @property
    def megabytes_per_second(self) -> float:
        return self.n_bytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")


class _Receiver:
    """The C-STORE handler: writes the objects of one study into ``folder``, counts what it did."""

    def __init__(self, folder: Path, study_uid: str):
        self.folder, self.study_uid = folder, study_uid
        self.n_objects = self.n_bytes = 0
        self.refused: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event):
        try:
            ds = event.dataset
            study, series, instance = (str(ds.get(k, "") or "") for k in
                                       ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        except Exception as exc:  # noqa: BLE001 - an undecodable object is refused, not fatal
            return self._refuse(f"undecodable object ({str(exc).splitlines()[0][:80]})")
        if study != self.study_uid:
            return self._refuse("an object of another study")
        if not (_UID.match(series) and _UID.match(instance) and len(series) <= 64 and len(instance) <= 64):
            return self._refuse("an object without valid series/instance UIDs")
        data = event.encoded_dataset(include_meta=True)
        path = self.folder / series / f"{instance}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self.lock:
            self.n_objects += 1
            self.n_bytes += len(data)
        return 0x0000

    def _refuse(self, why: str) -> int:
        with self.lock:
            self.refused.append(why)
        return 0xC000


def _storage_classes(limit: int) -> list[str]:

    uids = [getattr(sop_class, name) for name in _FIRST_STORAGE_CLASSES]
    uids += [cx.abstract_syntax for cx in StoragePresentationContexts if cx.abstract_syntax not in uids]
    return uids[:limit]


def _study_query(study_uid: str):

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _follow(responses, config: PacsConfig, what: str, receiver: _Receiver, progress) -> None:
    """Read the peer's responses to a C-GET/C-MOVE; raise PacsError unless all went well."""
    final = None
    for status, _identifier in responses:
        if status is None or "Status" not in status:
            raise PacsError(f"{config.where()}: {what} got {status_text(status)}")
        code = int(status.Status)
        if code in (0xFF00, 0xFF01):
            done = sum(int(status.get(k, 0) or 0) for k in ("NumberOfCompletedSuboperations",
                                                            "NumberOfFailedSuboperations",
                                                            "NumberOfWarningSuboperations"))
            total = done + int(status.get("NumberOfRemainingSuboperations", 0) or 0)
            report(progress, done / total if total else 0.0, f"{what}: {receiver.n_objects} objects received")
            continue
        final = status
    if final is None:
        raise PacsError(f"{config.where()}: {what} ended without a final status")
    code = int(final.Status)
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if receiver.refused:
        raise PacsError(f"{config.where()}: {what}: {len(receiver.refused)} object(s) refused: {receiver.refused[0]}")
    if code not in (0x0000, 0xB000) or failed:
        detail = f"{failed} object(s) failed to transfer, " if failed else ""
        raise PacsError(f"{config.where()}: {what} failed: {detail}status {status_text(final)}")
    if receiver.n_objects == 0:
        raise PacsError(f"{config.where()}: {what} returned no objects for this study; check the study UID "
                        "(harm3 pacs find)")


def _retrieve_get(config: PacsConfig, study_uid: str, receiver: _Receiver, progress) -> None:

    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, JPEGLosslessSV1,
                JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000Lossless, JPEG2000, JPEGLSLossless,
                JPEGLSNearLossless, RLELossless]
    ae = make_ae(config)
    ae.add_requested_context(StudyRootGet)
    classes = _storage_classes(127)
    for uid in classes:
        ae.add_requested_context(uid, syntaxes)
    roles = [build_role(uid, scp_role=True) for uid in classes]
    with association(ae, config, "C-GET", ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)]) as assoc:
        if not any(cx.abstract_syntax == StudyRootGet for cx in assoc.accepted_contexts):
            raise PacsError(f"{config.where()} does not offer C-GET; set 'retrieve: move' and 'move_port' in "
                            f"{config.source or 'the PACS config'}")
        hold_reactor(assoc)
        _follow(assoc.send_c_get(_study_query(study_uid), StudyRootGet), config, "C-GET", receiver, progress)


def _retrieve_move(config: PacsConfig, study_uid: str, receiver: _Receiver, progress) -> None:

    scp = make_ae(config)
    for cx in AllStoragePresentationContexts:
        scp.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    scp.require_calling_aet = [config.peer.ae_title]  # only the peer may store into our folder
    try:
        server = scp.start_server((config.move_host, config.move_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, receiver)] + connection_handlers(),
                                  ssl_context=tls_context(config, server_side=True))
    except OSError as exc:
        raise PacsError(f"cannot listen on {config.move_host}:{config.move_port} for C-MOVE ({exc.strerror or exc}); "
                        "choose another move_port") from None
    try:
        ae = make_ae(config)
        ae.add_requested_context(StudyRootMove)
        with association(ae, config, "C-MOVE") as assoc:
            hold_reactor(assoc)
            _follow(assoc.send_c_move(_study_query(study_uid), config.ae_title, StudyRootMove), config, "C-MOVE",
                    receiver, progress)
    finally:
        server.shutdown()


def retrieve_study(config: PacsConfig, study_uid: str, folder, progress: ProgressFn | None = None) -> RetrieveResult:
    """Retrieve every object of study ``study_uid`` into ``folder`` (created; should be empty)
    by the config's method; see the module docstring. The caller owns cleaning up on failure."""
    if not _UID.match(study_uid or "") or len(study_uid) > 64:
        raise PacsError(f"{study_uid!r} is not a study instance UID (digits and dots)")
    if not find_studies(config, study_uid=study_uid, with_series=False):
        raise PacsError(f"{config.where()} has no study {study_uid}; check the study UID (harm3 pacs find)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(folder, study_uid)
    start = time.perf_counter()
    method = "C-MOVE" if config.retrieve == "move" else "C-GET"
    report(progress, 0.0, f"{method} from {config.peer.ae_title}")
    (_retrieve_move if method == "C-MOVE" else _retrieve_get)(config, study_uid, receiver, progress)
    seconds = time.perf_counter() - start
    LOGGER.info("%s: %d objects, %.1f MB in %.2f s", method, receiver.n_objects, receiver.n_bytes / 1e6, seconds)
    return RetrieveResult(folder, method, receiver.n_objects, receiver.n_bytes, seconds)
