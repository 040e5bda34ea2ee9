"""Core objects → napari LayerData tuples (glue: no Qt, no viewer).

Shared by the readers, the sample data and the panels, so a volume or a map looks the same
wherever it is shown:

- MRI :class:`~napari_harm3.core.io.mri.Volume` → ``image`` layer with the volume's affine
  (index → world LPS mm, registration applied by the case's seam), units mm, auto-windowed;
- tumour mask (:class:`~napari_harm3.core.io.masks.LabelVolume`) → ``labels`` layer on its affine;
- :class:`~napari_harm3.core.io.wsi.Slide` → lazy multiscale RGB ``image``, ``scale = (mpp, mpp)`` µm;
- a Grad-CAM :class:`VolumeMap` → ``image`` on its volume's affine; a slide
  :class:`HeatmapRaster` (the one painter's) → ``image`` placed over the slide in µm; both with the
  overlay colormap that is transparent below the threshold and where there is no value.

:func:`case_layer_data` turns an opened case (``core.session``) into everything the viewers
need; it runs in the case panel's worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from napari.utils.colormaps import Colormap

from ._reader_mri import labels_layer_data, volume_layer_data
from ._reader_wsi import slide_layer_data
from .core.explain.colormaps import DEFAULT_OVERLAY_COLORMAP, overlay_colours
from .core.mri.case_volumes import for_display
from .core.io.wsi_pyramid import hold_overview
from .core.mri.tumour_response import case_tumour_response
from .core.progress import ProgressFn, report
from .core.vocabulary import SEQUENCE_TITLES, sequence_title

LayerData = tuple  # (data, kwargs, layer_type)
#: the default display threshold of every overlay (values below it are not painted), as the report
DEFAULT_THRESHOLD = 0.15
OVERLAY_OPACITY = 0.55

__all__ = ["SEQUENCE_TITLES", "CaseLayers", "case_layer_data", "volume_layer", "mask_layer", "slide_layer",
           "overlay_colormap", "gradcam_layer", "heatmap_layer", "heatmap_placement"]


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
    base = {"units": "mm", "axis_labels": ("z", "y", "x")}
    return _merge(volume_layer_data(volume), name, {"harm3_kind": "mri", **(metadata or {})}, {**base, **kwargs})


def mask_layer(mask, name: str | None = None, metadata: dict | None = None, **kwargs) -> LayerData:
    """A tumour mask (label volume) as a ``labels`` LayerData on its own affine."""
    base = {"units": "mm", "axis_labels": ("z", "y", "x"), "opacity": 0.5}
    return _merge(labels_layer_data(mask), name, {"harm3_kind": "mask", **(metadata or {})}, {**base, **kwargs})


def slide_layer(slide, name: str | None = None, metadata: dict | None = None, **kwargs) -> LayerData:
    """A whole-slide image as a lazy multiscale RGB ``image`` LayerData, ``scale=(mpp, mpp)`` µm."""
    meta = {"harm3_kind": "slide", "mpp_missing": slide.mpp is None, **(metadata or {})}
    return _merge(slide_layer_data(slide), name, meta, kwargs)


def overlay_colormap(name: str = DEFAULT_OVERLAY_COLORMAP, threshold: float = DEFAULT_THRESHOLD) -> Colormap:
    """napari's colormap for an overlay: ``name``'s colours, transparent below ``threshold`` and at NaN."""
    controls, colours = overlay_colours(name, threshold)
    return Colormap(colors=colours, controls=controls, name=f"{name} ≥ {threshold:.2f}", interpolation="linear")


def gradcam_layer(vmap, colormap: str = DEFAULT_OVERLAY_COLORMAP, threshold: float = DEFAULT_THRESHOLD,
                  case_ref=None) -> LayerData:
    """A Grad-CAM map as an ``image`` LayerData on exactly its volume's affine and grid."""
    kwargs = {"name": f"Grad-CAM {sequence_title(vmap.sequence)}", "affine": np.asarray(vmap.affine, dtype=float),
              "colormap": overlay_colormap(colormap, threshold), "blending": "translucent", "opacity": OVERLAY_OPACITY,
              "contrast_limits": (0.0, 1.0), "units": "mm", "axis_labels": ("z", "y", "x"),
              "metadata": {"harm3_kind": "gradcam", "harm3_sequence": vmap.sequence, "harm3_case": case_ref}}
    return (np.asarray(vmap.data, dtype=np.float32), kwargs, "image")


def heatmap_placement(raster, mpp: float | None) -> dict:
    """``scale`` / ``translate`` of a heatmap layer over a slide layer of ``scale = (mpp, mpp)``."""
    scale, translate = raster.napari_placement(mpp)
    return {"scale": scale, "translate": translate}


def heatmap_layer(raster, mpp: float | None, colormap: str = DEFAULT_OVERLAY_COLORMAP,
                  threshold: float = DEFAULT_THRESHOLD, case_ref=None) -> LayerData:
    """A slide heatmap (the painter's raster: percentile ranks, NaN where no patch) over the slide."""
    kwargs = {"name": raster.label, **heatmap_placement(raster, mpp), "units": ("µm", "µm") if mpp else ("pixel", "pixel"),
              "colormap": overlay_colormap(colormap, threshold), "blending": "translucent", "opacity": OVERLAY_OPACITY,
              "contrast_limits": (0.0, 1.0),
              "metadata": {"harm3_kind": "slide_heatmap", "harm3_map": raster.key, "harm3_case": case_ref}}
    return (raster.data, kwargs, "image")


@dataclass
class CaseLayers:
    """Everything the viewers need for one opened case (no viewer touched)."""

    case_id: str
    volumes: dict[str, LayerData] = field(default_factory=dict)  # sequence → image
    masks: dict[str, list[LayerData]] = field(default_factory=dict)  # sequence → labels
    slide: Optional[LayerData] = None
    slide_thumbnail: Optional[np.ndarray] = None
    slide_mpp: Optional[float] = None
    labels: dict[str, Any] = field(default_factory=dict)
    opened: Any = None  # core.session.OpenedCase
    tumour_response: Any = None  # core.mri.tumour_response.TumourResponseReport, measured in the worker

    @property
    def case(self):
        return None if self.opened is None else self.opened.case

    def mri_layer_data(self) -> list[LayerData]:
        """Volumes then masks, as one list (the case reader's answer)."""
        out = list(self.volumes.values())
        for layers in self.masks.values():
            out.extend(layers)
        return out


def case_layer_data(opened, progress: ProgressFn | None = None, thumbnail_size: int = 512,
                    measure_response: bool = False) -> CaseLayers:
    """LayerData of an opened case's volumes (in its reference frame, on axis-aligned grids: one
    acquired in another plane or obliquely is resliced onto the reference's), masks and slide;
    ``measure_response``: also the tumour response of its masks (for ``CaseSession.show``)."""
    case = opened.case
    out = CaseLayers(case_id=opened.case_id, labels=case.labels.as_dict(), opened=opened)
    if measure_response:
        out.tumour_response = case_tumour_response(opened.volumes)
    volumes = for_display(opened.volumes)  # axis-aligned grids napari can slice (reslice.py)
    for seq in volumes.sequences:
        report(progress, 0.0, f"preparing {sequence_title(seq)}")
        meta = {"harm3_sequence": seq, "harm3_registered": volumes.registered(seq)}
        out.volumes[seq] = volume_layer(volumes.volumes[seq], name=sequence_title(seq), metadata=meta)
    for seq, mask in volumes.masks.items():
        out.masks.setdefault(seq, []).append(
            mask_layer(mask, name=f"tumour ({sequence_title(seq)})", metadata={"harm3_sequence": seq}))
    if opened.slide is not None:
        report(progress, 0.8, "slide thumbnail")
        slide = opened.slide if opened.scale.mpp is None or opened.slide.mpp == opened.scale.mpp \
            else opened.slide.with_mpp(opened.scale.mpp)
        out.slide = slide_layer(slide)
        hold_overview(out.slide[0])  # the levels the viewer first shows: read here, not in its first draw
        out.slide_thumbnail = slide.thumbnail(thumbnail_size)
        out.slide_mpp = opened.scale.mpp
    report(progress, 1.0, f"case {out.case_id} ready")
    return out
