"""npe2 reader for napari-harm3 case manifests (``case.yaml``, ``*.harm3.yaml``, ``*.harm3.json``).

File > Open on a manifest, in a napari window: the case panel is docked (or reused) and opens
the case in the linked MRI grid and the slide viewer; the reader then returns napari's "read,
nothing to add" sentinel ``[(None,)]``. Without a napari window (``napari.Viewer`` scripts with
``show=False`` still have one; ``npe2`` / tests call :func:`read_case_layers`), the reader
returns the case's MRI volumes (each with its world affine, mm) and tumour masks as layers;
the slide is left out there because it lives in µm, not in the MRI's mm space — open it with the
slide reader or the case panel. No Qt is imported here.
"""

from __future__ import annotations

from pathlib import Path

from ._layers import case_layer_data
from .core.io.case import load_case
from .core.session import open_case_data
from .core.vocabulary import MANIFEST_NAMES

MANIFEST_SUFFIXES = (".harm3.yaml", ".harm3.yml", ".harm3.json")

#: the case panel's names in napari.yaml (plugin, widget display name)
CASE_PANEL = ("napari-harm3", "Case panel")


def is_case_manifest(path) -> bool:
    """A file named like a case manifest (cheap; never raises)."""
    try:
        if isinstance(path, (list, tuple)):
            return False
        p = Path(path)
        name = p.name.lower()
        return (name in MANIFEST_NAMES or name.endswith(MANIFEST_SUFFIXES)) and p.is_file()
    except (TypeError, ValueError, OSError):
        return False


def get_case_reader(path):
    """The reader for a case manifest, ``None`` for any other path."""
    return read_case if is_case_manifest(path) else None


def read_case_layers(path) -> list[tuple]:
    """MRI volumes (world affines, registration applied) and masks of the case at ``path`` as LayerData."""
    opened = open_case_data(load_case(path))
    try:
        return case_layer_data(opened).mri_layer_data()
    finally:
        opened.close()


def _viewer_with_window():
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # napari without a GUI (no Qt installed)
        return None
    return viewer if viewer is not None and getattr(viewer, "window", None) is not None else None


def read_case(path) -> list[tuple]:
    """npe2 reader: open the case in the case panel when there is a napari window."""
    viewer = _viewer_with_window()
    if viewer is None:
        return read_case_layers(path)
    load_case(path)  # a bad manifest fails here, in napari's own error report, not in a worker
    _, panel = viewer.window.add_plugin_dock_widget(*CASE_PANEL)
    panel.open_case(path)
    return [(None,)]
