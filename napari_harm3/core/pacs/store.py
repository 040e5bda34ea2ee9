"""C-STORE of a folder of DICOM objects to the configured peer, checked before anything is sent.

Every file under the folder is read first (:func:`check_dicom_file`); if one is not a complete
DICOM object — no ``DICM`` preamble, no file meta, SOP UIDs missing or disagreeing, an element
shorter than its declared length (a truncated file), pixel data shorter than the image needs, a
``.partial`` file still being written — the send is refused before any association, with the list
of refused files. Only then are the objects sent, one C-STORE each, over one association whose
presentation contexts are the objects' own SOP classes and transfer syntaxes (nothing is
re-encoded). Each object's status comes back in :class:`SendResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import UID
from pynetdicom.presentation import build_context

from ..progress import ProgressFn, report
from .association import LOGGER, PacsError, association, hold_reactor, make_ae, status_text
from .config import PacsConfig

_UNDEFINED = 0xFFFFFFFF
_MAX_CONTEXTS = 128


@dataclass(frozen=True)
class DicomObject:
    """A checked file: what it is, ready to send."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    size: int


@dataclass(frozen=True)
class ObjectStatus:
    path: Path
    sop_instance_uid: str
    ok: bool
    status: str  # "0x0000 (success)", or why it failed


@dataclass(frozen=True)
class SendResult:
    objects: tuple[ObjectStatus, ...]
    n_bytes: int
    seconds: float

    @property
    def n_ok(self) -> int:
        return sum(o.ok for o in self.objects)

    @property
    def failed(self) -> tuple[ObjectStatus, ...]:
        return tuple(o for o in self.objects if not o.ok)


def _native_pixel_bytes(ds) -> int | None:
    """Bytes an uncompressed image needs (None where the header does not say)."""
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsAllocated)
        count = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * frames
    except (AttributeError, TypeError, ValueError):
        return None
    return (count * bits + 7) // 8


def check_dicom_file(path) -> DicomObject:
    """A :class:`DicomObject` for a complete DICOM file, else ValueError(one-line reason)."""

    path = Path(path)
    if path.name.endswith(".partial"):
        raise ValueError("a file still being written (.partial)")
    with open(path, "rb") as handle:
        head = handle.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise ValueError("not a DICOM file (no DICM preamble)")
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for broken files
        raise ValueError(f"not readable as DICOM ({str(exc).splitlines()[0][:120]})") from None
    meta = ds.file_meta
    syntax = str(meta.get("TransferSyntaxUID", "") or "")
    sop_class = str(ds.get("SOPClassUID", "") or meta.get("MediaStorageSOPClassUID", "") or "")
    instance = str(ds.get("SOPInstanceUID", "") or "")
    if not syntax or not sop_class or not instance:
        raise ValueError("lacks its transfer syntax, SOP class or SOP instance UID")
    if str(meta.get("MediaStorageSOPInstanceUID", instance)) != instance:
        raise ValueError("file meta and dataset name different SOP instances")
    for tag, element in ds._dict.items():  # raw elements: the value read vs the length declared
        length = getattr(element, "length", None)
        value = getattr(element, "value", None)
        if length not in (None, _UNDEFINED) and isinstance(value, bytes) and len(value) < length:
            raise ValueError(f"truncated: element {tag} holds {len(value)} of its {length} bytes")
    if "PixelData" in ds:
        raw = ds._dict[0x7FE00010]
        if UID(syntax).is_encapsulated:
            with open(path, "rb") as handle:
                handle.seek(-8, 2)
                tail = handle.read(8)
            if getattr(raw, "length", None) == _UNDEFINED and tail != b"\xfe\xff\xdd\xe0\x00\x00\x00\x00":
                raise ValueError("truncated: encapsulated pixel data has no end delimiter")
        else:
            needed = _native_pixel_bytes(ds)
            if needed is not None and len(raw.value) < needed:
                raise ValueError(f"pixel data holds {len(raw.value)} bytes, the image needs {needed}")
    elif ("Rows" in ds and "Columns" in ds and "BitsAllocated" in ds
          and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds):  # parametric maps hold floats
        raise ValueError("an image header without pixel data")
    return DicomObject(path, sop_class, instance, syntax, path.stat().st_size)


def collect_objects(folder) -> tuple[list[DicomObject], list[tuple[Path, str]]]:
    """(complete objects, [(refused file, why)]) of every file under ``folder``; hidden files
    other than ``.partial`` ones are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PacsError(f"{folder}: not a folder; pass the folder of DICOM objects to send")
    objects, refused = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.startswith(".") and not path.name.endswith(".partial"):
            continue
        try:
            objects.append(check_dicom_file(path))
        except (ValueError, OSError) as exc:
            refused.append((path, str(exc)))
    return objects, refused


def send_objects(config: PacsConfig, objects, progress: ProgressFn | None = None) -> SendResult:
    """C-STORE each checked object to the peer over one association."""


    syntaxes: dict[str, list[str]] = {}
    for obj in objects:
        items = syntaxes.setdefault(obj.sop_class_uid, [])
        if obj.transfer_syntax_uid not in items:
            items.append(obj.transfer_syntax_uid)
    contexts = [build_context(sop, [ts]) for sop, items in syntaxes.items() for ts in items]
    if len(contexts) > _MAX_CONTEXTS:
        raise PacsError(f"{len(contexts)} SOP class / transfer syntax pairs; one association takes at most "
                        f"{_MAX_CONTEXTS}: send the folder in parts")
    ae = make_ae(config)
    ae.requested_contexts = contexts
    start = time.perf_counter()
    results = []
    with association(ae, config, "C-STORE") as assoc:
        for n, obj in enumerate(objects):
            report(progress, n / max(1, len(objects)), f"sending {n + 1}/{len(objects)}")
            try:
                hold_reactor(assoc)
                status = assoc.send_c_store(str(obj.path))
            except ValueError as exc:  # no accepted context for this SOP class / transfer syntax
                results.append(ObjectStatus(obj.path, obj.sop_instance_uid, False,
                                            f"not accepted by the PACS ({str(exc).splitlines()[0][:160]})"))
                continue
            if not assoc.is_established:
                results.append(ObjectStatus(obj.path, obj.sop_instance_uid, False, "association lost"))
                raise PacsError(f"{config.where()}: the association was lost after {n} of {len(objects)} "
                                "objects; nothing more was sent")
            ok = status is not None and "Status" in status and int(status.Status) in (0x0000, 0xB000, 0xB006, 0xB007)
            results.append(ObjectStatus(obj.path, obj.sop_instance_uid, ok, status_text(status)))
    report(progress, 1.0, "sent")
    result = SendResult(tuple(results), sum(o.size for o in objects), time.perf_counter() - start)
    LOGGER.info("C-STORE: %d of %d objects stored", result.n_ok, len(objects))
    return result


def send_folder(config: PacsConfig, folder, progress: ProgressFn | None = None) -> SendResult:
    """Check every file under ``folder``; refuse the whole send if any is not complete DICOM
    (PacsError listing them), else send them all (:func:`send_objects`)."""
    objects, refused = collect_objects(folder)
    if refused:
        listing = "; ".join(f"{p.name}: {why}" for p, why in refused[:5])
        more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
        raise PacsError(f"{folder}: {len(refused)} file(s) are not complete DICOM objects, nothing was sent: "
                        f"{listing}{more}")
    if not objects:
        raise PacsError(f"{folder}: no DICOM objects to send")
    return send_objects(config, objects, progress)
