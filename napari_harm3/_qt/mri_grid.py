"""The MRI grid: four linked napari viewers (T1-pre, T1-post, T2-pre, T2-post) in a 2×2 grid.

Each panel is a public ``napari.qt.QtViewer`` on its own ``ViewerModel`` (own layer list, own
contrast), its title on the canvas, a window/level preset box above; the reading aids (mouse,
readout, overlay switches: :mod:`.reading_panel`) are fitted to it. A :class:`ViewerLink` keeps
the four on one world position (slice in mm, pan, zoom), so volumes on different voxel grids
show the same anatomy. Layers go into a panel by name::

    grid.set_volume("t1_pre", data, affine=affine, name="T1-pre")
    grid.add_overlay("t1_pre", mask, affine=affine, kind="labels", name="tumour")
    grid.add_overlay("t2_post", gradcam, affine=affine, kind="image",
                     colormap="inferno", opacity=0.5, contrast_limits=(0.3, 1.0))

Overlays are plain napari layers in the panel's viewer model; colour, opacity and threshold
(contrast limits) are napari's own, so a results widget can restyle them later through
:meth:`MriGrid.layers`.

Planes, edge letters, the crosshair and reslicing of volumes that are not on axis-aligned grids
live in :mod:`.planes` (``grid.planes``: ``set_plane("coronal")``, keys A / C / S).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from napari.components import ViewerModel
from napari.layers import Labels
from napari.qt import QtViewer
from qtpy.QtCore import QCoreApplication, QEvent, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..core.mri import windowing
from ..core.vocabulary import SEQUENCES
from .images import save_png
from .in_turns import alone
from .layer_removal import is_withdrawn, remove_layers
from .layer_reuse import SpareLayers, all_but, try_refill
from .linking import ViewerLink
from .orientation_labels import fit_clear_of_letters, show_note, show_plane_letters
from .planes import GridPlanes
from .polygon_tool import add_labels
from .reading_panel import install_reading_aids
from .vispy_caches import install as install_vispy_caches

#: panel keys in grid order (row-major) and their titles
PANELS: tuple[str, ...] = SEQUENCES
TITLES: dict[str, str] = {"t1_pre": "T1-pre", "t1_post": "T1-post", "t2_pre": "T2-pre", "t2_post": "T2-post"}

AUTO = "auto"
SOFT_TISSUE = "soft tissue"


def window_limits(preset: str, data, metadata=None) -> tuple[float, float]:
    """Contrast limits of window ``preset``: a histogram rule of ``core.mri.windowing`` or one
    of the DICOM's own windows in ``metadata``."""
    return windowing.window_limits(preset, data, metadata)


def preset_names(metadata=None) -> list[str]:
    return windowing.window_preset_names(metadata)


def _clear_layers(layers) -> None:
    """Empty a layer list; an empty one is left alone (napari's ``clear`` runs a full
    ``gc.collect()`` even then: a frozen window for up to seconds)."""
    if len(layers):
        layers.clear()


class MriPanel(QFrame):
    """One panel: a header (window preset) over a QtViewer whose canvas shows the title."""

    #: (panel key, preset name) when the user picks a window preset
    preset_chosen = Signal(str, str)

    def __init__(self, key: str, title: str, parent=None):
        super().__init__(parent)
        self.key = key
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"harm3_mri_panel_{key}")
        self.model = ViewerModel(title=title, axis_labels=("z", "y", "x"))
        self.model.canvas.overlays.text.text = title
        self.model.canvas.overlays.text.visible = True
        self.model.canvas.overlays.text.font_size = 12
        self.model.canvas.overlays.text.color = "yellow"
        self.model.canvas.overlays.text.position = "top_left"
        self.model.canvas.overlays.scale_bar.visible = False  # on once the panel has a volume
        self.qt_viewer = QtViewer(self.model)

        self.preset = QComboBox()
        self.preset.setToolTip("Window / level preset of this panel's volume")
        self.preset.setEnabled(False)
        self.preset.currentTextChanged.connect(self._on_preset_text)
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addStretch(1)  # the title is drawn on the canvas (one title per panel)
        header.addWidget(QLabel("window:"))
        header.addWidget(self.preset)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.qt_viewer, 1)
        self.volume_layer = None

    def _on_preset_text(self, name: str) -> None:
        self.preset_chosen.emit(self.key, name)


class MriGrid(QWidget):
    """2×2 grid of linked MRI panels; see the module docstring for the API."""

    #: emitted with the panel key after a volume was set
    volume_set = Signal(str)
    #: emitted with the plane ("axial", "coronal", "sagittal") after the grid switched planes
    plane_changed = Signal(str)

    def __init__(self, parent=None, panels: Sequence[str] = PANELS, titles: dict[str, str] | None = None):
        super().__init__(parent)
        install_vispy_caches()  # the four canvases share glyph fields and shader parses
        self.setObjectName("harm3_mri_grid")
        titles = {**TITLES, **(titles or {})}
        self.panels: dict[str, MriPanel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        for index, key in enumerate(panels):
            panel = MriPanel(key, titles.get(key, key), self)
            panel.preset_chosen.connect(self._on_preset)
            self.panels[key] = panel
            grid.addWidget(panel, index // 2, index % 2)
        for i in range(2):
            grid.setRowStretch(i, 1)
            grid.setColumnStretch(i, 1)
        self.link = ViewerLink([p.model for p in self.panels.values()])
        self.planes = GridPlanes(self)
        self.reading = install_reading_aids(self)  # wheel = slice, readout, overlay switches
        self.spares = SpareLayers()  # the last case's volume and mask layers while the next is shown
        self.setMinimumSize(480, 480)

    # -- access -----------------------------------------------------------------------
    def model(self, key: str) -> ViewerModel:
        return self._panel(key).model

    def qt_viewer(self, key: str) -> QtViewer:
        return self._panel(key).qt_viewer

    def layers(self, key: str):
        return self._panel(key).model.layers

    def _panel(self, key: str) -> MriPanel:
        try:
            return self.panels[key]
        except KeyError:
            raise KeyError(f"no MRI panel {key!r}; panels are {', '.join(self.panels)}") from None

    # -- content ----------------------------------------------------------------------
    def set_volume(self, key: str, data, *, affine=None, name: str | None = None, preset: str = AUTO, **kwargs):
        """Show ``data`` as the panel's volume (replacing any previous one and its overlays)."""
        panel = self._panel(key)
        spare = self.spares.take(key, "image")  # the last case's volume layer (show_case)
        if spare is None:
            _clear_layers(panel.model.layers)
        kwargs.setdefault("colormap", "gray")
        kwargs.setdefault("units", "mm")
        if affine is not None:
            kwargs["affine"] = np.asarray(affine, dtype=float)
        data, kwargs = self.planes.place(key, data, kwargs)
        layer = self._refill_or_add(panel, spare, data, {**kwargs, "name": name or TITLES.get(key, key)}, "image")
        layer.metadata.setdefault("harm3_panel", key)
        panel.volume_layer = layer
        panel.model.canvas.overlays.scale_bar.visible = True
        panel.preset.blockSignals(True)
        panel.preset.clear()
        panel.preset.addItems(preset_names(layer.metadata))
        panel.preset.setCurrentText(preset)
        panel.preset.setEnabled(True)
        panel.preset.blockSignals(False)
        if "contrast_limits" not in kwargs:
            self._on_preset(key, preset)
        self.planes.volume_shown(key, layer)  # plane and letters first: the fit keeps clear of them
        self._after_content_change(panel)
        self.volume_set.emit(key)
        return layer

    def add_overlay(self, key: str, data, *, affine=None, kind: str = "image", **kwargs):
        """Add a mask (``kind="labels"``) or a float map (``kind="image"``) to panel ``key``.

        ``affine`` (index → world mm) defaults to the panel volume's, so a map computed on the
        volume's voxel grid lines up; other keyword arguments go to ``add_image``/``add_labels``
        (``colormap``, ``opacity``, ``contrast_limits`` as a threshold, ``blending`` …).
        """
        panel = self._panel(key)
        if affine is None and panel.volume_layer is not None:
            affine = panel.volume_layer.metadata.get("source_affine", panel.volume_layer.affine.affine_matrix)
        if affine is not None:
            kwargs["affine"] = np.asarray(affine, dtype=float)
        kwargs.setdefault("units", "mm")
        if kind not in ("image", "labels"):
            raise ValueError(f"overlay kind must be 'image' or 'labels', not {kind!r}")
        data, kwargs = self.planes.place(key, data, kwargs, labels=kind == "labels")
        if kind == "labels":
            data = np.asarray(data).astype(np.int32, copy=False)
        else:
            kwargs.setdefault("blending", "additive")
            kwargs.setdefault("opacity", 0.5)
        spare = self.spares.take(key, "labels") if kind == "labels" else None  # a mask of the last case
        layer = self._refill_or_add(panel, spare, data, kwargs, kind)
        layer.metadata.setdefault("harm3_panel", key)
        self._after_content_change(panel, reset=False)
        return layer

    def add_layer_data(self, key: str, layer_data: tuple):
        """Add a napari LayerData tuple ``(data, kwargs, "image"|"labels")`` to panel ``key``."""
        data, kwargs, kind = (tuple(layer_data) + ({}, "image"))[:3]
        kwargs = dict(kwargs or {})
        if kind == "image" and self._panel(key).volume_layer is None:
            return self.set_volume(key, data, **kwargs)
        return self.add_overlay(key, data, kind=kind, **kwargs)

    def show_case(self, volumes: dict, masks: dict) -> dict[str, list]:
        """Show a case's LayerData (volumes and masks by sequence) in place of the last case's.

        The last case's volume and mask layers take the new data and settings where they can
        (:mod:`.layer_reuse`: no new vispy visuals, no napari gc per removed layer); every
        other layer of the last case (its overlays) is removed, and so are the reusable ones
        the new case has no use for. A mask goes to its sequence's panel (the first panel when
        that sequence has no volume), lined up in world mm with the volume there. Returns the
        mask layers by panel key. :meth:`show_case_steps` is the same work in pieces."""
        mask_layers: dict[str, list] = {}
        steps, finish = self.show_case_steps(volumes, masks, mask_layers)
        try:
            for step in steps:
                step()
        finally:
            finish()
        return mask_layers

    def show_case_steps(self, volumes: dict, masks: dict, mask_layers: dict) -> tuple[list, object]:
        """:meth:`show_case` as ``(steps, finish)``: the clearing (which covers the panels that
        hold the last case's layers), then per panel a step for its volume, one for each of its
        masks and one that uncovers it, to be called in order — e.g. over event-loop turns, so
        that the window repaints in between (:mod:`.in_turns`) — and ``finish``, to be called
        once after them, also when a step failed or the rest were dropped. ``mask_layers`` is
        filled with the mask layers by panel key as the steps run."""
        first = next(iter(self.panels))
        by_panel: dict[str, list] = {}
        for seq, layer_datas in masks.items():
            by_panel.setdefault(seq if seq in self.panels else first, []).extend(layer_datas)
        keys = [key for key in self.panels if key in volumes or key in by_panel]
        # a panel's masks need its volume first; masks without a volume of their own go last
        keys.sort(key=lambda key: key not in volumes)

        def volume_step(key: str):
            return lambda: self.add_layer_data(key, volumes[key])

        def mask_step(key: str, layer_data):
            return lambda: mask_layers.setdefault(key, []).append(self.add_layer_data(key, layer_data))

        def finish() -> None:
            self.spares.drop()
            for aid in self.reading.values():  # also when steps were dropped
                aid.notice.uncover()
            self.link.release_all()
            self._empty_unfilled()

        def uncover_step(key: str):
            def uncover() -> None:
                self.link.release(self.panels[key].model)  # it takes the shown panels' view now
                self.reading[key].notice.uncover()
            return uncover

        def decorations_steps(key: str) -> list:
            """What set_volume shows beside the volume, made ahead: each is a turn and a paint."""
            model = self.panels[key].model

            def scale_bar() -> None:
                model.canvas.overlays.scale_bar.visible = True

            return [alone(scale_bar), alone(lambda: show_plane_letters(model, self.planes.plane))]

        steps = [lambda: self.clear(reuse=True)]
        for key in keys:  # a panel is uncovered once its volume and masks are the next case's
            # a panel without the last case's layers makes new ones: a turn each (~0.1–0.5 s);
            # its scale bar and edge letters, never shown yet, make their visuals in turns before
            # (five canvas overlays: together as costly as the volume's layer, and painted apart)
            is_fresh = self.panels[key].volume_layer is None
            fresh = alone if is_fresh else (lambda step: step)
            if key in volumes and is_fresh and not self.panels[key].model.canvas.overlays.scale_bar.visible:
                steps += decorations_steps(key)
            steps += [fresh(volume_step(key))] if key in volumes else []
            steps += [fresh(mask_step(key, layer_data)) for layer_data in by_panel.get(key, ())]
            steps.append(uncover_step(key))
        return steps, finish

    def _refill_or_add(self, panel: MriPanel, spare, data, kwargs: dict, kind: str):
        """``spare`` given the new data (:func:`.layer_reuse.refill`), or a new layer in its place."""
        layers = panel.model.layers
        if spare is not None:
            if try_refill(spare, data, kwargs, kind):
                return spare
            layers.remove(spare)
        if kind == "labels":
            return add_labels(layers, data, **kwargs)  # napari's, the polygon tool made when chosen
        layer = panel.model.add_image(data, **kwargs)
        if kind == "image" and panel.volume_layer is None and layers.index(layer) != 0:
            layers.move(layers.index(layer), 0)  # a volume under the masks kept from the last case
        return layer

    def clear(self, reuse: bool = False) -> None:
        """Empty the panels; with ``reuse`` their volume and mask layers stay as spares for the
        next :meth:`set_volume` / mask :meth:`add_overlay` (see :meth:`show_case`), the
        crosshair stays, every other layer goes."""
        self.spares.drop()
        if reuse:  # covered panels leave the link until they hold the next case (uncover_step);
            self.link.hold([panel.model for panel in self.panels.values()])
            # one gc for all panels
            remove_layers([(panel.model.layers, self._leaving(key, panel)) for key, panel in self.panels.items()])
        for key, panel in self.panels.items():
            if reuse:  # scale bar, letters and note stay until the panel is known empty (_empty_unfilled):
                panel.volume_layer = None  # hiding and showing them again costs ~0.2 s a panel
                # the last case's layers wait under a cover for the next case's data (hiding the
                # layers instead cost ~0.4 s a switch: napari slices them again when shown)
                self.reading[key].notice.cover(f"{panel.model.title} — opening the next case…")
                continue
            _clear_layers(panel.model.layers)
            panel.volume_layer = None
            self._empty(panel)
        if reuse:
            self.planes.reference, self.planes.reference_key = None, None  # the next case's volume is it
        else:
            self.planes.clear()

    @staticmethod
    def _empty(panel: MriPanel) -> None:
        panel.model.canvas.overlays.scale_bar.visible = False
        panel.preset.blockSignals(True)
        panel.preset.clear()
        panel.preset.setEnabled(False)
        panel.preset.blockSignals(False)

    def _empty_unfilled(self) -> None:
        """After :meth:`show_case`: the panels the new case left without a volume look empty."""
        for key, panel in self.panels.items():
            if panel.volume_layer is None:
                self._empty(panel)
                show_note(panel.model, "")
                show_plane_letters(panel.model, None)
                self.planes.crosshair.redraw(key)

    def _leaving(self, key: str, panel: MriPanel) -> list:
        """``panel``'s layers that leave as the next case comes in: all but its spares (stashed
        now), its crosshair and the withdrawn maps (leaving in turns of their own:
        :func:`.layer_removal.remove_in_turns`)."""
        return [layer for layer in all_but(panel.model.layers, self._stash(key, panel)) if not is_withdrawn(layer)]

    def _stash(self, key: str, panel: MriPanel) -> list:
        """Put ``panel``'s volume and mask layers among the spares; returns the layers to keep."""
        layers = panel.model.layers
        keep = [layer for layer in (self.planes.crosshair.layer(key),) if layer is not None]
        for layer in layers:
            if layer is panel.volume_layer:
                kind = "image"
            elif isinstance(layer, Labels) and layer.metadata.get("harm3_kind") == "mask":
                kind = "labels"
            else:
                continue
            self.spares.stash(key, kind, layer, layers)
            keep.append(layer)
        return keep

    def set_window(self, key: str, preset: str) -> tuple[float, float]:
        """Apply a window preset to panel ``key``'s volume; returns its contrast limits."""
        panel = self._panel(key)
        if panel.volume_layer is None:
            raise ValueError(f"panel {key!r} has no volume")
        names = preset_names(panel.volume_layer.metadata)
        if preset not in names:
            raise ValueError(f"unknown window preset {preset!r}; choose one of {', '.join(names)}")
        if panel.preset.currentText() != preset:
            panel.preset.setCurrentText(preset)  # emits currentTextChanged → _on_preset
        else:
            self._on_preset(key, preset)
        return tuple(panel.volume_layer.contrast_limits)

    def _on_preset(self, key: str, name: str) -> None:
        layer = self._panel(key).volume_layer
        if layer is None or not name:
            return
        lo, hi = window_limits(name, layer.data, layer.metadata)
        layer.contrast_limits_range = (min(lo, float(np.min(layer.data))), max(hi, float(np.max(layer.data))))
        layer.contrast_limits = (lo, hi)
        layer.metadata["harm3_window"] = name

    def _after_content_change(self, panel: MriPanel, reset: bool = True) -> None:
        """Keep the grid on one view when content changes: first filled panel leads."""
        if reset:
            leader = next((p for p in self.panels.values() if p.volume_layer is not None), panel)
            if leader is panel:
                fit_clear_of_letters(panel.model)
            self.link.sync_from(leader.model)

    def reset_view(self) -> None:
        """Fit the union of all volumes into the panels (same zoom for all), clear of the edge letters."""
        filled = [p for p in self.panels.values() if p.volume_layer is not None]
        if not filled:
            return
        # fit the canvases' settled sizes: a plane switch swaps napari's slice sliders, and the
        # panel's slider row is one slider taller until the layouts have run
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)
        leader = max(filled, key=lambda p: float(np.prod(np.ptp(p.volume_layer.extent.world, axis=0)[-2:])))
        fit_clear_of_letters(leader.model)
        self.link.sync_from(leader.model)

    # -- pictures ---------------------------------------------------------------------
    def screenshot(self, path=None, scale: float = 1.0) -> np.ndarray:
        """RGBA image of the four canvases as a 2×2 mosaic (titles are drawn on the canvases);
        ``scale`` renders at that multiple of the on-screen resolution."""
        shots = [p.qt_viewer.screenshot(flash=False, scale=scale) for p in self.panels.values()]
        h = max(s.shape[0] for s in shots)
        w = max(s.shape[1] for s in shots)
        gap = 4
        rows = (len(shots) + 1) // 2
        mosaic = np.full((rows * h + (rows - 1) * gap, 2 * w + gap, 4), 255, dtype=np.uint8)
        mosaic[..., :3] = 40
        for index, shot in enumerate(shots):
            r, c = divmod(index, 2)
            y, x = r * (h + gap), c * (w + gap)
            mosaic[y : y + shot.shape[0], x : x + shot.shape[1]] = shot
        if path is not None:
            save_png(mosaic, path)
        return mosaic

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.close_viewers()
        super().closeEvent(event)

    def close_viewers(self) -> None:
        """Unlink and close the panel viewers (frees their GL canvases)."""
        self.link.disconnect()
        self.planes.disconnect()
        for aid in self.reading.values():
            aid.disconnect()
        for panel in self.panels.values():
            panel.model.layers.clear()
            panel.qt_viewer.close()
