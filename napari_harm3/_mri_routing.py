"""File ▸ Open of an MRI volume while the HARM3 case panel is docked: the volume goes to the
linked MRI grid, not to the slide canvas (glue: no Qt imported here).

:func:`docked_case_panel` finds the case panel among the napari window's docked widgets (it
is not created: without it the reader returns ordinary layers). :func:`grid_panel_for` picks the
grid panel from the series' name and description (T1/T2, pre/post) when it is empty, else the
first empty panel.
"""

from __future__ import annotations

import re

import napari

from .core.vocabulary import SEQUENCES

#: the case panel's Qt object name (napari_harm3._qt.case_panel.CasePanel)
CASE_PANEL_OBJECT = "harm3_case_panel"

_T2 = re.compile(r"t2|stir|flair", re.IGNORECASE)
_T1 = re.compile(r"t1|mprage|vibe|spgr", re.IGNORECASE)
_POST = re.compile(r"post|\+c|gd|gad|contrast|after|ce\b", re.IGNORECASE)


def docked_case_panel():
    """The case panel docked in the current napari window, or None (no window, no panel)."""
    viewer = napari.current_viewer()
    window = getattr(viewer, "window", None)
    if window is None:
        return None
    for widget in dict(window.dock_widgets).values():
        object_name = getattr(widget, "objectName", None)
        if callable(object_name) and object_name() == CASE_PANEL_OBJECT:
            return widget
    return None


def guess_sequence(text: str) -> str | None:
    """A grid panel key from a series name/description ("AX T2 FS post" -> t2_post), or None."""
    weight = "t2" if _T2.search(text) else "t1" if _T1.search(text) else None
    if weight is None:
        return None
    return f"{weight}_{'post' if _POST.search(text) else 'pre'}"


def grid_panel_for(layer_data: tuple, empty: list) -> str:
    """The grid panel for an image LayerData: its guessed sequence when that panel is empty, else
    the first empty panel (else the guess, or T1-pre: the volume is laid over what is there)."""
    _, kwargs, _ = layer_data
    metadata = kwargs.get("metadata") or {}
    guess = guess_sequence(" ".join(str(v) for v in (kwargs.get("name"), metadata.get("description")) if v))
    if guess is not None and (guess in empty or not empty):
        return guess
    return empty[0] if empty else SEQUENCES[0]


def route_to_grid(panel, layers: list) -> list:
    """Put ``layers`` (images, then their masks) into ``panel``'s grid; napari's "nothing to add"."""
    empty = [key for key in panel.grid.panels if panel.grid.panels[key].volume_layer is None]
    key = empty[0] if empty else SEQUENCES[0]
    for layer_data in layers:
        if layer_data[2] == "image":
            key = grid_panel_for(layer_data, empty)
            if key in empty:
                empty.remove(key)
        panel.grid.add_layer_data(key, layer_data)
    panel.show_grid()
    panel.grid.reset_view()
    return [(None,)]
