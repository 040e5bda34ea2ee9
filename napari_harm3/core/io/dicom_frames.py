"""Frames of a DICOM image series and their split into stacks (one stack = one volume).

Every image frame — a classic single-frame file, or one frame of an Enhanced / multi-frame
file — becomes a :class:`Frame`: where it lies (position, orientation, pixel spacing), how its
values are rescaled, its display windows, and what tells it apart from frames at the same place
(stack, echo, temporal position, diffusion b-value, complex component, other dimension indices).

Enhanced files (Siemens XA, Philips, GE; highdicom's legacy conversion) keep that per frame in
the Per-frame Functional Groups, with defaults in the Shared Functional Groups: Plane Position,
Plane Orientation, Pixel Measures, Pixel Value Transformation (rescale), Frame VOI LUT
(windows), Frame Content (StackID, TemporalPositionIndex, DimensionIndexValues), MR Echo
(EffectiveEchoTime), MR Diffusion (b-value) and MR Image Frame Type (complex component).
Classic files keep the same facts at the top level (EchoTime, EchoNumbers,
TemporalPositionIdentifier, ...).

:func:`split_stacks` groups frames whose distinguishing values agree (orientations equal to
1e-3; other dimension indices only where they tell apart frames at one position, so a slice
counter splits nothing) and numbers the groups 1, 2, ... in a fixed order (stack ID, time,
echo, b-value, component, other dimensions, orientation); each group's label names only what
differs between the groups, e.g. ``"stack 2, echo 2 (TE 80 ms)"``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from pydicom.datadict import keyword_for_tag
from pydicom.multival import MultiValue

from ..errors import InputFileError

#: dimension pointers that place a frame within its stack (not a reason to split)
_SPATIAL_POINTERS = {0x00200032, 0x00209057, 0x00201041}  # ImagePositionPatient, InStackPositionNumber, SliceLocation
#: dimension pointers already read into a named field of Frame
_NAMED_POINTERS = {0x00209056, 0x00209128, 0x00189082, 0x00189087, 0x00200100, 0x00180081, 0x00180086}
_ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Frame:
    """One image frame of a series: where it is, how to rescale it, and what tells it apart."""

    file: str
    index: int  # frame number in its file (0-based)
    rows: int
    columns: int
    orientation: tuple[float, ...] | None = None  # row then column direction cosines (LPS)
    position: tuple[float, float, float] | None = None  # centre of the first voxel (LPS mm)
    pixel_spacing: tuple[float, float] | None = None  # (between rows, between columns) mm
    slice_thickness: float | None = None
    slice_spacing: float | None = None  # SpacingBetweenSlices
    slope: float = 1.0
    intercept: float = 0.0
    windows: tuple[tuple[float, float, str], ...] = ()  # (centre, width, explanation)
    stack_id: str | None = None
    temporal: int | None = None
    echo_time: float | None = None  # ms
    echo_number: int | None = None
    b_value: float | None = None  # s/mm²
    component: str | None = None  # MAGNITUDE, PHASE, REAL, IMAGINARY
    dimensions: tuple[tuple[str, int], ...] = ()  # other non-spatial dimension indices

    def key(self, dimensions=None) -> tuple:
        """What must agree for two frames to belong to one volume (orientation aside); of the
        other dimension indices only those labelled in ``dimensions`` (all when None)."""
        echo = round(self.echo_time, 2) if self.echo_time is not None else self.echo_number
        dims = self.dimensions if dimensions is None else tuple(d for d in self.dimensions if d[0] in dimensions)
        return (self.stack_id, self.temporal, echo, self.b_value, self.component, dims)


@dataclass(frozen=True)
class Stack:
    """Frames that form one volume; ``number`` is 1-based within the series, ``label`` says
    what tells it apart from the series' other stacks ("" when the series is one stack)."""

    number: int
    key: tuple
    frames: tuple[Frame, ...]
    label: str = ""

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.file for f in self.frames))

    @property
    def echo_time(self) -> float | None:
        return self.frames[0].echo_time


def _number(value, kind=float):
    try:
        return kind(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _floats(value, count):
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return values if len(values) == count else None


def _multi(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def _windows(item) -> tuple[tuple[float, float, str], ...]:
    centres, widths = _multi(item.get("WindowCenter")), _multi(item.get("WindowWidth"))
    explanations = _multi(item.get("WindowCenterWidthExplanation"))
    out = []
    for n, (centre, width) in enumerate(zip(centres, widths)):
        c, w = _number(centre), _number(width)
        if c is not None and w is not None and w > 0:
            out.append((c, w, str(explanations[n]) if n < len(explanations) else ""))
    return tuple(out)


def _first(item, sequence: str):
    """The first item of ``item.<sequence>`` or None."""
    value = item.get(sequence) if item is not None else None
    return value[0] if value else None


class _Groups:
    """Look-ups in one frame's functional groups: the per-frame item first, then the shared one."""

    def __init__(self, per_frame, shared):
        self.items = [i for i in (per_frame, shared) if i is not None]

    def get(self, sequence: str, keyword: str):
        for item in self.items:
            inner = _first(item, sequence)
            if inner is not None and keyword in inner:
                return inner.get(keyword)
        return None

    def item(self, sequence: str):
        for item in self.items:
            inner = _first(item, sequence)
            if inner is not None:
                return inner
        return None


def _dimension_pointers(ds) -> list[tuple[int, str]]:
    pointers = []
    for item in ds.get("DimensionIndexSequence", None) or []:
        tag = int(item.get("DimensionIndexPointer", 0) or 0)
        label = str(item.get("DimensionDescriptionLabel", "") or "") or keyword_for_tag(tag) or f"dimension {tag:08X}"
        pointers.append((tag, label))
    return pointers


def _other_dimensions(pointers, values) -> tuple[tuple[str, int], ...]:
    values = [_number(v, int) for v in _multi(values)]
    if len(values) != len(pointers):
        return ()
    return tuple(
        (label, value)
        for (tag, label), value in zip(pointers, values)
        if tag not in _SPATIAL_POINTERS and tag not in _NAMED_POINTERS and value is not None
    )


def _component(value) -> str | None:
    text = str(value or "").strip().upper()
    return text or None


def enhanced_frames(ds, path: str) -> list[Frame]:
    """The frames of an Enhanced / multi-frame file, from its functional groups."""
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", None) or []
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    pointers = _dimension_pointers(ds)
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    top_windows = _windows(ds)
    frames = []
    for index in range(n_frames):
        groups = _Groups(per_frame[index] if index < len(per_frame) else None, shared)
        voi = groups.item("FrameVOILUTSequence")
        content = groups.item("FrameContentSequence")
        unassigned = [groups.item("UnassignedPerFrameConvertedAttributesSequence"),
                      groups.item("UnassignedSharedConvertedAttributesSequence")]
        echo = _number(groups.get("MREchoSequence", "EffectiveEchoTime"))
        if echo is None:  # legacy-converted files keep EchoTime among the unassigned attributes
            echo = next((_number(u.get("EchoTime")) for u in unassigned if u is not None and u.get("EchoTime") not in (None, "")), None)
        frames.append(
            Frame(
                file=path,
                index=index,
                rows=rows,
                columns=columns,
                orientation=_floats(groups.get("PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                position=_floats(groups.get("PlanePositionSequence", "ImagePositionPatient"), 3),
                pixel_spacing=_floats(groups.get("PixelMeasuresSequence", "PixelSpacing"), 2),
                slice_thickness=_number(groups.get("PixelMeasuresSequence", "SliceThickness")),
                slice_spacing=_number(groups.get("PixelMeasuresSequence", "SpacingBetweenSlices")),
                slope=_number(groups.get("PixelValueTransformationSequence", "RescaleSlope")) or 1.0,
                intercept=_number(groups.get("PixelValueTransformationSequence", "RescaleIntercept")) or 0.0,
                windows=_windows(voi) if voi is not None else top_windows,
                stack_id=str(content.get("StackID")) if content is not None and content.get("StackID") not in (None, "") else None,
                temporal=_number(content.get("TemporalPositionIndex"), int) if content is not None else None,
                echo_time=echo,
                b_value=_number(groups.get("MRDiffusionSequence", "DiffusionBValue")),
                component=_component(groups.get("MRImageFrameTypeSequence", "ComplexImageComponent")),
                dimensions=_other_dimensions(pointers, content.get("DimensionIndexValues")) if content is not None else (),
            )
        )
    return frames


def classic_frame(ds, path: str, geometry: bool = True) -> Frame:
    """The one frame of a classic single-frame file. Its distinguishing values all come before
    (0028,0011), so a partial header gives the same :meth:`Frame.key`; ``geometry=False``
    skips position, spacing, rescale and windows (listing needs only the key)."""
    echo_numbers = _multi(ds.get("EchoNumbers"))
    frame = Frame(
        file=path,
        index=0,
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        temporal=_number(ds.get("TemporalPositionIdentifier"), int),
        echo_time=_number(ds.get("EchoTime")),
        echo_number=_number(echo_numbers[0], int) if echo_numbers else None,
        b_value=_number(ds.get("DiffusionBValue")),
        component=_component(ds.get("ComplexImageComponent")),
    )
    if not geometry:
        return frame
    return replace(
        frame,
        position=_floats(ds.get("ImagePositionPatient"), 3),
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),
        slice_thickness=_number(ds.get("SliceThickness")),
        slice_spacing=_number(ds.get("SpacingBetweenSlices")),
        slope=_number(ds.get("RescaleSlope")) or 1.0,
        intercept=_number(ds.get("RescaleIntercept")) or 0.0,
        windows=_windows(ds),
    )


def is_multiframe(ds) -> bool:
    """True for a file with more than one frame or with functional groups."""
    return int(ds.get("NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in ds


def frames_of(ds, path: str, geometry: bool = True) -> list[Frame]:
    """The frames of one file (classic or enhanced); see :func:`classic_frame` for ``geometry``."""
    return enhanced_frames(ds, str(path)) if is_multiframe(ds) else [classic_frame(ds, str(path), geometry)]


def plane_name(orientation) -> str:
    """``"axial"``, ``"coronal"`` or ``"sagittal"`` from the slice normal's main LPS axis."""
    if orientation is None:
        return "unknown plane"
    normal = np.cross(orientation[:3], orientation[3:])
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


def _orientation_groups(frames) -> tuple[list[int], list]:
    """Cluster number of each frame's orientation (equal to 1e-3), in order of appearance, and
    each cluster's orientation (its first frame's; None when frames have none)."""
    representatives, out = [], []
    for frame in frames:
        o = frame.orientation
        for n, rep in enumerate(representatives):
            if (o is None and rep is None) or (o is not None and rep is not None and np.allclose(o, rep, atol=_ORIENTATION_TOLERANCE)):
                out.append(n)
                break
        else:
            representatives.append(o)
            out.append(len(representatives) - 1)
    return out, representatives


def _sortable(value):
    if value is None:
        return (0, 0, "")
    if isinstance(value, str):
        return (1, int(value), "") if value.strip().isdigit() else (1, 0, value)
    return (1, value, "") if not isinstance(value, tuple) else (1, 0, str(value))


def _splitting_dimensions(frames, clusters) -> set[str]:
    """The other dimension indices that tell apart frames lying at one place. An index that
    only numbers the slices of a stack (an acquisition or slice counter) splits nothing."""
    first_at: dict[tuple, dict] = {}
    needed: set[str] = set()
    for frame, cluster in zip(frames, clusters):
        if not frame.dimensions or frame.position is None:
            continue
        spot = (frame.key(dimensions=()), cluster, tuple(np.round(frame.position, 2)))
        values = dict(frame.dimensions)
        other = first_at.setdefault(spot, values)
        needed |= {label for label, value in values.items() if other is not values and other.get(label) != value}
    return needed


def split_stacks(frames) -> list[Stack]:
    """Group ``frames`` into stacks (see the module docstring), numbered from 1. A stack's
    key is the frames' :meth:`Frame.key` (with the dimensions that split) plus their orientation."""
    clusters, orientations = _orientation_groups(frames)
    dimensions = _splitting_dimensions(frames, clusters)
    groups: dict[tuple, list[Frame]] = {}
    for frame, cluster in zip(frames, clusters):
        groups.setdefault(frame.key(dimensions) + (cluster,), []).append(frame)
    order = sorted(groups, key=lambda k: tuple(_sortable(v) for v in k))
    keys = {k: k[:-1] + (orientations[k[-1]],) for k in order}
    labels = _labels(order, groups)
    return [Stack(number=n, key=keys[k], frames=tuple(groups[k]), label=labels[k]) for n, k in enumerate(order, start=1)]


def _labels(keys, groups) -> dict[tuple, str]:
    if len(keys) < 2:
        return {k: "" for k in keys}
    varying = [len({k[i] for k in keys}) > 1 for i in range(len(keys[0]))]
    echo_rank = {e: n for n, e in enumerate(sorted({k[2] for k in keys if k[2] is not None}), start=1)}
    planes = {k: plane_name(groups[k][0].orientation) for k in keys}
    labels = {}
    for k in keys:
        stack_id, temporal, echo, b_value, component, dimensions, _cluster = k
        first = groups[k][0]
        parts = []
        if varying[0]:
            parts.append(f"stack {stack_id}" if stack_id is not None else "no stack ID")
        if varying[6]:
            same_plane = [j for j in keys if planes[j] == planes[k]]
            parts.append(planes[k] if len(same_plane) == 1 else f"{planes[k]} {same_plane.index(k) + 1}")
        if varying[1]:
            parts.append(f"time point {temporal}" if temporal is not None else "no time point")
        if varying[2] and echo is not None:
            te = f" (TE {first.echo_time:g} ms)" if first.echo_time is not None else ""
            parts.append(f"echo {echo_rank[echo]}{te}")
        if varying[3]:
            parts.append(f"b = {b_value:g} s/mm²" if b_value is not None else "no b-value")
        if varying[4]:
            parts.append((component or "no component").lower())
        if varying[5]:
            parts.append(", ".join(f"{label} {value}" for label, value in dimensions) or "no other index")
        labels[k] = ", ".join(parts)
    return labels


def same_key(a: tuple, b: tuple) -> bool:
    """Stack keys agree: equal values, orientations equal to 1e-3."""
    if a[:-1] != b[:-1]:
        return False
    return (a[-1] is None and b[-1] is None) or (a[-1] is not None and b[-1] is not None and np.allclose(a[-1], b[-1], atol=1e-3))


def pick_stack(stacks: list[Stack], stack_key, source, uid: str) -> Stack:
    """The stack whose key is ``stack_key``; without a key, the only stack (else one line
    listing the choices)."""
    if stack_key is not None:
        for stack in stacks:
            if same_key(stack.key, stack_key):
                return stack
        raise InputFileError(source, "the volume listed earlier is no longer among these files; list the folder again")
    if len(stacks) > 1:
        choices = "; ".join(f":{s.number} = {s.label} ({len(s.frames)} frames)" for s in stacks)
        raise InputFileError(source, f"series {uid} holds {len(stacks)} volumes; choose one as <folder>#{uid}:N: {choices}")
    return stacks[0]
