"""Cheap file-kind sniffing for whole-slide images (magic bytes, no decoding).

:func:`is_slide_file` answers "should the slide reader claim this path?" without opening
the image: it reads at most a few kilobytes and never raises. :func:`describe_file_kind`
names what a rejected file looks like, so error messages can say "this is a NIfTI file"
instead of "unsupported format".
"""

from __future__ import annotations

import contextlib
import gzip
import logging
from pathlib import Path

import numpy as np
import openslide
import tifffile

#: DICOM SOP Class UID of "VL Whole Slide Microscopy Image Storage" (DICOM-WSI).
DICOM_WSI_SOP_CLASS = b"1.2.840.10008.5.1.4.1.1.77.1.6"

#: Extensions that only whole-slide scanners write; a file with one of them is claimed by
#: the slide reader even when its content is bad, so the user gets a clear error.
VENDOR_SLIDE_SUFFIXES = frozenset(
    {".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide", ".isyntax"}
)

#: Non-TIFF slide formats that only OpenSlide's own format detection can recognise.
_OPENSLIDE_INDEX_SUFFIXES = frozenset({".mrxs", ".vms", ".vmu"})

DICOM_WSI_KIND = "a DICOM whole-slide file"

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def is_tiff_header(head: bytes) -> bool:
    """True when ``head`` starts with a classic or BigTIFF signature."""
    return head[:4] in _TIFF_MAGICS


def is_dicom_header(head: bytes) -> bool:
    """True when ``head`` has the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _tiff_is_tiled_or_vendor(path: Path) -> bool:
    """A TIFF is a slide when OpenSlide knows its format or its first image is tiled."""
    try:
        if openslide.OpenSlide.detect_format(str(path)) is not None:
            return True
    except Exception:  # noqa: BLE001 - sniffing never raises
        pass
    try:
        with tifffile.TiffFile(path) as tif:
            return bool(tif.pages.first.is_tiled)
    except Exception:  # noqa: BLE001
        return False


def is_slide_file(path) -> bool:
    """Cheap check that ``path`` is a whole-slide image; never raises.

    True for tiled or vendor TIFF variants (SVS, NDPI, SCN, BIF, pyramidal TIFF), DICOM
    files whose SOP class is VL Whole Slide Microscopy, and OpenSlide index formats
    (MRXS, VMS). False for MRI DICOM, NIfTI, text, folders, missing or empty files, and
    small untiled single-image TIFFs (a plain picture, not a whole-slide image).
    """
    try:
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            return False
        head = _head(path)
        if is_tiff_header(head):
            return _tiff_is_tiled_or_vendor(path)
        if is_dicom_header(head):
            return DICOM_WSI_SOP_CLASS in head
        if path.suffix.lower() in _OPENSLIDE_INDEX_SUFFIXES:
            return openslide.OpenSlide.detect_format(str(path)) is not None
        return False
    except Exception:  # noqa: BLE001 - a checker must never raise
        return False


def describe_file_kind(path) -> str | None:
    """A short human name for what ``path`` seems to contain, or None when unknown."""
    try:
        head = _head(Path(path), 512)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if is_tiff_header(head):
        return "a TIFF file"
    if is_dicom_header(head):
        return DICOM_WSI_KIND if DICOM_WSI_SOP_CLASS in _head(Path(path)) else "a DICOM file that is not a slide (e.g. MRI)"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(352)
            if inner[344:348] in (b"n+1\x00", b"ni1\x00"):
                return "a NIfTI file"
        except (OSError, EOFError):
            pass
        return "a gzip file"
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "a NIfTI file"
    if head[:3] == b"\xff\xd8\xff":
        return "a JPEG image"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "a PNG image"
    if head[:4] == b"PK\x03\x04":
        return "a ZIP archive"
    if head[:4] == b"%PDF":
        return "a PDF document"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return None


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def tifffile_warnings():
    """Collect (and silence) what tifffile logs while the block runs; yields the list."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


def tiff_damage(path) -> str | None:
    """Why the TIFF at ``path`` is damaged (broken page chain, tiles past the end), or None.

    Reads only the TIFF directories and the tile offset/byte-count tables, so it stays
    cheap even for gigapixel slides. Catches truncated files that libraries would
    otherwise open partially (e.g. an SVS cut inside its last directory).
    """
    path = Path(path)
    size = path.stat().st_size
    with tifffile_warnings() as messages:
        try:
            with tifffile.TiffFile(path) as tif:
                pages = list(tif.pages)
                if not pages:
                    return "the TIFF has no readable image directory (truncated?)"
                for index, page in enumerate(pages):
                    offsets = np.asarray(page.dataoffsets, dtype=np.int64)
                    counts = np.asarray(page.databytecounts, dtype=np.int64)
                    if offsets.size and int((offsets + counts).max()) > size:
                        return f"image data of directory {index} runs past the end of the file (truncated)"
        except Exception as exc:  # noqa: BLE001 - any failure here means damage
            return f"the TIFF structure is damaged: {' '.join(str(exc).split())[:120]}"
    broken = [m for m in messages if "invalid" in m.lower() or "truncat" in m.lower() or "corrupt" in m.lower()]
    if broken:
        return "the TIFF is damaged or truncated: " + " ".join(broken[0].split())[:120]
    return None
