"""The overlay layers of the open case's predictions: Grad-CAM in the MRI panels, heatmaps over the slide.

A view of the case session: every layer is made from the session's data (its VolumeMaps and the
one painter's HeatmapRasters, through the glue's LayerData functions) and tagged with the
case it belongs to; the layers of a closed case are removed. Styling (colormap, threshold,
opacity) comes from the overlay controls; a µm/px change moves the heatmaps with the slide.
"""

from __future__ import annotations

import numpy as np

from .._layers import gradcam_layer, heatmap_layer, heatmap_placement, overlay_colormap
from ..core.vocabulary import ATTENTION_MAPS, POOLING_MAP
from .in_turns import InTurns

#: the heatmap shown when survival lands (the others start hidden)
SHOWN_MAP = "final"


def _refill(layer, data, kwargs) -> bool:
    """Give ``layer`` a new run's map on the same grid (False: another grid, make a new layer)."""
    if np.shape(layer.data) != np.shape(data):
        return False
    for name in ("affine", "scale", "translate"):
        if name in kwargs:
            setattr(layer, name, kwargs[name])
    layer.metadata.update(kwargs["metadata"])
    layer.colormap = kwargs["colormap"]
    layer.data = data
    return True


class OverlayLayers:
    def __init__(self, viewer, grid, session, style):
        self.viewer = viewer
        self.grid = grid
        self.session = session
        self.style = style          # () -> (colormap name, threshold, opacity)
        self.layers: dict = {"pcr": [], "survival": []}
        self._turns: InTurns | None = None  # a run's new layers going in, one per turn

    def all(self) -> list:
        return [layer for layers in self.layers.values() for layer in layers]

    def remove(self, analysis: str | None = None, keep=frozenset()) -> None:
        """Remove ``analysis``'s overlay layers (all when None), except those whose id is in ``keep``."""
        names = [analysis] if analysis else list(self.layers)
        doomed = [layer for name in names for layer in self.layers.get(name, []) if id(layer) not in keep]
        for name in names:
            self.layers[name] = []
        for holder in [self.viewer.layers] + [p.model.layers for p in self.grid.panels.values()]:
            mine = [layer for layer in doomed if layer in holder]
            if mine:  # one batch per canvas: napari cleans its scene graph (and runs gc) once, not per layer
                with holder.batched_update():
                    for layer in mine:
                        holder.remove(layer)

    def show_in_turns(self, analysis: str, slide_layer, then=None) -> None:
        """Show ``analysis``'s current maps from the session (:meth:`begin_show`), the new layers
        added over event-loop turns (the window answers in between; :mod:`.in_turns`); ``then()``
        once they are in, or when :meth:`stop_turns` drops the rest (a case switch: no map of a
        closed case goes in after it)."""
        self.stop_turns()
        self._turns = InTurns(self.begin_show(analysis, slide_layer), finish=then).start()

    def going_in(self) -> bool:
        return self._turns is not None and self._turns.running

    def stop_turns(self) -> None:
        if self._turns is not None:
            self._turns.stop()
            self._turns = None

    def finish_turns_now(self) -> None:
        if self._turns is not None:
            self._turns.run_now()
            self._turns = None

    def begin_show(self, analysis: str, slide_layer) -> list:
        """Start showing ``analysis``'s current maps from the session: the layers of an earlier
        run on the same grids get the new data now (making and removing napari layers is what
        freezes the window) and the others leave; returns the rest as steps to call in order (e.g.
        one per event-loop turn, :mod:`.in_turns`): one per new layer, then one that keeps the
        slide the active layer."""
        colormap, threshold, opacity = self.style()
        ref = self.session.ref
        wanted = []  # (MRI panel key, or None for the slide viewer; LayerData)
        if analysis == "pcr":
            for seq, vmap in self.session.gradcam_maps().items():
                panel = self.grid.panels.get(seq)
                if panel is not None and panel.volume_layer is not None:
                    wanted.append((seq, gradcam_layer(vmap, colormap, threshold, case_ref=ref)))
        if slide_layer is not None:
            for key in (POOLING_MAP,) if analysis == "pcr" else ATTENTION_MAPS:
                raster = self.session.heatmap(key)
                if raster is not None:
                    wanted.append((None, heatmap_layer(raster, self.session.scale.mpp, colormap, threshold,
                                                       case_ref=ref)))
        old = {(layer.metadata.get("harm3_panel"), layer.name): layer for layer in self.layers[analysis]}
        reused = {}
        for where, (data, kwargs, _) in wanted:
            layer = old.get((where, kwargs["name"]))
            if layer is not None and _refill(layer, data, kwargs):
                reused[(where, kwargs["name"])] = layer
        self.remove(analysis, keep=set(map(id, reused.values())))
        steps = []
        for where, (data, kwargs, _) in wanted:
            layer = reused.get((where, kwargs["name"]))
            if layer is not None:
                self._place(analysis, layer, where, opacity)
            else:
                steps.append(self._adding(analysis, where, data, kwargs, opacity))

        def keep_slide_active() -> None:
            if slide_layer is not None and slide_layer in self.viewer.layers:
                self.viewer.layers.selection.active = slide_layer

        return [*steps, keep_slide_active]

    def _adding(self, analysis: str, where, data, kwargs: dict, opacity):
        def add() -> None:
            kwargs["opacity"] = opacity
            if where is None:
                layer = self.viewer.add_image(data, **kwargs)
            else:
                layer = self.grid.add_overlay(where, data, kind="image", **kwargs)
            self._place(analysis, layer, where, opacity)
        return add

    def _place(self, analysis: str, layer, where, opacity) -> None:
        layer.opacity = opacity
        if where is None:
            layer.visible = layer.metadata.get("harm3_map") == SHOWN_MAP
        self.layers[analysis].append(layer)

    def restyle(self) -> int:
        colormap, threshold, opacity = self.style()
        shared = overlay_colormap(colormap, threshold)  # one object for all; named by colours and threshold
        for layer in self.all():
            if layer.colormap.name != shared.name:  # an opacity change leaves the colormaps alone
                layer.colormap = shared
            if layer.opacity != opacity:
                layer.opacity = opacity
        return len(self.all())

    def rescale(self) -> None:
        """Place the heatmaps again after a µm/px change (their level-0 geometry is unchanged)."""
        mpp = self.session.scale.mpp
        for layer in self.all():
            key = layer.metadata.get("harm3_map")
            raster = self.session.heatmap(key) if key else None
            if raster is not None:
                placement = heatmap_placement(raster, mpp)
                layer.scale, layer.translate = placement["scale"], placement["translate"]
                layer.units = ("µm", "µm") if mpp else ("pixel", "pixel")

    def visible_heatmaps(self) -> list:
        return [layer for layer in self.all() if layer.visible and "harm3_map" in layer.metadata]
