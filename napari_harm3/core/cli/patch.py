"""``harm3 patch SLIDE… --out DIR`` — tissue segmentation and patch coordinates (CLAM files).

Writes ``DIR/x{mag}[_p{size}]/patches/{slide}.h5`` (CLAM's patch file) per slide and, with
``--save-mask``, ``DIR/x{mag}…/masks/{slide}_mask.png``.
"""

from __future__ import annotations

import argparse

from tqdm import tqdm

from ..wsi.feature_files import patch_file_path
from ..wsi.magnification import parse_magnification
from ..wsi.patch_grid import CONTOUR_FUNCTIONS
from ..wsi.patching import patch_slide, write_patches
from ..wsi.prepare import slide_paths
from ..wsi.tissue import PRESETS, TissueParams


def add_tissue_arguments(parser: argparse.ArgumentParser) -> None:
    """Tissue preset and per-parameter overrides (shared with ``harm3 extract``)."""
    group = parser.add_argument_group("tissue segmentation (CLAM)")
    group.add_argument("--preset", default="tcga", choices=sorted(PRESETS), help="parameter preset (default tcga)")
    group.add_argument("--contour", default="four_pt", choices=CONTOUR_FUNCTIONS,
                       help="patch-in-tissue rule (default four_pt, CLAM's; corner_any is the HARM3-Fusion paper's)")
    for name, kind, text in (("sthresh", int, "saturation threshold"), ("mthresh", int, "median blur kernel (odd)"),
                             ("close", int, "closing kernel size (0 = none)"),
                             ("a_t", float, "min tissue area, in 512x512 level-0 patches"),
                             ("a_h", float, "min hole area, in 512x512 level-0 patches"),
                             ("max_n_holes", int, "holes kept per contour"), ("seg_level", int, "segmentation level")):
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None, help=f"{text} (overrides the preset)")
    group.add_argument("--otsu", dest="use_otsu", action="store_true", default=None, help="Otsu threshold instead of --sthresh")


def tissue_params_from(args):
    names = ("sthresh", "mthresh", "close", "a_t", "a_h", "max_n_holes", "seg_level", "use_otsu")
    return TissueParams.from_preset(args.preset, **{n: getattr(args, n, None) for n in names})


def register(subparsers) -> None:
    parser = subparsers.add_parser("patch", help="segment tissue and write CLAM patch coordinates",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files or folders of slides")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--mag", default="20", help="target magnification: 5, 10, 20, 40 or 'native' (default 20)")
    parser.add_argument("--patch-size", type=int, default=256, help="patch size in pixels at --mag (default 256)")
    parser.add_argument("--mpp", type=float, default=None, help="microns per pixel of level 0, for slides that lack it")
    parser.add_argument("--save-mask", action="store_true", help="also write a PNG of the mask, contours and patches")
    add_tissue_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    mag = parse_magnification(args.mag)
    params = tissue_params_from(args)
    for path in tqdm(slide_paths(args.slides), desc="patching", unit="slide"):
        patch_set = patch_slide(path, mag, args.patch_size, params, args.contour, args.mpp)
        out = write_patches(patch_set, patch_file_path(args.out, mag, args.patch_size, patch_set.slide),
                            save_mask=args.save_mask)
        tqdm.write(f"{patch_set.slide}: {len(patch_set)} patches of {args.patch_size} px at "
                   f"{args.mag}x ({patch_set.plan.patch_size_level0} level-0 px) → {out}")
    return 0
