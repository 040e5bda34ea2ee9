"""harm3 demo [--out DIR] [--headless]: the demo patient in the linked viewers.

With a display: opens napari with the plugin, the synthetic demo patient in the linked 2×2 MRI
grid and its biopsy slide in the slide viewer. ``--headless`` (``scripts/demo.sh`` runs it under
``xvfb-run``) runs the same workflow in real, shown windows on the virtual display, writes PNG
screenshots of the MRI grid, the slide viewer and the whole window to ``--out`` (replacing those
of an earlier run), prints what it wrote and exits 0.

Extension point: :data:`DEMO_STEPS` — functions run after the case is shown, in order, as
``step(viewer, panel, out_dir) -> list[Path]`` (model runs, overlays, report export).
Qt and napari are imported inside the handler only, so ``harm3 --help`` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path



def run_models_step(viewer, panel, out_dir=None) -> list:
    """Both models (zoo demo models) on the demo patient, overlays shown; an absent model is said."""
    from ..._qt.demo_steps import run_models

    return run_models(viewer, panel, out_dir)


def export_report_step(viewer, panel, out_dir=None) -> list:
    """The per-patient report (PDF + JSON) from the results just shown (headless only)."""
    from ..._qt.demo_steps import export_report

    return export_report(viewer, panel, out_dir)


export_report_step.headless_only = True

#: steps after the case is shown: ``step(viewer, panel, out_dir) -> list[Path]`` (files written);
#: a step with ``headless_only = True`` runs with ``--headless`` only.
DEMO_STEPS: list = [run_models_step, export_report_step]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="open the demo patient (synthetic) in the linked viewers",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("harm3-demo-output"),
                        help="folder for the screenshots (default: %(default)s)")
    parser.add_argument("--headless", action="store_true",
                        help="write screenshots and exit instead of keeping the window open "
                             "(needs a display, e.g. xvfb-run)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where the demo patient is generated/cached (default: $HARM3_CACHE or ~/.cache/napari-harm3)")
    parser.set_defaults(handler=run)


def _print_progress(fraction: float, message: str) -> None:
    print(f"demo: {100 * fraction:5.1f}% {message}", flush=True)


def run(args) -> int:
    from ..synth.demo import demo_case

    manifest = demo_case(args.cache, progress=_print_progress)
    print(f"demo: case manifest {manifest}", flush=True)
    steps = [s for s in DEMO_STEPS if args.headless or not getattr(s, "headless_only", False)]
    return show_case(manifest, out=args.out, headless=args.headless, steps=steps)


def show_case(manifest=None, files=None, mpp=None, out=None, headless=False, steps=()) -> int:
    """Open the case in napari; headless: screenshots into ``out``, then close (shared with
    ``view``). The GUI itself lives in ``napari_harm3._qt.app``; nothing here imports Qt."""
    from ..._qt.app import run_case_window

    return run_case_window(manifest, files=files, mpp=mpp, out=out, headless=headless, steps=steps)
