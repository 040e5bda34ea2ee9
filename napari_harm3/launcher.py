"""The one launcher of the viewer: how the command line (``harm3 demo``, ``harm3 view``) opens napari.

Glue layer: importing this module imports no Qt; :func:`open_viewer` imports the Qt application
(``napari_harm3._qt.app``) when it runs. The command line calls only this, never ``_qt``, so the
core's "no Qt, no napari" import check holds for every code path.
"""

from __future__ import annotations

import os
import sys

from .core.errors import Harm3Error


def check_display() -> None:
    """One readable line instead of Qt's abort when there is no screen to open a window on."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
            and os.environ.get("QT_QPA_PLATFORM", "") in ("", "xcb", "wayland"):
        raise Harm3Error("no display to open the viewer on (DISPLAY is not set): run it under `xvfb-run -a` "
                         "for screenshots, or use `bash scripts/demo.sh`, which starts Xvfb itself")


def open_viewer(manifest=None, files=None, mpp=None, out=None, headless: bool = False, demo: bool = False,
                cohort=None) -> int:
    """Open a case (a manifest, or ``files`` by key) in napari with the case panel and linked viewers;
    ``cohort``: the Worklist tab on that cohort, its first case open.

    ``demo``: run both models from the zoo afterwards and, headless, export the report;
    ``headless``: write screenshots (and the report) into ``out`` and close. Returns the exit status."""
    check_display()
    os.environ.setdefault("QT_API", "pyqt6")
    from ._qt import demo_steps
    from ._qt.app import run_case_window

    steps = []
    if demo:
        steps.append(demo_steps.run_models)
        if headless:
            steps.append(demo_steps.export_report)
    return run_case_window(manifest, files=files, mpp=mpp, out=out, headless=headless, steps=steps, cohort=cohort)
