"""``harm3 register FIXED MOVING --out T.tfm [--mode rigid|affine] [--fixed-mask M]`` — register two volumes.

FIXED and MOVING are NIfTI files or DICOM folders (``folder#SeriesInstanceUID`` picks a series).
Writes ``T.tfm``, an ITK transform mapping FIXED's physical (LPS mm) points to MOVING's — what
ITK, SimpleITK and 3D Slicer read, and what a case manifest's ``transforms:`` holds — and
``T.json`` next to it: final metric, iterations, time, the plausibility verdict and the
parameters. An implausible result (not converged, rotation or shift out of bounds, foregrounds
that disagree) exits with status 2 and one line saying why, and nothing is written, unless
``--accept-implausible``: then both files are written, the record says it was accepted, and a
warning line says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import Harm3Error
from ..io.case import split_series_reference
from ..io.masks import read_mask
from ..io.mri import read_volume
from ..mri.registration import (
    INITIALISATIONS,
    MODES,
    RegistrationConfig,
    register_volumes,
)
from ..mri.registration_files import (
    check_transform_path,
    record_path,
    write_registration,
)


def add_registration_arguments(parser) -> None:
    """Options shared by ``register`` and ``align``."""
    parser.add_argument("--mode", choices=MODES, default="rigid", help="rigid (default, 6 parameters) or affine (12)")
    parser.add_argument("--init", choices=INITIALISATIONS, default="geometry",
                        help="geometry (default): start from the scanner frames; moments: superpose the foregrounds' "
                             "centroids first (volumes from different frames of reference)")
    parser.add_argument("--levels", default=None, metavar="MM,MM,...",
                        help="working voxel size per level, coarse to fine (default 8,4,2,1)")
    parser.add_argument("--search", default=None, metavar="MAX,STEP",
                        help="coarse search over rotations about each axis within ±MAX° in STEP° steps before the "
                             "optimiser (default 30,15; 0,0 skips it)")
    parser.add_argument("--threads", type=int, default=None, help="SimpleITK threads (default: all cores)")


def config_from(args):

    options = {"mode": args.mode, "init": args.init, "threads": args.threads}
    if args.levels:
        try:
            options["levels_mm"] = tuple(float(v) for v in str(args.levels).split(",") if v.strip())
        except ValueError:
            raise Harm3Error(f"--levels must be millimetres separated by commas, e.g. 8,4,2,1; got {args.levels!r}") from None
    if args.search:
        try:
            limit, step = (float(v) for v in str(args.search).split(","))
        except ValueError:
            raise Harm3Error(f"--search must be two numbers of degrees, MAX,STEP (e.g. 30,15); got {args.search!r}") from None
        options.update(search_deg=limit, search_step_deg=step)
    return RegistrationConfig(**options)


def register(subparsers) -> None:
    parser = subparsers.add_parser("register", help="register two MRI volumes (rigid or affine, mutual information)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("fixed", metavar="FIXED", help="reference volume: NIfTI file or DICOM folder")
    parser.add_argument("moving", metavar="MOVING", help="volume to align onto FIXED")
    parser.add_argument("--out", required=True, help="transform file to write (.tfm, .txt, .h5 or .mat); its record goes to the same name .json")
    parser.add_argument("--fixed-mask", default=None, metavar="M",
                        help="mask on FIXED (NIfTI labels or RTSTRUCT) limiting where the images are compared")
    add_registration_arguments(parser)
    parser.add_argument("--accept-implausible", action="store_true",
                        help="write the result even when it fails the plausibility checks (the record says so)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(handler=run)


def run(args) -> int:



    out = check_transform_path(args.out)
    for target in (out, record_path(out)):
        if target.exists() and not args.overwrite:
            raise Harm3Error(f"{target} exists; pass --overwrite (or choose another name) to replace it")
    config = config_from(args)
    fixed = read_volume(*split_series_reference(args.fixed))
    moving = read_volume(*split_series_reference(args.moving))
    mask = read_mask(Path(args.fixed_mask), reference=fixed) if args.fixed_mask else None
    result = register_volumes(fixed, moving, config, fixed_mask=mask)
    verdict = result.verdict
    if not verdict.plausible and not args.accept_implausible:
        raise Harm3Error(f"registering {args.moving} onto {args.fixed}: {verdict.summary}; nothing written "
                         "(--accept-implausible writes it anyway)")
    record = {**result.to_dict(), "fixed": str(args.fixed), "moving": str(args.moving),
              "fixed_mask": str(args.fixed_mask) if args.fixed_mask else None,
              "accepted_implausible": bool(not verdict.plausible)}
    paths = write_registration(result.transform, record, out, rigid=config.mode == "rigid", overwrite=args.overwrite)
    if not verdict.plausible:
        print(f"harm3: warning: {verdict.summary}; written anyway (--accept-implausible)", file=sys.stderr)
    unregistered = (f"{result.metric_unregistered:.4f}" if np.isfinite(result.metric_unregistered)
                    else "n/a: no overlap in the scanner frame")
    print(f"{args.moving} → {args.fixed} ({config.mode}): {verdict.summary}; metric {result.metric:.4f} "
          f"(unregistered {unregistered}), {result.iterations} iterations, {result.seconds:.1f} s; "
          f"wrote {paths[0]} and {paths[1]}")
    return 0
