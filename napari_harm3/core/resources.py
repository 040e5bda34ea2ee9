"""Where the shipped resources and the model zoo are, from a checkout or an installed wheel.

``resources/`` and ``napari.yaml`` live at the top of the checkout (the user's layout) and are
symlinked into the package, so that a wheel carries copies and an editable install sees
the originals.
"""

from __future__ import annotations

import os
from importlib import resources as _ir
from pathlib import Path


def resources_dir() -> Path:
    """The folder with report templates, icons, colormaps and sample-case descriptors."""
    return Path(str(_ir.files("napari_harm3") / "resources"))


def resource(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"resource not found: {'/'.join(parts)} (looked in {resources_dir()})")
    return path


def models_dir() -> Path:
    """The model zoo: ``$HARM3_MODELS`` if set, else ``models/`` of the checkout, else the
    user's data folder (``~/.local/share/napari-harm3/models``)."""
    env = os.environ.get("HARM3_MODELS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "models"
    if checkout.is_dir():
        return checkout
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "napari-harm3" / "models"
