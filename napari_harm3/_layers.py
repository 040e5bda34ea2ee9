"""Core objects → napari LayerData tuples (glue: no Qt, no viewer).

Shared by the case reader, the sample data and the case panel, so a volume looks the same
wherever it is opened:

- MRI :class:`~napari_harm3.core.io.mri.Volume` → ``image`` layer with the volume's affine
  (index → world LPS mm), units mm, contrast limits from the automatic window;
- tumour mask (:class:`~napari_harm3.core.io.masks.LabelVolume`) → ``labels`` layer on its own
  affine (so it lines up with every sequence of the same frame of reference);
- :class:`~napari_harm3.core.io.wsi.Slide` → lazy multiscale RGB ``image`` with
  ``scale = (mpp, mpp)`` and units µm (pixels when the mpp is unknown).

:func:`load_case_layers` reads a whole :class:`~napari_harm3.core.io.case.Case` (the slow part,
run in a worker thread by the case panel) and returns everything the viewers need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .core.progress import ProgressFn, report

LayerData = tuple  # (data, kwargs, layer_type)

#: sequence key → display title
SEQUENCE_TITLES = {"t1_pre": "T1-pre", "t1_post": "T1-post", "t2_pre": "T2-pre", "t2_post": "T2-post"}


def _merge(layer_data: LayerData, name, metadata, overrides) -> LayerData:
    data, kwargs, kind = layer_data
    kwargs = dict(kwargs)
    kwargs["metadata"] = {**dict(kwargs.get("metadata") or {}), **(metadata or {})}
    if name:
        kwargs["name"] = name
    kwargs.update(overrides)
    return (data, kwargs, kind)


def volume_layer(volume, name: str | None = None, metadata: dict | None = None, **kwargs) -> LayerData:
    """An MRI volume as an ``image`` LayerData on its world (mm) affine, auto-windowed."""
    from ._reader_mri import volume_layer_data

    base = {"units": "mm", "axis_labels": ("z", "y", "x")}
    return _merge(volume_layer_data(volume), name, {"harm3_kind": "mri", **(metadata or {})}, {**base, **kwargs})


def mask_layer(mask, name: str | None = None, metadata: dict | None = None, **kwargs) -> LayerData:
    """A tumour mask (label volume) as a ``labels`` LayerData on its own affine."""
    from ._reader_mri import labels_layer_data

    base = {"units": "mm", "axis_labels": ("z", "y", "x"), "opacity": 0.5}
    return _merge(labels_layer_data(mask), name, {"harm3_kind": "mask", **(metadata or {})}, {**base, **kwargs})


def slide_layer(slide, name: str | None = None, metadata: dict | None = None, **kwargs) -> LayerData:
    """A whole-slide image as a lazy multiscale RGB ``image`` LayerData, ``scale=(mpp, mpp)`` µm."""
    from ._reader_wsi import slide_layer_data

    meta = {"harm3_kind": "slide", "mpp_missing": slide.mpp is None, **(metadata or {})}
    return _merge(slide_layer_data(slide), name, meta, kwargs)


@dataclass
class CaseLayers:
    """Everything the viewers need for one case, read off the disk (no viewer touched)."""

    case_id: str
    volumes: dict[str, LayerData] = field(default_factory=dict)  # sequence → image
    masks: dict[str, list[LayerData]] = field(default_factory=dict)  # sequence → labels
    slide: Optional[LayerData] = None
    slide_thumbnail: Optional[np.ndarray] = None
    slide_mpp: Optional[float] = None
    labels: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    case: Any = None

    def mri_layer_data(self) -> list[LayerData]:
        """Volumes then masks, as one list (the case reader's answer)."""
        out = list(self.volumes.values())
        for layers in self.masks.values():
            out.extend(layers)
        return out


def load_case_layers(case, progress: ProgressFn | None = None, thumbnail_size: int = 512) -> CaseLayers:
    """Read the volumes, masks and slide of ``case`` into LayerData (slow: call in a worker).

    Raises the core's :class:`~napari_harm3.core.errors.Harm3Error` for unreadable files. A
    mask is rasterised on the grid of its own sequence (RTSTRUCT) and keeps its own affine.
    """
    from .core.io.masks import read_mask
    from .core.io.mri import read_volume

    sequences = [s for s in SEQUENCE_TITLES if case.mri.get(s)] + [s for s in case.mri if s not in SEQUENCE_TITLES]
    masks = [s for s in (case.masks or {}) if case.masks.get(s)]
    steps = len(sequences) + len(masks) + (1 if case.slide else 0)
    labels = case.labels.as_dict() if hasattr(case.labels, "as_dict") else dict(case.labels or {})
    out = CaseLayers(case_id=str(case.case_id), labels=labels, case=case)
    volumes = {}
    done = 0
    for seq in sequences:
        title = SEQUENCE_TITLES.get(seq, seq)
        report(progress, done / steps, f"reading {title}")
        path, uid = case.mri_source(seq)
        volumes[seq] = read_volume(path, series_uid=uid)
        out.volumes[seq] = volume_layer(volumes[seq], name=title, metadata={"harm3_sequence": seq})
        done += 1
    for seq in masks:
        title = SEQUENCE_TITLES.get(seq, seq)
        report(progress, done / steps, f"reading the {title} mask")
        path, _ = case.mask_source(seq)
        reference = volumes.get(seq) or next(iter(volumes.values()), None)
        mask = read_mask(path, reference=reference)
        out.masks.setdefault(seq, []).append(
            mask_layer(mask, name=f"tumour ({title})", metadata={"harm3_sequence": seq}))
        done += 1
    if case.slide:
        from .core.io.wsi import open_slide

        report(progress, done / steps, f"opening the slide {Path(case.slide).name}")
        slide = open_slide(case.slide, mpp=case.slide_mpp)
        out.slide = slide_layer(slide)
        out.slide_thumbnail = slide.thumbnail(thumbnail_size)
        out.slide_mpp = slide.mpp
        done += 1
    report(progress, 1.0, f"case {out.case_id} read")
    return out
