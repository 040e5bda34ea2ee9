"""Showing the next case in the layers of the last one (issue 13): napari makes a layer's vispy
visual, textures and first paint when a layer is added, and runs a full ``gc.collect()`` when
one is removed; a case switch that re-made ~9 layers on 5 canvases froze the window for
seconds. A layer of the same kind (volume, mask, slide) takes the new case's data and settings
in place instead.

:func:`refill` gives a napari ``Image`` or ``Labels`` layer a LayerData's data and keyword
arguments, resetting whatever the last case (or the user) changed to what a new layer would
have; it returns False (nothing changed) when the layer cannot take them — another layer type,
dtype, dimensionality, RGB-ness or multiscale-ness, or a keyword only a constructor takes — and
the caller makes a new layer. :class:`SpareLayers` holds the previous case's reusable layers
per place while the next case is put in; :meth:`SpareLayers.drop` removes those left over.
Nothing of the previous case is kept but the layer objects: data, name, metadata, transform,
colours and contrast are all replaced.
"""

from __future__ import annotations

import inspect
from typing import Optional

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import label_colormap

from .layer_removal import remove_layers

#: keywords a layer takes after construction (set in this order, data first)
SETTABLE = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels", "colormap",
            "opacity", "blending", "visible", "gamma", "interpolation2d", "interpolation3d", "rendering",
            "depiction", "iso_threshold", "attenuation", "contour")
#: looks the previous case (or the user) may have changed: back to a new layer's unless given
RESET_TO_DEFAULT = ("opacity", "blending", "visible", "gamma", "interpolation2d", "interpolation3d", "rendering",
                    "depiction", "contour")
#: transforms not given: back to identity
TRANSFORMS = ("scale", "translate", "rotate", "shear", "affine")
#: keywords handled apart (or only checked against the layer)
SPECIAL = ("name", "metadata", "contrast_limits", "rgb", "multiscale")
#: the colormap of a new Labels layer (as napari makes it)
LABELS_SEED = 0.5


def _defaults(layer_type) -> dict:
    params = inspect.signature(layer_type.__init__).parameters
    return {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}


_DEFAULTS = {Image: _defaults(Image), Labels: _defaults(Labels)}


def _level0(data):
    return data[0] if isinstance(data, (list, tuple)) else data


def compatible(layer, data, kwargs: dict, kind: str) -> bool:
    """True when ``layer`` can show ``(data, kwargs, kind)`` by assignment."""
    layer_type = {"image": Image, "labels": Labels}.get(kind)
    if layer_type is None or type(layer) is not layer_type:
        return False
    if any(k not in SETTABLE and k not in SPECIAL for k in kwargs):
        return False
    multiscale = bool(kwargs.get("multiscale", isinstance(data, (list, tuple))))
    if multiscale != bool(layer.multiscale):
        return False
    if kind == "image" and bool(kwargs.get("rgb", layer.rgb)) != bool(layer.rgb):
        return False
    first = _level0(data)
    old = _level0(layer.data)
    if np.dtype(first.dtype) != np.dtype(old.dtype) or len(first.shape) != len(old.shape):
        return False
    return kind != "image" or not layer.rgb or first.shape[-1] == old.shape[-1]


def refill(layer, data, kwargs: dict, kind: str) -> bool:
    """Give ``layer`` the LayerData ``(data, kwargs, kind)`` in place; False when it cannot."""
    if not compatible(layer, data, kwargs, kind):
        return False
    defaults = _DEFAULTS[type(layer)]
    with layer._block_refresh():  # one slice and paint at the end, not one per setting
        layer.data = data
        for name in SETTABLE:
            if name in kwargs:
                value = kwargs[name]
                if name == "affine":
                    value = np.asarray(value, dtype=float)
            elif name in TRANSFORMS:
                value = _identity(name, layer.ndim)
            elif name in RESET_TO_DEFAULT and defaults.get(name) is not None:
                value = defaults[name]
            else:
                continue
            if not _same(getattr(layer, name, None), value):  # each setter re-fits the viewer's dims
                setattr(layer, name, value)
        if kind == "labels" and "colormap" not in kwargs:
            layer.colormap = label_colormap(49, LABELS_SEED, background_value=0)
        if kind == "labels":
            layer._reset_history()  # no undo back into the last case's mask
        layer.mode = "pan_zoom"  # as a new layer starts (not painting into the new case)
        if kind == "image":
            _reset_contrast(layer, kwargs.get("contrast_limits"))
        layer.metadata = dict(kwargs.get("metadata") or {})
    if kwargs.get("name"):
        layer.name = kwargs["name"]
    layer.refresh()
    return True


def try_refill(layer, data, kwargs: dict, kind: str) -> bool:
    """:func:`refill`, False also when a setting is refused half-way (the caller then replaces
    the half-filled layer by a new one made from the LayerData alone)."""
    try:
        return refill(layer, data, kwargs, kind)
    except (TypeError, ValueError):
        return False


def _same(current, value) -> bool:
    """True when setting ``value`` would leave the layer as it is (numbers, arrays, names)."""
    if isinstance(value, str):
        return str(getattr(current, "name", current)) == value
    if isinstance(value, (bool, int, float, np.ndarray, list, tuple)):
        try:
            return np.array_equal(np.asarray(current, dtype=float), np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            return False
    return False


def _identity(name: str, ndim: int):
    return {"scale": lambda: np.ones(ndim), "translate": lambda: np.zeros(ndim), "rotate": lambda: np.eye(ndim),
            "shear": lambda: np.zeros(ndim * (ndim - 1) // 2), "affine": lambda: np.eye(ndim + 1)}[name]()


def _reset_contrast(layer, limits) -> None:
    """Contrast as a new layer gets it: the given limits (also its range) or the data's range."""
    if limits is None:
        limits = layer._calc_data_range() if isinstance(layer.data, np.ndarray) else layer.contrast_limits_range
    limits = (float(limits[0]), float(limits[1]))
    layer.contrast_limits_range = limits
    layer.contrast_limits = limits


class SpareLayers:
    """The previous case's reusable layers, by (place, kind), while the next case is shown."""

    def __init__(self):
        self._spare: dict[tuple, list] = {}
        self._holders: dict[tuple, object] = {}

    def stash(self, place, kind: str, layer, holder) -> None:
        self._spare.setdefault((place, kind), []).append(layer)
        self._holders[(place, kind)] = holder

    def take(self, place, kind: str) -> Optional[object]:
        """The next spare layer of ``kind`` at ``place`` still in its layer list, or None."""
        layers = self._spare.get((place, kind), [])
        holder = self._holders.get((place, kind))
        while layers:
            layer = layers.pop(0)
            if holder is not None and layer in holder:
                return layer
        return None

    def drop(self) -> int:
        """Remove the spare layers nobody took (one batch per layer list); returns how many."""
        by_holder: dict[int, tuple] = {}
        for where, layers in self._spare.items():
            holder = self._holders[where]
            mine = [layer for layer in layers if layer in holder]
            if mine:
                by_holder.setdefault(id(holder), (holder, []))[1].extend(mine)
        self._spare, self._holders = {}, {}
        return remove_layers(by_holder.values())  # one batch per layer list, one gc for them all


def all_but(holder, keep) -> list:
    """The layers of ``holder`` not in ``keep`` (by identity)."""
    return [layer for layer in holder if not any(layer is k for k in keep)]
