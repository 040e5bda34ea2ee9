"""``harm3 validate CASE_OR_COHORT`` — list every problem of a case or a cohort at once.

Accepts a case manifest, a case folder (with ``case.yaml``), a cohort CSV, or a folder with
``cohort.csv``. Opens every file with the project's readers unless ``--no-open``. Exit status
0 when everything is readable, 2 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import Harm3Error
from ..io.case import load_case
from ..io.case_checks import validate_case, validate_cohort
from ..io.cohort import is_cohort_path, read_cohort_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check a case manifest or a cohort table, listing every problem",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("path", help="case.yaml, a case folder, cohort.csv or a folder holding cohort.csv")
    parser.add_argument("--no-open", action="store_true", help="only check that files exist (faster)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    path = Path(args.path)
    open_files = not args.no_open
    if is_cohort_path(path):
        problems = validate_cohort(path, open_files=open_files)
        what = "cohort"
        try:
            count = f"{len(read_cohort_table(path))} cases"
        except Harm3Error:
            count = "cohort table unreadable"
    else:
        try:
            case = load_case(path)
        except Harm3Error as exc:
            problems, what, count = [str(exc)], "case", "manifest unreadable"
        else:
            problems, what, count = validate_case(case, open_files=open_files), f"case {case.case_id}", (
                f"{len(case.mri)} MRI, {len(case.masks)} masks, {'a' if case.slide else 'no'} slide")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        print(f"{path}: {what} ({count}): {len(problems)} problem(s)", file=sys.stderr)
        return 2
    print(f"{path}: {what} OK ({count})")
    return 0
