"""``harm3 report CASE… --out report.pdf | --out-dir DIR`` — per-patient reports, headless.

One case: ``--out report.pdf`` (and ``--json report.json``). Several cases (a batch):
``--out-dir DIR`` writes ``DIR/<case>.pdf`` and ``DIR/<case>.json`` for each (``<case>`` is the
pseudonym with ``--deidentify``). Models default to the zoo's (card kinds ``harm3`` and
``crossfusion``); a model that is absent leaves its analysis out, and the report says why.
Nothing is overwritten without ``--overwrite``; every file is written atomically. In a batch,
a case that fails is reported and the others go on (exit status 2 if any failed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import Harm3Error


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write a per-patient report (PDF + JSON)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", metavar="CASE", help="case folder or its manifest (several: use --out-dir)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="PDF to write (one case)")
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
    parser.set_defaults(handler=run)


def output_paths(args, report) -> tuple:
    """(pdf path, json path or None) for one built report."""
    if args.out is not None:
        return args.out, args.json
    name = report.case.case_id
    return args.out_dir / f"{name}.pdf", args.out_dir / f"{name}.json"


def _refuse_existing(paths, overwrite: bool) -> None:
    """Fail before any work when a target exists (so a batch never half-writes a case)."""
    for path in paths:
        if path is not None and Path(path).exists() and not overwrite:
            raise Harm3Error(f"{path} exists; pass --overwrite (or choose another name) to replace it")


def write_case_report(case, args, progress=None) -> tuple:
    """Build, optionally de-identify, and write one case's report; returns the paths written."""
    from ..report.build import build_report
    from ..report.render_json import write_report_json
    from ..report.render_pdf import write_report_pdf

    if args.out is not None:
        _refuse_existing((args.out, args.json), args.overwrite)
    report = build_report(case, pcr_model_dir=args.pcr_model, survival_model_dir=args.survival_model,
                          device=args.device, progress=progress)
    if args.deidentify:
        report = report.deidentified(salt=args.pseudonym_salt)
    pdf, json_path = output_paths(args, report)
    _refuse_existing((pdf, json_path), args.overwrite)
    write_report_pdf(report, pdf, overwrite=args.overwrite)
    if json_path is not None:
        write_report_json(report, json_path, overwrite=args.overwrite)
    return report, pdf, json_path


def run(args) -> int:
    if args.out is not None and len(args.cases) > 1:
        raise Harm3Error(f"{len(args.cases)} cases given with --out; use --out-dir DIR for a batch")
    if args.json is not None and args.out is None:
        raise Harm3Error("--json goes with --out; with --out-dir the JSON is written next to each PDF")
    failed = 0
    for case in args.cases:
        try:
            report, pdf, json_path = write_case_report(case, args)
        except Harm3Error as exc:
            if len(args.cases) == 1:
                raise
            print(f"harm3: error: {case}: {exc}", file=sys.stderr)
            failed += 1
            continue
        written = ", ".join(str(p) for p in (pdf, json_path) if p is not None)
        print(f"{case}: wrote {written}")
        for note in report.notes:
            print(f"  note: {note}")
    return 2 if failed else 0
