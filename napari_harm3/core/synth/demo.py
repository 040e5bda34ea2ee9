"""The demo patient: one phantom at demo size, generated once and cached.

Its parameters (seed, size, fixed latent scores) live in ``resources/samples/demo.yaml``.
The cache folder is ``$HARM3_CACHE/demo-<version>/`` when ``HARM3_CACHE`` is set, else
``~/.cache/napari-harm3/demo-<version>/`` (``$XDG_CACHE_HOME`` respected); ``<version>`` joins
the package version and the generator version, so a changed generator never serves a stale
demo. Generation happens in a hidden temporary folder that is renamed into place when
complete, so an interrupted run leaves no half-made demo behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from ... import __version__
from ..errors import Harm3Error
from ..progress import ProgressFn
from ..resources import resource
from .cohort import GENERATOR_VERSION, make_case

DEMO_PARAMETERS = ("samples", "demo.yaml")


def demo_parameters() -> dict:
    """The demo's seed, size, case id, fixed latents (and optional ``slide_size`` [height, width])
    from ``resources/samples/demo.yaml``."""
    path = resource(*DEMO_PARAMETERS)
    params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in ("case_id", "seed", "size") if k not in params]
    if missing:
        raise Harm3Error(f"{path}: missing field(s) {', '.join(missing)}")
    return params


def cache_root() -> Path:
    """``$HARM3_CACHE``, else ``$XDG_CACHE_HOME/napari-harm3``, else ``~/.cache/napari-harm3``."""
    if os.environ.get("HARM3_CACHE"):
        return Path(os.environ["HARM3_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "napari-harm3"


def demo_version() -> str:

    return f"{__version__}-g{GENERATOR_VERSION}"


def demo_case(cache_dir=None, progress: ProgressFn | None = None) -> Path:
    """Path of the demo patient's ``case.yaml``, generating it first if not cached (≈ half a minute)."""

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    folder = root / f"demo-{demo_version()}"
    manifest = folder / "case.yaml"
    if manifest.is_file():
        return manifest
    params = demo_parameters()
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".demo-", suffix=".partial", dir=root))
    try:
        slide_size = params.get("slide_size")
        make_case(scratch / "case", int(params["seed"]), params["size"], case_id=str(params["case_id"]),
                  slide_size=tuple(slide_size) if slide_size else None,
                  post_shift_mm=tuple(params.get("post_shift_mm") or (0.0, 0.0, 0.0)),
                  latents=params.get("latents") or None, progress=progress)
        try:
            os.rename(scratch / "case", folder)
        except OSError:
            if not manifest.is_file():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest
