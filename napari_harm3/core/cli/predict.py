"""``harm3 predict COHORT --out predictions.csv`` — both models over a cohort, resumable.

One row per case (p(pCR) and risk with their spread over the fold models, risk group, missing
inputs, model names and weight sha256, status and reason; see ``core/cohort/rows.py``). A rerun
skips the cases finished with the same inputs and models (``--force`` reruns all); the CSV is
rewritten atomically after each case. A case whose files are missing or unreadable is skipped
with its reason, a case that fails is reported in one line, and the others go on (exit status
2 if any case was skipped or failed). ``--workers N`` runs the cases on a local Dask cluster of
N worker processes, ``--scheduler ADDRESS`` on an existing one; by default they run here. ``--summary DIR`` also writes the cohort
summary (``summary.csv``, ``summary_metrics.csv``, ``summary.pdf``; external validation where
the cohort has labels), replacing a previous summary there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..cohort.model_refs import choose_models
from ..cohort.rows import FINISHED
from ..cohort.runner import failure_line, run_cohort
from ..cohort.summary import write_cohort_summary
from ..device import pick_device
from ..errors import Harm3Error
from ..io.cohort import read_cohort_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict pCR and survival for every case of a cohort (resumable)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("cohort", metavar="COHORT", help="cohort.csv or a folder holding it")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV (resumed when it exists)")
    parser.add_argument("--pcr-model", type=Path, help="HARM3-Fusion model folder (default: the zoo's)")
    parser.add_argument("--survival-model", type=Path, help="CrossFusion model folder (default: the zoo's)")
    parser.add_argument("--models", type=Path, nargs="+", metavar="MODEL_DIR",
                        help="run exactly these model folders (each for the analysis its card serves)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler, e.g. tcp://10.0.0.5:8786 (--workers is then ignored)")
    parser.add_argument("--workers", type=int, default=0,
                        help="N >= 1: a local Dask cluster of N worker processes; 0: in this process (default)")
    parser.add_argument("--force", action="store_true", help="rerun every case, finished or not")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--summary", type=Path, metavar="DIR",
                        help="also write summary.csv, summary_metrics.csv and summary.pdf here")
    parser.set_defaults(handler=run)


def run(args) -> int:


    if args.workers < 0:
        raise Harm3Error(f"--workers must be 0 (in this process) or more, got {args.workers}")
    pick_device(args.device)  # a wrong --device is an error before any work
    models, notes = choose_models(args.pcr_model, args.survival_model, args.models)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    total = len(read_cohort_table(args.cohort))
    bar = tqdm(total=total, desc="predict", unit="case", file=sys.stderr, disable=None, dynamic_ncols=True)

    def on_row(row, reused):
        bar.update(1)
        if row.status not in FINISHED:
            bar.write(f"harm3: {failure_line(row)}", file=sys.stderr)

    try:
        result = run_cohort(args.cohort, args.out, models, device=args.device, force=args.force,
                            workers=args.workers, scheduler=args.scheduler, on_row=on_row)
    finally:
        bar.close()
    print(f"{result.out}: {result.line()}")
    if args.summary is not None:

        for path in write_cohort_summary(result.rows, result.labels, args.summary, overwrite=True):
            print(f"wrote {path}")
    counts = result.counts()
    return 2 if counts["failed"] or counts["skipped"] else 0
