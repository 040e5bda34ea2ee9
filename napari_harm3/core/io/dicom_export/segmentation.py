"""Tumour masks as a DICOM Segmentation (SEG, binary) on their source series' geometry.

One SEG per source series: one segment per mask label (an RTSTRUCT's ``GTV_Mass`` and
``GTV_Edema`` as read onto the series, where the mass is painted over the oedema), plus the
masks propagated onto this series from another time point (algorithm type SEMIAUTOMATIC, their
description saying from where and through which registration). highdicom writes the geometry
(plane positions, orientation, pixel measures) from the mask's affine and references, frame by
frame, the source image each frame lies on; :func:`read_segmentation` reads it back onto our grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import pydicom

from ...errors import Harm3Error
from . import codes
from .common import ExportSettings, SourceSeries, finish, highdicom_affine, identity_copies, new_uid, on_grid

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_EDEMA = re.compile(r"o?edema", re.IGNORECASE)
_TUMOUR = re.compile(r"mass|tumou?r|gtv", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class SegmentSpec:
    """One segment: a boolean mask on the source series' voxels and what it is."""

    label: str                   # e.g. "GTV_Mass"
    mask: np.ndarray             # (nz, ny, nx) bool on the source series' grid
    propagated_from: str = ""    # e.g. "propagated from T1-pre through t1_post.tfm"; "" = drawn/RTSTRUCT


def segments_of(labels, propagated_from: str = "") -> list:
    """A :class:`SegmentSpec` per label present in a LabelVolume (its names as labels)."""
    names = dict(getattr(labels, "label_names", {}) or {})
    data = np.asarray(labels.data)
    return [SegmentSpec(label=str(names.get(int(v), f"label {int(v)}")), mask=data == v, propagated_from=propagated_from)
            for v in np.unique(data) if v != 0]


def _property_type(label: str):
    if _EDEMA.search(label):
        return codes.EDEMA
    if _TUMOUR.search(label):
        return codes.TUMOUR
    return codes.LESION


def _description(number: int, segment: SegmentSpec, settings: ExportSettings) -> hd.seg.SegmentDescription:
    common = {"segment_number": number, "segment_label": segment.label[:64],
              "segmented_property_category": codes.ABNORMAL_STRUCTURE,
              "segmented_property_type": _property_type(segment.label),
              "tracking_id": segment.label[:64], "tracking_uid": new_uid()}
    if not segment.propagated_from:
        return hd.seg.SegmentDescription(algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL, **common)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="napari-harm3 mask propagation", family=codes.SPATIAL_REGISTRATION, version=settings.software_version,
        parameters={"method": segment.propagated_from[:64]})
    return hd.seg.SegmentDescription(algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                                     algorithm_identification=algorithm, **common)


def build_segmentation(source: SourceSeries, affine, segments, settings: ExportSettings, series_number: int,
                       series_description: str = "napari-harm3 tumour masks") -> hd.seg.Segmentation:
    """A binary SEG of ``segments`` (:class:`SegmentSpec`, all on ``source``'s grid given by ``affine``,
    ours: (k, j, i) → (z, y, x))."""
    segments = [s for s in segments if np.any(s.mask)]
    if not segments:
        raise Harm3Error(f"no mask voxels to write for series {source.description or source.series_uid}")
    shape = np.shape(segments[0].mask)
    source.check_grid(affine, shape, f"mask {segments[0].label}")
    if any(np.shape(s.mask) != shape for s in segments):
        raise Harm3Error("the masks of one segmentation must share one grid")
    stack = np.stack([np.asarray(s.mask, dtype=bool) for s in segments], axis=-1).astype(np.uint8)  # (n, r, c, S)
    volume = hd.Volume(stack, highdicom_affine(affine), coordinate_system="PATIENT",
                       frame_of_reference_uid=source.frame_of_reference_uid,
                       channels={"SegmentNumber": list(range(1, len(segments) + 1))})
    seg = hd.seg.Segmentation(
        source_images=identity_copies(source.datasets, settings), pixel_array=volume,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(n, s, settings) for n, s in enumerate(segments, start=1)],
        series_instance_uid=new_uid(), series_number=series_number, sop_instance_uid=new_uid(), instance_number=1,
        series_description=series_description[:64], content_label="TUMOUR", content_description="tumour masks",
        **settings.equipment())
    return finish(seg, settings)


def read_segmentation(path_or_dataset, affine, shape) -> dict:
    """{segment label: bool mask} of a SEG, on the grid ``shape``/``affine`` (ours)."""
    ds = path_or_dataset if isinstance(path_or_dataset, pydicom.Dataset) else pydicom.dcmread(str(path_or_dataset))
    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    reference = hd.VolumeGeometry(highdicom_affine(affine), tuple(shape), coordinate_system="PATIENT",
                                  frame_of_reference_uid=str(ds.FrameOfReferenceUID))
    out = {}
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        volume = seg.get_volume(segment_numbers=[number], combine_segments=True, skip_overlap_checks=True)
        matched = on_grid(volume, reference)
        out[str(item.SegmentLabel)] = np.asarray(matched.array) > 0
    return out


__all__ = ["SegmentSpec", "segments_of", "build_segmentation", "read_segmentation", "SEG_SOP_CLASS"]
