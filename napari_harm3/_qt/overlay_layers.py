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
from .in_turns import InTurns, alone
from .layer_removal import remove_in_turns
from .visibility import set_visible

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
        self._restyling: InTurns | None = None  # a style change going into the layers, one per turn
        self._restyle_again = False

    def all(self) -> list:
        return [layer for layers in self.layers.values() for layer in layers]

    def remove(self, analysis: str | None = None, keep=frozenset()) -> None:
        """Remove ``analysis``'s overlay layers (all when None), except those whose id is in
        ``keep``: off the screen and emptied now, out of their lists over the next event-loop
        turns (:func:`.layer_removal.remove_in_turns`: in one turn, nine maps' removal froze the
        window ~300 ms at each case switch)."""
        names = [analysis] if analysis else list(self.layers)
        doomed = [layer for name in names for layer in self.layers.get(name, []) if id(layer) not in keep]
        for name in names:
            self.layers[name] = []
        holders = [self.viewer.layers] + [p.model.layers for p in self.grid.panels.values()]
        remove_in_turns([(holder, [layer for layer in doomed if layer in holder]) for holder in holders])

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
        """Drop the maps of a run still to go in."""
        if self._turns is not None:
            self._turns.stop()
            self._turns = None

    def stop(self) -> None:
        """Drop every step still to come: a run's maps going in, and a restyle going round."""
        self.stop_turns()
        if self._restyling is not None:
            self._restyle_again = False
            self._restyling.stop()
            self._restyling = None

    def finish_turns_now(self) -> None:
        if self._turns is not None:
            self._turns.run_now()
            self._turns = None

    def begin_show(self, analysis: str, slide_layer) -> list:
        """Start showing ``analysis``'s current maps from the session: the layers of an earlier run
        that the new maps do not replace leave now; returns the rest as steps to call in order
        (e.g. one per event-loop turn, :mod:`.in_turns`): one per map — an earlier run's layer on
        the same grid takes the new data (making napari layers is what freezes the window), any
        other map gets a new layer — then one that keeps the slide the active layer. The layers
        waiting for their new data stay this analysis's (a case switch removes them)."""
        colormap, threshold, _ = self.style()
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
        kept = [old[(where, kwargs["name"])] for where, (_, kwargs, _) in wanted if (where, kwargs["name"]) in old]
        self.remove(analysis, keep=set(map(id, kept)))
        self.layers[analysis] = kept
        steps = [alone(self._showing(analysis, where, data, kwargs, old.get((where, kwargs["name"]))))
                 for where, (data, kwargs, _) in wanted]  # a canvas a turn

        def keep_slide_active() -> None:
            if slide_layer is not None and slide_layer in self.viewer.layers:
                self.viewer.layers.selection.active = slide_layer

        return [*steps, keep_slide_active]

    def _showing(self, analysis: str, where, data, kwargs: dict, layer):
        """A step: ``layer`` (an earlier run's, or None) refilled with the map, or a new layer."""
        def show() -> None:
            if layer is not None:
                if _refill(layer, data, kwargs):
                    self._place(analysis, layer, where)
                    return
                self.layers[analysis].remove(layer)
                holder = self.viewer.layers if where is None else self.grid.panels[where].model.layers
                holder.remove(layer)
            kwargs["opacity"] = self.style()[2]
            if where is None:
                chosen = self.viewer.layers.selection.active
                added = self.viewer.add_image(data, **kwargs)
                if chosen is not None and chosen in self.viewer.layers:  # napari chose the new map;
                    self.viewer.layers.selection.active = chosen  # the slide stays chosen (lazy_layer_controls)
            else:
                added = self.grid.add_overlay(where, data, kind="image", **kwargs)
            self._place(analysis, added, where)
        return show

    def _place(self, analysis: str, layer, where) -> None:
        self._style(layer, *self._shared_style())  # the controls may have moved since the run ended
        if where is None:
            set_visible(layer, layer.metadata.get("harm3_map") == SHOWN_MAP)
        if layer not in self.layers[analysis]:
            self.layers[analysis].append(layer)

    def _shared_style(self) -> tuple:
        colormap, threshold, opacity = self.style()
        return overlay_colormap(colormap, threshold), opacity  # named by its colours and threshold

    @staticmethod
    def _style(layer, colormap, opacity) -> None:
        if layer.colormap.name != colormap.name:  # an opacity change leaves the colormaps alone
            layer.colormap = colormap
        if layer.opacity != opacity:
            layer.opacity = opacity

    def restyle(self) -> int:
        """Give every overlay the controls' style, one layer per event-loop turn (a colormap change
        costs a layer ~5–20 ms, its canvas a repaint and the window a composition: ~80 ms on
        2 cores with software OpenGL); a change while they go in is taken up
        by the layers not reached yet, and the ones passed get it in one more round. Returns how
        many layers there are to style; :meth:`restyle_now` does it all at once."""
        if self._restyling is not None and self._restyling.running:
            self._restyle_again = True
            return len(self.all())
        self._restyle_again = False
        steps = [alone(self._restyling_step(layer)) for layer in self.all()]  # a canvas a turn
        self._restyling = InTurns(steps, finish=self._restyled).start()
        return len(steps)

    def _restyling_step(self, layer):
        def step() -> None:
            if any(layer is mine for mine in self.all()):  # not removed since
                self._style(layer, *self._shared_style())
        return step

    def _restyled(self) -> None:
        again, self._restyle_again = self._restyle_again, False
        if again:
            self._restyling = None
            self.restyle()

    def restyling(self) -> bool:
        return self._restyling is not None and self._restyling.running

    def restyle_now(self) -> int:
        """Finish a restyle going in turns, in this turn (and style every layer)."""
        if self._restyling is not None:
            self._restyle_again = False
            self._restyling.stop()
            self._restyling = None
        colormap, opacity = self._shared_style()
        for layer in self.all():
            self._style(layer, colormap, opacity)
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
