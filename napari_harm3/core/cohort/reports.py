"""A cohort's reports: ``harm3 report COHORT --out DIR``.

Every case goes through the batch runner (:mod:`.runner`: resumable, one line per failing case,
Dask for large cohorts) with a per-case function that opens the case in a case session, runs both
models (with the MRI maps, as the report shows them) and exports ``DIR/<case>.pdf`` and
``DIR/<case>.json`` from the session, then returns the case's row. The runner keeps
``DIR/predictions.csv``; a finished case is skipped on the next run while its inputs, models and
both report files are unchanged. Last, the cohort summary (``summary.csv``,
``summary_metrics.csv``, ``summary.pdf``, with external validation where labels exist).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from ..errors import Harm3Error, one_line
from ..io.case import Case
from ..report.deidentify import pseudonym
from ..session.runs import predict_available
from .case_row import batch_session, case_missing_inputs
from .model_refs import CohortModels
from .rows import CaseRow
from .runner import run_cohort
from .summary import write_cohort_summary

PREDICTIONS_FILE = "predictions.csv"


def report_names(case_id: str, out_dir, deidentify: bool = False, salt: str = "") -> tuple:
    """(pdf, json) of one case's report in ``out_dir`` (named by the pseudonym when de-identified)."""
    name = pseudonym(case_id, salt) if deidentify else case_id
    return Path(out_dir) / f"{name}.pdf", Path(out_dir) / f"{name}.json"


def row_of_session(session, case: Case, reasons=()) -> CaseRow:
    """The batch row of the predictions a session holds for ``case``."""
    values = {"missing_inputs": case_missing_inputs(case)}
    pcr, survival = session.prediction("pcr"), session.prediction("survival")
    for analysis, prefix in (("pcr", "pcr"), ("survival", "survival")):
        folder = session.model_used(analysis)
        if folder is not None:
            values[f"{prefix}_model"] = folder.card.name
    if pcr is not None:
        values.update(pcr_probability=float(pcr.probability), pcr_spread=float(pcr.spread),
                      pcr_folds=len(pcr.fold_probabilities), missing_inputs=tuple(pcr.missing_inputs))
    if survival is not None:
        values.update(risk=float(survival.risk), risk_spread=float(survival.risk_spread),
                      survival_folds=len(survival.fold_risks), risk_threshold=survival.risk_threshold,
                      risk_group=survival.risk_group)
    ran = (pcr is not None) + (survival is not None)
    status = "ok" if not reasons else ("partial" if ran else "failed")
    return CaseRow(case_id=str(case.case_id), status=status, reason="; ".join(reasons), **values)


def report_case_row(case: Case, models: CohortModels, device: str = "auto", out_dir=".", deidentify: bool = False,
                    salt: str = "", overwrite: bool = False, writer=None) -> CaseRow:
    """Open ``case``, run both models, write its report into ``out_dir``; its row. ``writer``:
    what writes the built report's files (see ``reporting.export_report``; the viewer's worklist
    passes its report process's, so no PDF is rendered in the window's process)."""
    session = batch_session(device)
    try:
        session.open(case)
    except Harm3Error as exc:
        return CaseRow(case_id=str(case.case_id), status="failed", reason=one_line(exc))
    try:
        chosen = {"pcr": models.pcr.path if models.pcr else None,
                  "survival": models.survival.path if models.survival else None}
        notes = predict_available(session, chosen)
        pdf, json_path = report_names(str(case.case_id), out_dir, deidentify, salt)
        session.export_report(pdf, json_path, overwrite=overwrite, deidentify=deidentify, salt=salt, notes=notes,
                              writer=writer)
        row = row_of_session(session, case, [n for n in notes if "not run" in n])
    except Harm3Error as exc:
        row = CaseRow(case_id=str(case.case_id), status="failed", reason=one_line(exc))
    finally:
        session.close()
    if models.pcr is not None:
        row = _with_sha(row, "pcr", models.pcr)
    if models.survival is not None:
        row = _with_sha(row, "survival", models.survival)
    return row


def _with_sha(row: CaseRow, analysis: str, ref) -> CaseRow:
    return dataclasses.replace(row, **{f"{analysis}_model": ref.name, f"{analysis}_model_sha256": ref.sha256})


def write_cohort_reports(cohort, out_dir, models: CohortModels, device: str = "auto", deidentify: bool = False,
                         salt: str = "", overwrite: bool = False, workers: int = 0, scheduler: str | None = None,
                         progress=None, on_row=None) -> tuple:
    """Reports of every case of ``cohort`` into ``out_dir`` and the cohort summary: (CohortRun, summary paths)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = functools.partial(_report_task, out_dir=str(out_dir), deidentify=deidentify, salt=salt)

    def reports_exist(row: CaseRow) -> bool:
        return all(p.is_file() for p in report_names(row.case_id, out_dir, deidentify, salt))

    run = run_cohort(cohort, out_dir / PREDICTIONS_FILE, models, predict=work, device=device, force=overwrite,
                     workers=workers, scheduler=scheduler, progress=progress, on_row=on_row, still_done=reports_exist)
    summary = write_cohort_summary(run.rows, run.labels, out_dir, overwrite=True, title="Cohort summary (reports)")
    return run, summary


def _report_task(case, models, device, out_dir, deidentify, salt):
    """The runner's per-case function (module level: it crosses Dask's process boundary). The runner
    only calls it for a case whose report is missing or stale, so its files are replaced."""
    return report_case_row(case, models, device, out_dir=out_dir, deidentify=deidentify, salt=salt, overwrite=True)
