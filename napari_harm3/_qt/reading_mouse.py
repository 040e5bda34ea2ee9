"""Radiology mouse conventions for one MRI panel (a napari ``ViewerModel``).

napari's defaults suit microscopy: the wheel zooms, Ctrl+wheel moves through slices and a
right-drag zooms too. Reading MRI (3D Slicer, OHIF, PACS viewers) wants the other way round:

=====================  ===========================================================
wheel                  next / previous slice (one voxel of the panel's volume)
Ctrl + wheel           zoom about the point under the cursor
right-drag             window / level of the panel's volume, live: left/right
                       narrows/widens the window, up/down brightens/darkens
left-drag              pan (napari's own)
=====================  ===========================================================

The slice moves through ``dims.current_step`` and the zoom through the camera, so the
:class:`~napari_harm3._qt.linking.ViewerLink` of the grid carries both to the other panels;
window / level is the panel's own (its volume layer's ``contrast_limits``).

:func:`install_reading_mouse` replaces napari's ``dims_scroll`` callback of the model by
:func:`wheel_slice_or_zoom` and adds :func:`right_drag_window_level`. Both mark the events
they use as handled, which keeps vispy's camera from zooming on them as well.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: zoom factor of one wheel notch with Ctrl
ZOOM_PER_NOTCH = 1.2
#: dragging this many canvas pixels changes window or level by the whole intensity range
WINDOW_LEVEL_PIXELS = 400.0
#: the narrowest window, as a fraction of the intensity range
MIN_WINDOW_FRACTION = 1e-3

VolumeGetter = Callable[[], object | None]


def _is_ctrl(event) -> bool:
    return "Control" in event.modifiers or "Meta" in event.modifiers


def _wheel_notches(event) -> float:
    """Wheel notches of ``event`` (1.0 for one click of a mouse wheel; fractions on trackpads),
    positive when the wheel turns away from the user."""
    delta = float(event.delta[1])
    native = getattr(event, "native", None)
    if native is not None and hasattr(native, "inverted") and native.inverted():
        delta = -delta
    return delta


def step_slice(model, steps: int) -> None:
    """Move panel ``model`` by ``steps`` slices along its first axis not displayed."""
    dims = model.dims
    if steps == 0 or not dims.not_displayed:
        return
    axis = dims.not_displayed[0]
    current = dims.current_step[axis]
    target = int(np.clip(current + steps, 0, max(0, dims.nsteps[axis] - 1)))
    if target != current:
        dims.set_current_step(axis, target)


def zoom_about(model, factor: float, position) -> None:
    """Zoom the 2D view of ``model`` by ``factor`` keeping world ``position`` under the cursor."""
    camera = model.scene.camera
    displayed = list(model.dims.displayed)[-2:]
    center = np.asarray(camera.center, dtype=float)
    anchor = np.asarray(position, dtype=float)[displayed]
    moved = anchor + (center[-2:] - anchor) / factor
    camera.zoom = camera.zoom * factor
    camera.center = tuple(center[:-2]) + tuple(moved)


class _WheelProgress:
    """Fractional wheel notches (trackpads, high-resolution wheels) add up to whole slices."""

    def __init__(self):
        self.value = 0.0

    def take(self, notches: float) -> int:
        self.value += notches
        whole = int(np.trunc(self.value))
        self.value -= whole
        return whole


def make_wheel_callback(progress: _WheelProgress | None = None):
    """A napari ``mouse_wheel_callbacks`` entry: wheel = slice, Ctrl+wheel = zoom."""
    progress = progress or _WheelProgress()

    def wheel_slice_or_zoom(viewer, event):
        notches = _wheel_notches(event)
        if notches == 0:
            return
        if _is_ctrl(event):
            zoom_about(viewer, ZOOM_PER_NOTCH ** notches, event.position)
            event.handled = True
        elif not event.modifiers:
            step_slice(viewer, progress.take(notches))
            event.handled = True

    return wheel_slice_or_zoom


def window_level_from_drag(start: tuple[float, float], dx: float, dy: float, span: float) -> tuple[float, float]:
    """Contrast limits after a drag of (``dx``, ``dy``) canvas pixels from limits ``start``:
    right widens the window, down raises the level (darker), ``span`` = intensity range."""
    lo, hi = float(start[0]), float(start[1])
    per_pixel = span / WINDOW_LEVEL_PIXELS
    width = max(span * MIN_WINDOW_FRACTION, (hi - lo) + dx * per_pixel)
    level = (lo + hi) / 2.0 + dy * per_pixel
    return level - width / 2.0, level + width / 2.0


def _intensity_span(layer) -> float:
    lo, hi = layer.contrast_limits_range
    span = float(hi) - float(lo)
    if span <= 0:
        span = float(np.ptp(np.asarray(layer.data))) or 1.0
    return span


def make_window_level_callback(volume: VolumeGetter):
    """A napari ``mouse_drag_callbacks`` entry: right-drag = window / level of ``volume()``."""

    def right_drag_window_level(viewer, event):
        layer = volume()
        if event.button != 2 or layer is None or event.modifiers:
            return
        event.handled = True
        start = tuple(layer.contrast_limits)
        span = _intensity_span(layer)
        x0, y0 = float(event.pos[0]), float(event.pos[1])
        yield
        while event.type == "mouse_move":
            event.handled = True
            lo, hi = window_level_from_drag(start, float(event.pos[0]) - x0, float(event.pos[1]) - y0, span)
            low, high = layer.contrast_limits_range
            if lo < low or hi > high:  # the user goes beyond the preset's range: widen it
                layer.contrast_limits_range = (min(lo, float(low)), max(hi, float(high)))
            layer.contrast_limits = (lo, hi)
            layer.metadata["harm3_window"] = "custom"
            yield
        event.handled = True

    return right_drag_window_level


def install_reading_mouse(model, volume: VolumeGetter) -> None:
    """Give panel ``model`` the radiology mouse (see the module docstring); idempotent."""
    wheel = model.mouse_wheel_callbacks
    if any(_name(cb) == "wheel_slice_or_zoom" for cb in wheel):
        return
    # napari's own Ctrl+wheel = slice (``dims_scroll``) gives way: ours is the plain wheel
    wheel[:] = [cb for cb in wheel if _name(cb) != "dims_scroll"]
    wheel.insert(0, make_wheel_callback())
    model.mouse_drag_callbacks.insert(0, make_window_level_callback(volume))


def _name(callback) -> str:
    return getattr(callback, "__name__", "")
