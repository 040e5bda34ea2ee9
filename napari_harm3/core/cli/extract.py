"""``harm3 extract SLIDE… --patches DIR --out DIR --encoder NAME`` — patch features (CLAM files).

Features go to ``OUT/{encoder}/x{mag}/{patches,h5_files,pt_files}/{slide}.*`` (CrossFusion's
layout). Patches are taken from ``--patches`` (``harm3 patch``'s output) or computed when
missing. Slides run as tasks on Dask distributed: a local cluster of ``--workers`` by default,
or the cluster at ``--scheduler``. Finished slides are skipped (``--force`` redoes them);
interrupted ones resume. A slide without any tissue patch at a magnification gets files
holding an empty bag and one ``harm3: warning:`` line on stderr naming it.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..device import pick_device
from ..errors import Harm3Error
from ..wsi.distributed import extract_cohort
from ..wsi.encoders import create_encoder, resolve_name
from ..wsi.magnification import parse_magnification
from ..wsi.prepare import empty_bag_message, slide_paths
from .patch import add_tissue_arguments, tissue_params_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("extract", help="patch features at several magnifications (CLAM files)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files or folders of slides")
    parser.add_argument("--patches", required=True, help="folder of patch files (harm3 patch --out); missing ones are computed there")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--encoder", required=True, help="resnet50_trunc, vit_base_patch16_224, vit_large_patch16_224 (uni), texture_stats")
    parser.add_argument("--weights", default=None, help="local weight file (.safetensors, or a .pth/.bin state dict)")
    parser.add_argument("--mags", default="5,10,20", help="magnifications, comma-separated (default 5,10,20)")
    parser.add_argument("--patch-size", type=int, default=256)
    parser.add_argument("--mpp", type=float, default=None, help="microns per pixel of level 0, for slides that lack it")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cuda, mps, cpu or cuda:N")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="existing Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=1, help="local cluster workers (default 1)")
    parser.add_argument("--force", action="store_true", help="recompute slides that are done")
    parser.add_argument("--compile", action="store_true",
                        help="compile the encoder with torch.compile: ~1.1-1.2x faster on a CPU after a one-off "
                             "0.5-2 min per worker (needs a C++ compiler); worth it for many slides")
    add_tissue_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    mags = [parse_magnification(m) for m in str(args.mags).split(",") if m.strip()]
    if not mags:
        raise Harm3Error("--mags is empty; give e.g. 5,10,20")
    resolve_name(args.encoder)
    pick_device(args.device)  # fail early on a device that is not there
    create_encoder(args.encoder, weights=args.weights)  # fail early on bad weights (warns on random-init)
    slides = slide_paths(args.slides)
    with tqdm(total=len(slides), desc="extracting", unit="slide") as bar:
        def progress(fraction, message):
            bar.n = round(fraction * len(slides))
            bar.set_postfix_str(message[-60:])
            bar.refresh()

        outcomes = extract_cohort(slides, args.out, args.encoder, args.weights, mags, args.patch_size, args.mpp,
                                  args.patches, tissue_params_from(args), args.contour, args.batch_size,
                                  args.device, args.scheduler, args.workers, processes=args.workers > 1,
                                  force=args.force, progress=progress, compile=args.compile)
    failed = [o for o in outcomes if o.status != "done"]
    for outcome in outcomes:
        counts = ", ".join(f"x{m:g}: {n}" if m else f"native: {n}" for m, n in outcome.patches.items())
        print(f"{outcome.slide}: {outcome.status} {counts}{outcome.message}", file=sys.stderr if outcome.status != "done" else sys.stdout)
        for mag in (m for m, n in outcome.patches.items() if n == 0):
            print(f"harm3: warning: {empty_bag_message(outcome.slide, mag)}", file=sys.stderr)
    if failed:
        raise Harm3Error(f"{len(failed)} of {len(outcomes)} slides failed (see above)")
    return 0
