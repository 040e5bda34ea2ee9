"""DICOM image series: list the series (and the volumes within them) in a folder, read one as a
:class:`Volume`.

Any transfer syntax pydicom's pixel handlers decode with the kept decoders
(:mod:`.dicom_pixels`: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE,
deflate), classic single-frame files and Enhanced / multi-frame files (:mod:`.dicom_frames`).

Series and volumes
------------------
A series (SeriesInstanceUID) is usually one volume. It holds several when its frames differ by
stack, orientation, echo, temporal position, b-value or another dimension index — e.g. an
Enhanced MR file with two stacks, or a dual-echo series: each becomes its own
:class:`DicomSeriesInfo` with ``stack`` = 1, 2, … and a description naming what differs
(``"AXIAL T2 — stack 2, echo 2 (TE 80 ms)"``).

Choosing one: the series selector
---------------------------------
Wherever a case manifest, :func:`napari_harm3.core.io.mri.read_volume` or
:func:`read_dicom_series` takes "a series of this folder", the text after ``#`` is a *series
selector*, parsed only by :func:`parse_series_selector`::

    folder#<SeriesInstanceUID>        the series (it must be one volume)
    folder#<SeriesInstanceUID>:<N>    volume N of that series (N as `harm3 info folder` lists it)
    folder#:<N>                       volume N of the folder's only image series
    file.dcm#:<N>                     volume N of the series that file belongs to

Listing reads headers only (up to (0028,0011); Enhanced files without their pixel data);
reading decodes each needed frame once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.filereader import read_partial

from ..errors import InputFileError
from .dicom_frames import frames_of, is_multiframe, pick_stack, split_stacks
from .dicom_pixels import decode_frames, syntax_name, transfer_syntax_of
from .dicom_volume import describe_series, stack_volume
from .mri import RTSTRUCT_SOP_CLASS, VOLUME_MODALITIES, WSI_SOP_CLASS, Volume

# Every tag that listing, the kind test and the stack split of classic files need (SOP class,
# modality, series UID and description, echo time and number, orientation, temporal position,
# frame of reference, NumberOfFrames, Rows, Columns) comes before (0028,0011): stopping there
# skips big RTSTRUCT contour sequences, private blocks and pixel data.
_LAST_HEADER_TAG = 0x00280011


def _read_header(path):
    """The DICOM header up to Columns (0028,0011); raises on foreign files."""

    with open(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd-but-readable headers (VR mismatches) are common
        return read_partial(handle, stop_when=lambda tag, vr, length: tag > _LAST_HEADER_TAG)


@dataclass(frozen=True)
class DicomSeriesInfo:
    """One volume of a DICOM series found in a folder (from headers only).

    ``stack`` is None when the series is one volume, else the volume's number (1, 2, …) of
    ``n_stacks``; ``selector`` is what follows ``#`` to choose it. ``files`` are the files
    holding this volume; read it with :func:`read_series` (which sees the whole series).
    """

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
    transfer_syntax: str = ""  # name and UID, e.g. "RLE Lossless (1.2.840.10008.1.2.5)"
    transfer_syntax_uid: str = ""
    n_frames: int = 0
    stack: int | None = None
    n_stacks: int = 1
    stack_label: str = ""
    stack_key: tuple | None = field(default=None, repr=False, compare=False)
    series_files: tuple[str, ...] = field(default=(), repr=False)

    @property
    def selector(self) -> str:
        """``UID`` or ``UID:N``: the text after ``folder#`` that picks this volume."""
        return self.uid if self.stack is None else f"{self.uid}:{self.stack}"


def parse_series_selector(text) -> tuple[str | None, int | None]:
    """``"UID"`` → (UID, None); ``"UID:2"`` → (UID, 2); ``":2"`` → (None, 2); None/"" → (None, None).

    Raises ValueError (one line) for a volume number that is not a positive integer.
    """
    text = str(text or "").strip()
    uid, sep, number = text.partition(":")
    uid = uid.strip() or None
    if not sep:
        return uid, None
    number = number.strip()
    if not number.isdigit() or int(number) < 1:
        raise ValueError(f"series selector {text!r}: after ':' comes the volume number (1, 2, …), not {number!r}")
    return uid, int(number)


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


def _listed_frames(path, header):
    """A file's frames for listing: classic ones from the partial header, Enhanced ones from
    the header read up to the pixel data (the functional groups lie after (0028,0011))."""
    if is_multiframe(header):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # reading will report it
            pass
    return frames_of(header, str(path), geometry=False)


def _series_entries(uid: str, members, folder: Path) -> list[DicomSeriesInfo]:
    first = members[0][1]
    number = first.get("SeriesNumber")
    description = describe_series(first, fallback=Path(members[0][0]).parent.name)
    kind = _kind_of(first)
    all_files = tuple(str(p) for p, _ in members)
    common = dict(
        uid=uid,
        modality=str(first.get("Modality", "")),
        kind=kind,
        sop_class_uid=str(first.get("SOPClassUID", "")),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")) or None,
        series_number=int(number) if number not in (None, "") else None,
        transfer_syntax=syntax_name(transfer_syntax_of(first)),
        transfer_syntax_uid=str(transfer_syntax_of(first)),
        series_files=all_files,
    )
    stacks = split_stacks([f for p, ds in members for f in _listed_frames(p, ds)]) if kind == "volume" else []
    if len(stacks) < 2:
        n_frames = len(stacks[0].frames) if stacks else len(members)
        return [DicomSeriesInfo(description=description, n_files=len(members), folder=_folder_of(all_files, folder),
                                files=all_files, n_frames=n_frames, stack_key=stacks[0].key if stacks else None, **common)]
    return [
        DicomSeriesInfo(description=f"{description} — {stack.label}", n_files=len(stack.files),
                        folder=_folder_of(stack.files, folder), files=stack.files, n_frames=len(stack.frames),
                        stack=stack.number, n_stacks=len(stacks), stack_label=stack.label, stack_key=stack.key, **common)
        for stack in stacks
    ]


def _folder_of(files, folder: Path) -> str:
    parents = {str(Path(p).parent) for p in files}
    return parents.pop() if len(parents) == 1 else str(folder)


def list_dicom_series(folder, recursive: bool = False) -> list[DicomSeriesInfo]:
    """The DICOM series in ``folder`` (sub-folders too when ``recursive``), told apart by
    SeriesInstanceUID, one entry per volume (stack), sorted by series number, description
    and stack. Headers only."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "not a folder; pass the folder holding the DICOM slices")
    groups: dict[str, list] = {}
    for path, ds in _scan_headers(folder, recursive):
        uid = str(ds.get("SeriesInstanceUID", "") or f"(no SeriesInstanceUID) {path.parent}")
        groups.setdefault(uid, []).append((path, ds))
    series = [_series_entries(uid, _one_file_per_instance(members), folder) for uid, members in groups.items()]
    series.sort(key=lambda entries: (entries[0].series_number is None, entries[0].series_number or 0,
                                     entries[0].description.rsplit(" — ", 1)[0] if entries[0].stack else entries[0].description))
    return [entry for entries in series for entry in entries]  # a series' volumes in stack order


def _series_list_text(infos) -> str:
    return "; ".join(f"{s.selector} ({s.description}, {s.modality}, {s.n_files} files)" for s in infos)


def _stack_list_text(infos) -> str:
    return "; ".join(f":{s.stack} = {s.stack_label} ({s.n_frames} frames)" for s in infos)


def _choose(infos, where, uid: str | None, stack: int | None, hint: str) -> DicomSeriesInfo:
    """The one entry that ``uid``/``stack`` pick among ``infos`` (entries of one place)."""
    if uid is not None:
        chosen = [s for s in infos if s.uid == uid]
        if not chosen:
            raise InputFileError(where, f"has no series {uid}; it holds: {_series_list_text(infos)}")
    else:
        chosen = [s for s in infos if s.kind == "volume"]
        if not chosen:
            raise InputFileError(where, f"holds no MR/CT image series (found: {_series_list_text(infos)})")
        uids = list(dict.fromkeys(s.uid for s in chosen))
        if len(uids) > 1:
            raise InputFileError(
                where, f"holds {len(uids)} image series; choose one by SeriesInstanceUID: {_series_list_text(chosen)}"
            )
    if stack is not None:
        picked = [s for s in chosen if (s.stack or 1) == stack]
        if not picked:
            raise InputFileError(where, f"series {chosen[0].uid} has no volume {stack}; it has {len(chosen)}: "
                                 f"{_stack_list_text(chosen) if len(chosen) > 1 else ':1'}")
        return picked[0]
    if len(chosen) > 1:
        raise InputFileError(
            where, f"series {chosen[0].uid} holds {len(chosen)} volumes; choose one as {hint}#{chosen[0].uid}:N: "
            f"{_stack_list_text(chosen)}")
    return chosen[0]


def _selector(where, text):
    try:
        return parse_series_selector(text)
    except ValueError as exc:
        raise InputFileError(where, str(exc)) from None


def read_dicom_series(folder, series_uid: str | None = None) -> Volume:
    """Read one image volume of ``folder`` as a :class:`Volume`.

    ``series_uid`` is a series selector (module docstring): ``UID``, ``UID:N`` or ``:N``.
    Without it the folder must hold exactly one image volume, otherwise the error lists the
    choices (selector and description).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputFileError(folder, "no such folder; check the path")
    uid, stack = _selector(folder, series_uid)
    infos = list_dicom_series(folder)
    if not infos:
        has_files = any(p.is_file() for p in folder.iterdir())
        reason = "holds no DICOM files" if has_files else "is empty"
        raise InputFileError(folder, f"{reason}; choose the folder that holds the series' .dcm slices")
    return read_series(_choose(infos, folder, uid, stack, hint=str(folder)), source=str(folder))


def read_series(info: DicomSeriesInfo, source: str | None = None) -> Volume:
    """Read the volume a :class:`DicomSeriesInfo` from :func:`list_dicom_series` describes."""
    files = info.series_files or info.files
    return read_dicom_files(files, source=source or info.folder, stack_key=info.stack_key)


def read_dicom_file_series(path, series_uid: str | None = None) -> Volume:
    """Read the volume that the DICOM file ``path`` belongs to (its series, from its folder).

    ``series_uid`` may be ``:N`` (or ``UID:N``) to pick volume N of a series that holds
    several; otherwise the volume holding ``path`` is read (an error lists the choices when
    the file holds several).
    """
    path = Path(path)
    _, stack = _selector(path, series_uid)
    try:
        ds = _read_header(path)
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from exc
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    instance = str(ds.get("SOPInstanceUID", "") or "")
    entries = [info for info in list_dicom_series(path.parent) if uid and info.uid == uid]
    if not entries:
        return read_dicom_files([str(path)], source=str(path))
    # the chosen file stands for its instance, whatever other copies the folder has
    listed = next((f for f in entries[0].series_files if _instance_of(f) == instance), None)
    if stack is None:
        holding = [e for e in entries if listed in e.files] or entries
        info = _choose(holding, path, uid, None, hint=str(path))
    else:
        info = _choose(entries, path, uid, stack, hint=str(path))
    files = [str(path) if f == listed else f for f in info.series_files]
    return read_dicom_files(files, source=str(path), stack_key=info.stack_key)


def _instance_of(path) -> str:
    try:
        return str(_read_header(path).get("SOPInstanceUID", "") or path)
    except Exception:
        return str(path)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_image_file(path: str):
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from exc
    if "PixelData" not in ds:
        raise InputFileError(path, "DICOM file has no pixel data (not an image slice); open the image series instead")
    if str(ds.get("SOPClassUID", "")) == WSI_SOP_CLASS:
        raise InputFileError(path, "is a whole-slide microscopy image, not an MRI slice; open it as a slide")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputFileError(path, "colour DICOM image; an MRI/CT slice must be grey-level")
    if is_multiframe(ds) and "PerFrameFunctionalGroupsSequence" not in ds and "SharedFunctionalGroupsSequence" not in ds:
        raise InputFileError(path, "multi-frame DICOM without functional groups: its frames cannot be placed in patient space")
    return ds


def read_dicom_files(files, source: str, stack_key: tuple | None = None) -> Volume:
    """Read the image files of one series into a :class:`Volume`.

    Classic slices and Enhanced files alike; ``stack_key`` (from :class:`DicomSeriesInfo`)
    picks one volume when the files hold several, otherwise they must hold exactly one.
    """
    files = [str(f) for f in files]
    if not files:
        raise InputFileError(source, "no DICOM slices to read")
    datasets = {f: _read_image_file(f) for f in files}
    multiframe = any(is_multiframe(ds) for ds in datasets.values())
    frames = [frame for f, ds in datasets.items() for frame in frames_of(ds, f)]
    stacks = split_stacks(frames)
    uid = str(next(iter(datasets.values())).get("SeriesInstanceUID", "") or "?")
    stack = pick_stack(stacks, stack_key, source, uid)
    pixels = {}
    for file in stack.files:
        indices = [f.index for f in stack.frames if f.file == file]
        decoded = decode_frames(datasets[file], file, indices)
        pixels.update({(file, i): array for i, array in zip(indices, decoded)})
    first = datasets[stack.frames[0].file]
    return stack_volume(stack, pixels, first, source, n_stacks=len(stacks), multiframe=multiframe)
