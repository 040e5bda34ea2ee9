"""Tumour response, measured: volume (mL) and longest axial diameter (mm) before and after treatment.

Input are tumour masks — a :class:`~napari_harm3.core.io.masks.LabelVolume` or any
:class:`~napari_harm3.core.io.mri.Volume` of labels (drawn in napari, rasterised from an RTSTRUCT,
or propagated from pre to post with :func:`propagate_mask`) whose affine places them in the
case's reference frame (``core/mri/case_volumes.py`` does that). One record per contrast (T1, T2):
its pre- and post-treatment sizes, the percentage change and the registration the two masks were
related through.

Definitions (also in :data:`AXIAL_DEFINITION`, which goes into every JSON):

- **volume** = voxels inside × the voxel volume |det(affine)| (mL = cm³). A voxel is inside when
  its value is the tumour label (RTSTRUCT rasterising already decided by voxel centres).
- **axial** = perpendicular to the patient's superior–inferior axis (world z, LPS) of the frame
  the mask is in: for a case, the reference scan's (t1_pre) patient frame. A volume whose slice
  axis is the index axis closest to z (an axial or oblique-axial acquisition, up to 45° of tilt)
  is measured on its own slices, each slice's pixels projected onto the axial plane (for the
  real STS_001 T1, tilted 2°, the projection shortens lengths by 0.06 %). A volume acquired in
  another plane (coronal, sagittal) is first resliced by nearest neighbour onto an axial grid in
  world coordinates (in-plane step = its finest spacing; section step = its spacing along the
  axis closest to z), so no label is invented.
- **longest axial diameter** = the largest distance, in the axial plane, between two points of
  one section's pixels, taken as little squares (edge to edge, not centre to centre), maximised
  over sections. For a disc of diameter D drawn on pixels of side h it lies within
  [D − h, D + h·√2]; the section it comes from and its two end points are kept.
- **percentage change** = 100 · (post − pre) / pre; None when either is absent or pre is 0.

A mask propagated from pre to post and not edited measures the pre-treatment tumour's region
on the post scan, not the response; its record says where it came from (``mask_origin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ..errors import Harm3Error
from ..io.masks import LabelVolume
from ..vocabulary import SEQUENCES, sequence_title

AXIAL_DEFINITION = (
    "axial = perpendicular to the superior-inferior axis of the reference scan's patient frame (LPS z); "
    "axial or oblique-axial volumes (slice axis closest to z) are measured on their own slices projected onto "
    "the axial plane, coronal/sagittal ones after nearest-neighbour axial reslicing; diameter = largest in-plane "
    "distance across one section's pixels (edge to edge), maximised over sections; volume = voxels x |det(affine)|"
)
#: contrast → (pre sequence, post sequence)
CONTRASTS = {"T1": ("t1_pre", "t1_post"), "T2": ("t2_pre", "t2_post")}
_TUMOUR_NAME = re.compile(r"mass|tumou?r|gtv|lesion|mask", re.IGNORECASE)
_NOT_TUMOUR = re.compile(r"o?edema|ctv|ptv|organ|node", re.IGNORECASE)


@dataclass(frozen=True)
class TumourSize:
    """A tumour mask's volume and longest axial diameter."""

    sequence: str                     # the scan the mask lies on (t1_pre …)
    label: str                        # the label's name (e.g. "GTV_Mass")
    volume_ml: float
    longest_axial_diameter_mm: float
    voxels: int
    section_z_mm: float | None        # world z (reference frame) of the section with the longest diameter
    diameter_endpoints_mm: tuple      # ((z, y, x), (z, y, x)) world mm of its two ends; () when empty
    sections: str                     # "own slices" or "axial reslice"
    mask_origin: str = ""             # "RTSTRUCT", "NIfTI labels", "drawn", "propagated from T1-pre …"

    def to_dict(self) -> dict:
        return {"sequence": self.sequence, "label": self.label, "volume_ml": self.volume_ml,
                "longest_axial_diameter_mm": self.longest_axial_diameter_mm, "voxels": self.voxels,
                "section_z_mm": self.section_z_mm,
                "diameter_endpoints_mm": [list(p) for p in self.diameter_endpoints_mm],
                "sections": self.sections, "mask_origin": self.mask_origin}


@dataclass(frozen=True)
class TumourResponse:
    """One contrast's tumour before and after treatment, and how the two were related."""

    contrast: str                     # "T1" or "T2"
    pre: TumourSize | None
    post: TumourSize | None
    volume_change_percent: float | None
    diameter_change_percent: float | None
    registration: str                 # how post was brought into the frame of pre
    note: str = ""

    def to_dict(self) -> dict:
        return {"contrast": self.contrast, "pre": None if self.pre is None else self.pre.to_dict(),
                "post": None if self.post is None else self.post.to_dict(),
                "volume_change_percent": self.volume_change_percent,
                "diameter_change_percent": self.diameter_change_percent,
                "registration": self.registration, "note": self.note}


@dataclass(frozen=True)
class TumourResponseReport:
    """The case's response records (one per contrast with a mask) and the definitions used."""

    responses: tuple = ()
    axial_definition: str = AXIAL_DEFINITION

    def to_dict(self) -> dict:
        return {"axial_definition": self.axial_definition, "responses": [r.to_dict() for r in self.responses]}

    def sizes(self) -> list:
        """Every :class:`TumourSize` measured, pre before post."""
        return [s for r in self.responses for s in (r.pre, r.post) if s is not None]


# ---------------------------------------------------------------- which label is the tumour


def tumour_label(mask, label=None) -> tuple[int, str]:
    """(label value, name) of the tumour in ``mask``.

    ``label`` may be a value or a name. Without it: the only label; else the first whose name
    says mass/tumour/GTV/lesion and not oedema (STS_001: ``GTV_Mass`` over ``GTV_Edema``); else
    the lowest label.
    """
    names = {int(k): str(v) for k, v in dict(getattr(mask, "label_names", {}) or {}).items()}
    present = [int(v) for v in np.unique(np.asarray(mask.data)) if v != 0]
    if label is not None:
        if isinstance(label, str):
            found = [k for k, v in names.items() if v == label]
            if not found:
                raise Harm3Error(f"the mask has no label named {label!r} (it has {', '.join(names.values()) or 'none'})")
            return found[0], label
        return int(label), names.get(int(label), f"label {int(label)}")
    if not present:
        return 1, names.get(1, "mask")
    if len(present) == 1:
        return present[0], names.get(present[0], "mask")
    for value in present:
        name = names.get(value, "")
        if _TUMOUR_NAME.search(name) and not _NOT_TUMOUR.search(name):
            return value, name
    return present[0], names.get(present[0], f"label {present[0]}")


def mask_origin(mask) -> str:
    """How a mask was made, from its metadata: "RTSTRUCT", "NIfTI labels", "drawn" or what it says."""
    metadata = dict(getattr(mask, "metadata", {}) or {})
    if metadata.get("propagated_from"):
        return str(metadata["propagated_from"])
    fmt = str(metadata.get("format", ""))
    if "RTSTRUCT" in fmt:
        return "RTSTRUCT"
    if fmt == "NIfTI":
        return "NIfTI labels"
    return str(metadata.get("origin", "drawn"))


# ---------------------------------------------------------------- the measurements


def _axis_closest_to_z(affine) -> int:
    columns = np.asarray(affine, float)[:3, :3]
    cosines = np.abs(columns[0]) / np.linalg.norm(columns, axis=0)   # world z part of each index axis
    return int(np.argmax(cosines))


def _section_diameter(centres_yx: np.ndarray, corner_offsets: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest distance across pixels (centres (N, 2) + the pixel's corner offsets (4, 2))."""
    points = centres_yx
    if len(points) >= 3:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # collinear centres: every point is needed
            pass
    corners = (points[:, None, :] + corner_offsets[None, :, :]).reshape(-1, 2)
    if len(corners) >= 3:
        try:
            corners = corners[ConvexHull(corners).vertices]
        except QhullError:
            pass
    gaps = np.linalg.norm(corners[:, None, :] - corners[None, :, :], axis=-1)
    a, b = np.unravel_index(int(np.argmax(gaps)), gaps.shape)
    return float(gaps[a, b]), corners[a], corners[b]


def _axial_reslice(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour reslice of a boolean mask onto an axial, world-aligned grid around it."""
    index = np.argwhere(mask)
    corners = np.array([[k, j, i] for k in (index[:, 0].min() - 1, index[:, 0].max() + 1)
                        for j in (index[:, 1].min() - 1, index[:, 1].max() + 1)
                        for i in (index[:, 2].min() - 1, index[:, 2].max() + 1)], float)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    step_z = float(spacing[_axis_closest_to_z(affine)])
    step_xy = float(spacing.min())
    low, high = world.min(axis=0), world.max(axis=0)
    steps = np.array([step_z, step_xy, step_xy])
    shape = tuple(int(n) for n in np.ceil((high - low) / steps) + 1)
    grid_affine = np.eye(4)
    grid_affine[:3, :3] = np.diag(steps)
    grid_affine[:3, 3] = low
    to_source = np.linalg.inv(affine) @ grid_affine                   # axial index → source index
    resliced = ndimage.affine_transform(mask.astype(np.uint8), to_source[:3, :3], offset=to_source[:3, 3],
                                        output_shape=shape, order=0, mode="constant", cval=0)
    return resliced.astype(bool), grid_affine


def longest_axial_diameter(mask, affine) -> tuple[float, float | None, tuple, str]:
    """(diameter mm, section z mm, ((z, y, x), (z, y, x)) end points, "own slices"/"axial reslice")
    of a boolean mask on a grid with ``affine`` ((k, j, i) → world (z, y, x) mm); see the module
    docstring for the definitions. An empty mask gives (0.0, None, (), …)."""
    mask = np.asarray(mask, dtype=bool)
    affine = np.asarray(affine, dtype=float)
    if not mask.any():
        return 0.0, None, (), "own slices"
    sections = "own slices"
    if _axis_closest_to_z(affine) != 0:
        mask, affine = _axial_reslice(mask, affine)
        sections = "axial reslice"
    matrix = affine[:3, :3]
    half_row, half_col = matrix[1:, 1] / 2.0, matrix[1:, 2] / 2.0     # (y, x) of half a pixel step
    corner_offsets = np.array([s * half_row + t * half_col for s in (-1, 1) for t in (-1, 1)])
    best = (0.0, None, ())
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        rows, cols = np.nonzero(mask[k])
        index = np.column_stack([np.full(rows.size, k), rows, cols]).astype(float)
        world = index @ matrix.T + affine[:3, 3]                          # (N, 3) z, y, x
        diameter, a, b = _section_diameter(world[:, 1:], corner_offsets)
        if diameter > best[0]:
            z = float(world[:, 0].mean())
            best = (diameter, z, ((z, float(a[0]), float(a[1])), (z, float(b[0]), float(b[1]))))
    return best[0], best[1], best[2], sections


def measure_tumour(mask, sequence: str, label=None, origin: str | None = None) -> TumourSize:
    """Volume and longest axial diameter of the tumour label of ``mask`` (a label Volume)."""
    value, name = tumour_label(mask, label)
    inside = np.asarray(mask.data) == value
    voxel_ml = abs(float(np.linalg.det(np.asarray(mask.affine, float)[:3, :3]))) / 1000.0
    diameter, z, ends, sections = longest_axial_diameter(inside, mask.affine)
    count = int(np.count_nonzero(inside))
    return TumourSize(sequence=sequence, label=name, volume_ml=count * voxel_ml, longest_axial_diameter_mm=diameter,
                      voxels=count, section_z_mm=z, diameter_endpoints_mm=ends, sections=sections,
                      mask_origin=origin if origin is not None else mask_origin(mask))


def percent_change(before: float | None, after: float | None) -> float | None:
    """100 · (after − before) / before; None when one is missing or before is 0."""
    if before is None or after is None or before == 0:
        return None
    return 100.0 * (after - before) / before


# ---------------------------------------------------------------- propagation between grids


def propagate_mask(mask, target, label=None, from_sequence: str = "", registration: str = ""):
    """The tumour label of ``mask`` resampled onto ``target``'s grid through world coordinates.

    Both must be in one frame (the case seam puts them in the reference frame, so a registration
    transform is already in their affines). Trilinear interpolation of the label's indicator,
    kept where ≥ 0.5 (preserves volume better than nearest neighbour). Returns a LabelVolume with
    label 1 named like the source label, ``metadata["propagated_from"]`` saying from where.
    """

    value, name = tumour_label(mask, label)
    indicator = (np.asarray(mask.data) == value).astype(np.float32)
    to_source = np.linalg.inv(np.asarray(mask.affine, float)) @ np.asarray(target.affine, float)
    sampled = ndimage.affine_transform(indicator, to_source[:3, :3], offset=to_source[:3, 3],
                                       output_shape=tuple(target.shape), order=1, mode="constant", cval=0.0)
    how = f"propagated from {sequence_title(from_sequence) if from_sequence else mask.name}"
    how += f", {registration}" if registration else ""
    return LabelVolume(data=(sampled >= 0.5).astype(np.uint8), affine=np.asarray(target.affine, float).copy(),
                       name=f"{name} (propagated)", source=str(getattr(mask, "source", "")),
                       description=how, series_uid=None,
                       frame_of_reference_uid=getattr(target, "frame_of_reference_uid", None),
                       metadata={"format": "propagated", "kind": "labels", "propagated_from": how,
                                 "reference_series_uid": getattr(target, "series_uid", None)},
                       label_names={1: name})


# ---------------------------------------------------------------- the case's response


def registration_text(pre: str, post: str, transforms: dict, frames: dict | None = None) -> str:
    """How ``post``'s mask was related to ``pre``'s: the transform files applied, or why none was needed."""
    used = [f"{sequence_title(s)}: {Path(str(getattr(t, 'source', '') or '')).name or 'in memory'} "
            f"({getattr(t, 'kind', 'transform')})" for s, t in ((pre, transforms.get(pre)), (post, transforms.get(post)))
            if t is not None]
    if used:
        return "onto the reference frame through " + "; ".join(used)
    frames = frames or {}
    if frames.get(pre) and frames.get(pre) == frames.get(post):
        return "no registration: same scanner frame of reference"
    return "no registration (the case has no transform for them)"


def measure_response(masks: dict, transforms: dict | None = None, origins: dict | None = None,
                     frames: dict | None = None, label=None) -> TumourResponseReport:
    """Response records from ``masks`` ({sequence: label Volume} in one frame).

    ``transforms``: {sequence: WorldTransform} applied to bring each into the reference frame
    (for the record); ``origins``: {sequence: how the mask was made} overriding its metadata
    (e.g. "propagated from T1-pre, edited"); ``frames``: {sequence: FrameOfReferenceUID}.
    """
    transforms, origins = dict(transforms or {}), dict(origins or {})
    unknown = sorted(set(masks) - set(SEQUENCES))
    if unknown:
        raise Harm3Error(f"tumour masks for unknown sequences: {', '.join(unknown)} (expected {', '.join(SEQUENCES)})")
    responses = []
    for contrast, (pre_key, post_key) in CONTRASTS.items():
        if pre_key not in masks and post_key not in masks:
            continue
        sizes = {key: measure_tumour(masks[key], key, label, origins.get(key)) if key in masks else None
                 for key in (pre_key, post_key)}
        pre, post = sizes[pre_key], sizes[post_key]
        note = ""
        if post is None:
            note = f"no {sequence_title(post_key)} mask: the change is not measured"
        elif pre is None:
            note = f"no {sequence_title(pre_key)} mask: the change is not measured"
        elif post.mask_origin.startswith("propagated") and "edited" not in post.mask_origin:
            note = "the post mask is the pre mask propagated and not edited: it measures the pre tumour's region"
        responses.append(TumourResponse(
            contrast=contrast, pre=pre, post=post,
            volume_change_percent=percent_change(pre and pre.volume_ml, post and post.volume_ml),
            diameter_change_percent=percent_change(pre and pre.longest_axial_diameter_mm,
                                                   post and post.longest_axial_diameter_mm),
            registration=registration_text(pre_key, post_key, transforms, frames) if pre and post else "",
            note=note))
    return TumourResponseReport(responses=tuple(responses))


def case_tumour_response(case_volumes, label=None, origins: dict | None = None) -> TumourResponseReport:
    """:func:`measure_response` of a :class:`~napari_harm3.core.mri.case_volumes.CaseVolumes`
    (masks already in the reference frame, transforms as the seam applied them)."""
    frames = {s: getattr(v, "frame_of_reference_uid", None) for s, v in case_volumes.volumes.items()}
    return measure_response(dict(case_volumes.masks), case_volumes.transforms, origins, frames, label)
