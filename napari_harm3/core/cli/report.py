"""``harm3 report CASE… --out report.pdf | --out-dir DIR``, ``harm3 report COHORT --out DIR`` — reports, headless.

Each case is opened in a case session, both models run (the folders given, else the zoo's;
an analysis that cannot run is said in the report's notes), and the report is exported from the
session — the same object and the same code path as the viewer's Export button.

One case: ``--out report.pdf`` (and ``--json report.json``). Several cases: ``--out-dir DIR``
writes ``DIR/<case>.pdf`` and ``DIR/<case>.json`` for each (``<case>`` is the pseudonym with
``--deidentify``). Nothing is overwritten without ``--overwrite``; every file is written
atomically. In a batch, a case that fails is reported and the others go on (exit status 2 if
any failed).

A cohort (its ``cohort.csv`` or a folder holding it) with ``--out DIR`` writes every case's report
into DIR through the batch runner (resumable: a case whose inputs, models and report files are
unchanged is skipped; ``--overwrite`` redoes all; ``--workers``/``--scheduler`` as ``harm3 predict``),
keeps ``DIR/predictions.csv``, and ends with the cohort summary — ``summary.csv``,
``summary_metrics.csv`` and ``summary.pdf``, with external validation (AUC, Brier, calibration,
C-index, Kaplan–Meier by risk group) where the cohort has labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cohort.model_refs import choose_models
from ..cohort.reports import write_cohort_reports
from ..cohort.rows import FINISHED
from ..cohort.runner import failure_line
from ..errors import Harm3Error, user_message
from ..io.cohort import is_cohort_path
from ..report.deidentify import pseudonym
from ..report.write import refuse_existing
from ..session import CaseSession
from ..session.runs import predict_available


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write a per-patient report (PDF + JSON)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", metavar="CASE", help="case folder or its manifest (several: use --out-dir)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="PDF to write (one case), or the folder for a cohort's reports")
    target.add_argument("--out-dir", type=Path, help="folder for <case>.pdf and <case>.json (any number of cases)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here (with --out)")
    parser.add_argument("--deidentify", action="store_true",
                        help="remove names, IDs and dates; pseudonymise the case id; reduce paths to file names")
    parser.add_argument("--pseudonym-salt", default="",
                        help="secret mixed into the pseudonym (same salt, same pseudonym); default none")
    parser.add_argument("--pcr-model", type=Path, help="HARM3-Fusion model folder (default: the zoo's)")
    parser.add_argument("--survival-model", type=Path, help="CrossFusion model folder (default: the zoo's)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing report files")
    parser.add_argument("--workers", type=int, default=0, help="cohort: local Dask workers (0: in this process)")
    parser.add_argument("--scheduler", default=None, help="cohort: address of an existing Dask scheduler")
    parser.set_defaults(handler=run)


def output_paths(args, case_id: str) -> tuple:
    """(pdf, json or None) for one case."""
    if args.out is not None:
        return args.out, args.json
    name = pseudonym(case_id, args.pseudonym_salt) if args.deidentify else case_id
    return args.out_dir / f"{name}.pdf", args.out_dir / f"{name}.json"


def write_case_report(session: CaseSession, case, args, progress=None) -> tuple:
    """Open ``case`` in ``session``, run the models, write its report: (pdf, json, notes)."""
    if args.out is not None:
        refuse_existing((args.out, args.json), args.overwrite)  # before any work
    session.open(case)
    pdf, json_path = output_paths(args, session.ref.case_id)
    refuse_existing((pdf, json_path), args.overwrite)
    notes = predict_available(session, {"pcr": args.pcr_model, "survival": args.survival_model}, progress)
    pdf, json_path = session.export_report(pdf, json_path, overwrite=args.overwrite, deidentify=args.deidentify,
                                           salt=args.pseudonym_salt, notes=notes, with_json=json_path is not None)
    return pdf, json_path, notes


def run_cohort_reports(args) -> int:
    """``harm3 report COHORT --out DIR``: a report per case, then the cohort summary."""
    models, notes = choose_models(args.pcr_model, args.survival_model)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    def on_row(row, reused):
        if row.status not in FINISHED:
            print(f"harm3: {failure_line(row)}", file=sys.stderr)

    run, summary = write_cohort_reports(args.cases[0], args.out, models, device=args.device,
                                        deidentify=args.deidentify, salt=args.pseudonym_salt,
                                        overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
                                        on_row=on_row)
    print(f"{args.out}: {run.line()}")
    for path in summary:
        print(f"wrote {path}")
    counts = run.counts()
    return 2 if counts["failed"] or counts["skipped"] else 0


def run(args) -> int:
    if len(args.cases) == 1 and is_cohort_path(args.cases[0]):
        if args.out is None or args.json is not None:
            raise Harm3Error("a cohort's reports go into a folder: harm3 report COHORT --out DIR (no --json)")
        return run_cohort_reports(args)
    if args.out is not None and len(args.cases) > 1:
        raise Harm3Error(f"{len(args.cases)} cases given with --out; use --out-dir DIR for a batch")
    if args.json is not None and args.out is None:
        raise Harm3Error("--json goes with --out; with --out-dir the JSON is written next to each PDF")
    session = CaseSession(device=args.device)
    failed = 0
    for case in args.cases:
        try:
            pdf, json_path, notes = write_case_report(session, case, args)
        except Harm3Error as exc:
            if len(args.cases) == 1:
                raise
            print(f"harm3: error: {case}: {user_message(exc, 'cli')}", file=sys.stderr)
            failed += 1
            continue
        finally:
            session.close()
        print(f"{case}: wrote {', '.join(str(p) for p in (pdf, json_path) if p is not None)}")
        for note in notes:
            print(f"  note: {note}")
    return 2 if failed else 0
