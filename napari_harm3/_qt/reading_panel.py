"""Reading aids fitted to each panel of the MRI grid (called once by ``MriGrid``).

Per panel: the radiology mouse (:mod:`.reading_mouse`: wheel = slice, Ctrl+wheel = zoom,
right-drag = window / level), the overlay switches and opacity in the header
(:mod:`.panel_controls`), a footer with the cursor readout (:mod:`.cursor_readout`), and
the "not loaded" cover
with no slider while the panel has no volume. The panel keeps one title: the one drawn on
its canvas (it is in every screenshot).

Kept apart from :mod:`.mri_grid` so that the grid's layout and linking change independently
of the reading conventions.
"""

from __future__ import annotations

import weakref

from qtpy.QtWidgets import QHBoxLayout, QWidget

from .cursor_readout import CursorReadout
from .panel_controls import EmptyPanelNotice, OverlayControls
from .reading_mouse import install_reading_mouse


def _volume_of(panel):
    """A getter of ``panel``'s volume layer that does not keep the panel alive."""
    ref = weakref.ref(panel)

    def volume():
        target = ref()
        return None if target is None else target.volume_layer

    return volume


def keep_size_when_hidden(widget) -> None:
    """Hidden, ``widget`` keeps its place: the canvas beside it is not resized. A resized
    canvas repaints at once (``QOpenGLWidget.resizeEvent``), 100–300 ms with software OpenGL,
    so a panel that changed its layout three times when a volume came froze the window."""
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def hold_slider_row(qt_viewer) -> None:
    """napari's slider row is as tall as its sliders (none without a volume, one with one): fix it
    at one slider, so that the canvas keeps its height when a volume comes or goes."""
    dims = qt_viewer.dims
    dims.setFixedHeight(dims.SLIDERHEIGHT)


class ReadingAids:
    """The reading aids of one :class:`~napari_harm3._qt.mri_grid.MriPanel`."""

    def __init__(self, panel):
        self._panel = weakref.ref(panel)
        volume = _volume_of(panel)
        self.title = panel.model.title
        install_reading_mouse(panel.model, volume)
        self.readout = CursorReadout(panel.model, volume)
        self.overlays = OverlayControls(panel.model, volume)
        self.footer = QWidget(panel)
        self.footer.setObjectName("harm3_panel_footer")
        row = QHBoxLayout(self.footer)
        row.setContentsMargins(4, 1, 4, 1)
        row.setSpacing(6)
        row.addWidget(self.readout, 1)
        panel.layout().addWidget(self.footer)
        keep_size_when_hidden(self.footer)
        self.header = panel.layout().itemAt(0).layout()  # the panel's header row (window preset)
        if self.header is not None:
            self.header.insertWidget(0, self.overlays)
        else:
            row.addWidget(self.overlays)
        for widget in self._header_widgets():
            keep_size_when_hidden(widget)
        hold_slider_row(panel.qt_viewer)
        self.notice = EmptyPanelNotice(panel.qt_viewer, self.title)
        # choosing the preset already shown re-applies it (after a right-drag window / level)
        panel.preset.activated.connect(self._on_preset_activated)
        events = panel.model.layers.events
        events.inserted.connect(self.refresh)
        events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, event=None) -> None:
        """Bring the panel's parts up to its content (volume or not, which overlays)."""
        panel = self._panel()
        if panel is None:
            return
        volume = panel.volume_layer
        loaded = volume is not None and any(layer is volume for layer in panel.model.layers)
        self.notice.set_loaded(loaded)  # it covers the canvas and the (meaningless) slider
        text = panel.model.canvas.overlays.text
        text.text = self.title if loaded else f"{self.title} — not loaded"
        self.footer.setVisible(loaded)
        for widget in self._header_widgets():  # no window preset without a volume
            widget.setVisible(loaded)
        self.overlays.rebuild()
        self.readout.refresh()

    def _on_preset_activated(self, index: int) -> None:
        panel = self._panel()
        if panel is not None and panel.volume_layer is not None:
            panel.preset_chosen.emit(panel.key, panel.preset.itemText(index))

    def _header_widgets(self) -> list:
        if self.header is None:
            return []
        items = (self.header.itemAt(i) for i in range(self.header.count()))
        return [item.widget() for item in items if item.widget() is not None and item.widget() is not self.overlays]

    def disconnect(self) -> None:
        panel = self._panel()
        if panel is not None:
            events = panel.model.layers.events
            events.inserted.disconnect(self.refresh)
            events.removed.disconnect(self.refresh)
        self.readout.disconnect_model()
        self.overlays.disconnect_model()


def install_reading_aids(grid) -> dict[str, ReadingAids]:
    """Fit every panel of ``grid`` with its reading aids; refreshed when a volume is set."""
    aids = {key: ReadingAids(panel) for key, panel in grid.panels.items()}
    for aid in aids.values():  # every panel reads its own volume where the mouse is, in any panel
        for panel in grid.panels.values():
            aid.readout.follow(panel.model)
    grid_ref = weakref.ref(grid)

    def on_volume_set(key: str) -> None:
        target = grid_ref()
        aid = None if target is None else getattr(target, "reading", {}).get(key)
        if aid is not None:
            aid.refresh()

    grid.volume_set.connect(on_volume_set)
    return aids
