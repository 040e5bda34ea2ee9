"""``harm3 align CASE_OR_COHORT`` — register a case's volumes onto T1-pre and record the transforms.

T1-post → T1-pre, T2-pre → T1-pre, T2-post → T2-pre (composed onto T1-pre). Writes
``<case>/transforms/<seq>_to_t1_pre.tfm`` (+ ``.json``) and the manifest's ``transforms:``
entries; the viewer, prediction and training then see every volume through them. Only plausible
registrations are written. Rerunning keeps what is done (``--force`` redoes it). A cohort (a
``cohort.csv`` or a folder holding one) runs its cases in parallel on Dask: a local cluster of
``--workers`` by default, or the cluster at ``--scheduler``. One line per case; a case that fails
prints one ``harm3: error:`` line and the others go on (exit status 2 when any failed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import Harm3Error
from ..io.cohort import is_cohort_path, read_cohort_table
from ..mri.registration_case import align_case
from ..mri.registration_cohort import align_cohort
from .register import add_registration_arguments, config_from


def register(subparsers) -> None:

    parser = subparsers.add_parser("align", help="register a case's (or cohort's) volumes onto T1-pre",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("path", metavar="CASE_OR_COHORT", help="case.yaml, a case folder, cohort.csv or a folder holding it")
    add_registration_arguments(parser)
    parser.add_argument("--force", action="store_true", help="register again sequences that are done")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="existing Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=2, help="local cluster workers for a cohort (default 2)")
    parser.set_defaults(handler=run)


def run(args) -> int:


    config = config_from(args)
    path = Path(args.path)
    if is_cohort_path(path):
        manifests = [entry.manifest for entry in read_cohort_table(path)]

        def progress(fraction, message):
            print(f"[{fraction * 100:5.1f} %] {message}", file=sys.stderr, flush=True)

        outcomes = align_cohort(manifests, config, force=args.force, scheduler=args.scheduler,
                                workers=args.workers, progress=progress)
    else:
        outcomes = [align_case(path, config, force=args.force)]
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes:
        if outcome.ok:
            print(outcome.line(), flush=True)
        else:
            print(f"harm3: error: {outcome.line()}", file=sys.stderr, flush=True)
    if failed:
        if len(outcomes) == 1:
            return 2
        raise Harm3Error(f"{len(failed)} of {len(outcomes)} cases could not be aligned (see above)")
    return 0
