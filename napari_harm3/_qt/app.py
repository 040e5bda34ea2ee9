"""Open napari with the case panel on a case — the body of ``harm3 demo`` and ``harm3 view``.

:func:`open_case_window` makes the window (napari viewer = the slide viewer, case panel and
linked MRI grid docked) and starts reading the case; :func:`wait_for_case` runs the Qt event
loop until the case is shown (or failed); :func:`write_screenshots` writes the MRI grid and the
slide viewer as PNG. The command line reaches it through the glue's launcher (``napari_harm3.launcher``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..core.errors import Harm3Error
from .case_panel import CasePanel
from .startup_gc import freeze_startup_objects
from .warm_up import warm_up
from .workflow_panel import install_workflow

#: hooks run after the case is shown, in order: ``hook(viewer, panel, out_dir) -> list[Path]``.
#: The model runs (HARM3-Fusion pCR, CrossFusion survival), their overlays and the report
#: export plug in here (see ``napari_harm3.core.cli.demo``); each returns the files it wrote.
CaseHook = Callable[[object, object, Optional[Path]], list]

WINDOW_SIZE = (1800, 1100)


def open_case_window(source=None, files: Optional[dict] = None, mpp: Optional[float] = None,
                     show: bool = True, title: str = "napari-harm3", cohort=None):
    """A napari viewer with the case panel docked, reading ``source`` (manifest) or ``files``, or
    ``cohort`` in the Worklist tab (its first case in the table's order opened).

    Returns ``(viewer, panel)``; the case arrives asynchronously (see :func:`wait_for_case`).
    """
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title=title, show=show)
    viewer.window.resize(*WINDOW_SIZE)
    panel = CasePanel(viewer)
    install_workflow(panel)  # the "Models" tab: run buttons, results, overlays, report
    viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
    QApplication.processEvents()  # lay out the window before the grid dock takes its share
    panel.show_grid()
    warm_up()  # the first case open's one-time work (pint's unit registry, vispy's dash atlas)
    # the imports and the window live as long as the process: out of napari's gc.collect() per
    # removed layer (seconds each otherwise); before any case is open, so no case data is frozen
    freeze_startup_objects()
    if mpp is not None:
        panel.case_loaded.connect(_apply_mpp_once(panel, mpp))
    if source is not None:
        panel.open_case(source)
    elif files:
        panel.open_files(files, slide_mpp=mpp)
    elif cohort is not None and panel.worklist.open_cohort(cohort):
        panel.worklist.next_case()
    return viewer, panel


def _apply_mpp_once(panel, mpp: float):
    def apply(_layers=None) -> None:
        if panel.slide_view.layer is not None and panel.slide_view.mpp is None:
            panel.set_mpp(mpp)

    return apply


def wait_for_case(panel, timeout_s: float = 600.0):
    """Run the Qt event loop until the panel shows a case; :class:`Harm3Error` if it failed."""
    from .demo_steps import wait_for

    if panel.case_layers is not None and panel.worker is None:
        return panel.case_layers
    index, args = wait_for([panel.case_loaded, panel.case_failed], timeout_s)
    if index == 1:
        raise Harm3Error(args[0])
    if index is None:
        raise Harm3Error(f"the case was not read within {timeout_s:.0f} s")
    return args[0]


def settle(viewer, panel) -> None:
    """Let Qt lay out and draw the windows (before screenshots)."""
    from qtpy.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    panel.grid.reset_view()
    viewer.reset_view()
    QApplication.processEvents()


def write_screenshots(viewer, panel, out_dir, overwrite: bool = True, scale: float = 1.0) -> list[Path]:
    """PNG pictures of the MRI grid, the slide viewer and the whole window into ``out_dir``."""
    from .images import save_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settle(viewer, panel)
    written = [out_dir / "mri_grid.png"]
    save_png(panel.grid.screenshot(scale=scale), written[0], overwrite=overwrite)
    if panel.slide_view.layer is not None:
        written.append(out_dir / "slide_viewer.png")
        panel.show_slide()  # its tab in front while its canvas is drawn
        settle(viewer, panel)
        save_png(panel.slide_view.screenshot(), written[-1], overwrite=overwrite)
        if panel.case_layers is None or panel.case_layers.volumes:
            panel.show_grid()
            settle(viewer, panel)
    written.append(out_dir / "window.png")
    save_png(viewer.screenshot(canvas_only=False, flash=False), written[-1], overwrite=overwrite)
    return written


def preload_torch() -> None:
    """Import torch, torchvision and grad-cam before napari creates its OpenGL context.

    On these machines, loading torchvision (its import pulls in torch._dynamo → triton's native
    library) after a shown napari viewer exists crashes the process (SIGSEGV), in any thread.
    """
    import importlib

    for name in ("torch", "torchvision", "pytorch_grad_cam"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def run_case_window(manifest=None, files=None, mpp=None, out=None, headless=False, steps=(), cohort=None) -> int:
    """Open the case in napari (``harm3 demo`` / ``harm3 view``); headless: run the steps, write
    screenshots into ``out`` and close. Returns the exit status."""
    import napari

    # torch/torchvision imported after napari has an OpenGL context crash the process here
    # (SIGSEGV in their shared libraries), so the model tab's libraries are loaded first
    preload_torch()
    viewer, panel = open_case_window(manifest, files=files, mpp=mpp, show=True, cohort=cohort)
    try:
        layers = wait_for_case(panel)
        print(f"harm3: case {layers.case_id} shown: {', '.join(layers.volumes) or 'no MRI'}"
              f"{', slide' if layers.slide else ''}", flush=True)
        written = []
        for step in steps:
            written += list(step(viewer, panel, out) or [])
        if headless:
            if out is None:
                raise Harm3Error("--headless needs --out DIR for the screenshots")
            written = write_screenshots(viewer, panel, out) + written
            for path in written:
                print(f"wrote {path}", flush=True)
            return 0
    except BaseException:
        panel.close_viewers()
        viewer.close()
        raise
    if headless:  # pragma: no cover - returned above
        return 0
    napari.run()
    return 0
