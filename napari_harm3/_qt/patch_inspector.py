"""Looking at the patches behind a slide heatmap: a click on the slide opens the patch under it at
full resolution, and a gallery holds each map's most attended patches, read over their whole
footprint (a 5× patch covers 4× the level-0 pixels of a 20× one). Everything comes from the case
session's PatchScores, never from layer metadata."""

from __future__ import annotations

from typing import Optional

from ..core.report.figures import patch_rgb, top_patch_tiles
from ..core.vocabulary import ATTENTION_MAPS

GALLERY_K = 6


def gallery_tiles(slide, scores: dict) -> dict:
    """{map key: ((x, y, size, score, rgb), ...)} of the top patches of each survival map: slide
    reads, so a worker does them (any thread)."""
    if slide is None:
        return {}
    return {key: tuple((t.coords[0], t.coords[1], t.size, t.score, t.rgb)
                       for t in top_patch_tiles(slide, scores[key], k=GALLERY_K))
            for key in ATTENTION_MAPS if key in scores}


class PatchInspector:
    def __init__(self, viewer, session, overlays, gallery, patch_view, minimap):
        self.viewer = viewer
        self.session = session
        self.overlays = overlays
        self.gallery = gallery
        self.patch_view = patch_view
        self.minimap = minimap
        self.gallery_patches: dict = {}
        self._dock = None
        gallery.patch_clicked.connect(self.show_gallery_patch)
        viewer.mouse_drag_callbacks.append(self._on_slide_mouse)

    def fill_gallery(self, show: bool, tiles: Optional[dict] = None) -> None:
        """The top patches of each survival map (empty when ``show`` is False); ``tiles``: read
        beforehand by :func:`gallery_tiles` (in the run's worker), else read here."""
        slide = self.session.slide
        if not show or slide is None:
            tiles = {}
        elif tiles is None:
            tiles = gallery_tiles(slide, self.session.patch_scores())
        self.gallery_patches = dict(tiles)
        self.gallery.set_patches(self.gallery_patches)

    def _on_slide_mouse(self, viewer, event):
        """A click (no drag) on the slide with a heatmap shown opens that patch at level 0."""
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self.show_patch_at(event.position[-2:])

    def _dock_show(self) -> None:
        window = getattr(self.viewer, "window", None)
        if window is not None and self._dock is None:
            self._dock = window.add_dock_widget(self.patch_view, name="HARM3 patch (full resolution)",
                                                area="right", add_vertical_stretch=False)

    def show_patch_at(self, world_yx) -> Optional[tuple]:
        """Show the patch of the top-most visible heatmap under world (y, x); (map key, index) or None."""
        heatmaps = self.overlays.visible_heatmaps()
        slide = self.session.slide
        if not heatmaps or slide is None:
            return None
        key = heatmaps[-1].metadata["harm3_map"]
        scores = self.session.patch_scores().get(key)
        unit = self.session.scale.mpp or 1.0
        index = None if scores is None else scores.patch_at(float(world_yx[1]) / unit, float(world_yx[0]) / unit)
        if index is None:
            return None
        x, y = (int(v) for v in scores.coords[index])
        self._dock_show()
        self.patch_view.show_patch(patch_rgb(slide, x, y, scores.footprint),
                                   f"{scores.label}: score {float(scores.scores[index]):.3f}, level-0 ({x}, {y}), "
                                   f"{scores.footprint}×{scores.footprint} px at {scores.magnification}x")
        return key, index

    def show_gallery_patch(self, key: str, index: int) -> None:
        x, y, size, score, rgb = self.gallery_patches[key][index]
        self._dock_show()
        self.patch_view.show_patch(rgb, f"attention {key} #{index + 1}: score {score:.3f}, level-0 ({x}, {y}), "
                                        f"{size}×{size} px")
        unit = self.session.scale.mpp or 1.0
        self.minimap.pan_to((y + size / 2) * unit, (x + size / 2) * unit)

    def close(self) -> None:
        if self._on_slide_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_slide_mouse)
