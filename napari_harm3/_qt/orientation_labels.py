"""Patient-direction letters (R/L, A/P, S/I) on the four edges of every MRI panel.

The letters come from ``core.mri.orientation.plane_letters`` (the panels show world LPS axes, so
the letters depend on the plane only, whatever the file's own orientation); they are drawn as
napari canvas text overlays at the middle of each edge, so they stay put while the user pans
and zooms. A note at the bottom left says when the panel's volume was resliced.
"""

from __future__ import annotations

import numpy as np
from napari.components.overlays import TextOverlay
from qtpy.QtGui import QFont, QFontMetricsF, QGuiApplication

from ..core.mri.orientation import plane_letters

#: edge → (napari canvas position, overlay key)
EDGES: dict[str, tuple[str, str]] = {
    "top": ("top_center", "harm3_edge_top"),
    "bottom": ("bottom_center", "harm3_edge_bottom"),
    "left": ("middle_left", "harm3_edge_left"),
    "right": ("middle_right", "harm3_edge_right"),
}
LETTER_COLOUR = "cyan"
#: the canvas note saying how the panel's volume was placed ("resliced onto T1-pre")
NOTE_KEY = "harm3_note"
#: napari's canvas text is sized in points of 1/72 inch drawn at 96 dpi (its vispy text visual)
CANVAS_PIXELS_PER_POINT = 96 / 72
#: a fit never shrinks the field below this fraction of napari's own fit (tiny canvases)
LEAST_FIT_FRACTION = 0.5


def add_edge_overlays(model) -> dict[str, TextOverlay]:
    """Four hidden letter overlays on ``model``'s canvas (one per edge)."""
    out = {}
    for edge, (position, key) in EDGES.items():
        overlay = TextOverlay(text="", position=position, color=LETTER_COLOUR, font_size=13, visible=False)
        model.canvas.overlays[key] = overlay
        out[edge] = overlay
    model.canvas.overlays[NOTE_KEY] = TextOverlay(text="", position="bottom_left", color="yellow", font_size=10,
                                                  visible=False)
    return out


def show_note(model, text: str) -> None:
    """Write ``text`` at the canvas's bottom left (hidden when empty)."""
    overlay = model.canvas.overlays[NOTE_KEY]
    overlay.text = text
    overlay.visible = bool(text)


def edge_texts(model) -> dict[str, str]:
    """{edge: the letters shown there} ('' where hidden) — what the user reads."""
    out = {}
    for edge, (_, key) in EDGES.items():
        overlay = model.canvas.overlays[key]
        out[edge] = overlay.text if overlay.visible else ""
    return out


def show_plane_letters(model, plane: str | None, visible: bool = True) -> None:
    """Write ``plane``'s letters on ``model``'s edges (hidden when ``plane`` is None or not visible)."""
    letters = plane_letters(plane) if plane else {}
    for edge, (_, key) in EDGES.items():
        overlay = model.canvas.overlays[key]
        overlay.text = letters.get(edge, "")
        overlay.visible = bool(visible and letters)


def letter_bands(model) -> tuple[float, float]:
    """Canvas pixels the shown edge letters take from the top and bottom edges (rows) and from
    the left and right edges (columns): napari's overlay padding and the letter's text box."""
    pad_x, pad_y = model.canvas.overlay_tiling.padding
    rows = cols = 0.0
    for edge, (_, key) in EDGES.items():
        overlay = model.canvas.overlays[key]
        if not (overlay.visible and overlay.text):
            continue
        metrics = QFontMetricsF(QFont(QGuiApplication.font().family(), int(overlay.font_size)))
        box = metrics.boundingRect(overlay.text)
        if edge in ("top", "bottom"):
            rows = max(rows, pad_y + box.height() * CANVAS_PIXELS_PER_POINT)
        else:
            cols = max(cols, pad_x + box.width() * CANVAS_PIXELS_PER_POINT)
    return rows, cols


def fit_clear_of_letters(model) -> None:
    """Fit ``model``'s 2D view (napari's ``reset_view``) with the field between the edge letters."""
    model.reset_view()
    rows, cols = letter_bands(model)
    if (rows == 0 and cols == 0) or model.dims.ndisplay != 2 or not len(model.layers):
        return
    extent = model.layers.extent
    displayed = list(model.dims.displayed)[-2:]
    field = np.ptp(np.asarray(extent.world, dtype=float)[:, displayed], axis=0)
    field = field + np.asarray(extent.step, dtype=float)[displayed]  # voxel centres ± half a voxel
    height, width = model.canvas.size
    room = np.array([height - 2 * rows, width - 2 * cols], dtype=float)
    if np.any(field <= 0) or np.any(room <= 0):
        return
    zoom = model.scene.camera.zoom
    model.scene.camera.zoom = float(min(zoom, max(LEAST_FIT_FRACTION * zoom, np.min(room / field))))
