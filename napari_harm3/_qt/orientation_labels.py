"""Patient-direction letters (R/L, A/P, S/I) on the four edges of every MRI panel.

The letters come from ``core.mri.orientation.plane_letters`` (the panels show world LPS axes, so
the letters depend on the plane only, whatever the file's own orientation); they are drawn as
napari canvas text overlays at the middle of each edge, so they stay put while the user pans
and zooms. A note at the bottom left says when the panel's volume was resliced.
"""

from __future__ import annotations

from napari.components.overlays import TextOverlay

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
