"""harm3 demo [--out DIR] [--headless]: the demo patient in the linked viewers, both models run.

With a display: opens napari with the plugin, the synthetic demo patient in the linked 2×2 MRI
grid and its biopsy slide in the slide viewer, then runs both zoo models as a user's clicks
would (overlays shown). ``--headless`` (``scripts/demo.sh`` runs it under ``xvfb-run``) does the
same in real, shown windows on the virtual display, exports the report, writes PNG screenshots
of the MRI grid, the slide viewer and the whole window to ``--out`` (replacing those of an
earlier run), prints what it wrote and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..synth.demo import demo_case


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
    from ... import launcher  # lazy: the CLI's one upward edge (the launcher starts Qt)

    manifest = demo_case(args.cache, progress=_print_progress)
    print(f"demo: case manifest {manifest}", flush=True)
    return launcher.open_viewer(manifest, out=args.out, headless=args.headless, demo=True)
