"""Batches started from the worklist: predict, or write the reports of, some of its cases.

:func:`run_worklist_batch` runs one case after another (the batch runner's per-case task,
:func:`~.runner.run_case_task`: files checked, fingerprinted, never raises) and hands each
:class:`~.rows.CaseRow` to ``on_row`` as it comes; every row names its case, so the viewer puts
it into that case's row whatever the user opened meanwhile. ``token`` stops the batch before
the next case (the case in flight finishes). The batch works in its own case session (the
per-thread session of :mod:`.case_row`), never in the viewer's.

:func:`predict_task` / :func:`report_task` are the two per-case functions (both models; the
report also writes ``<reports>/<case>.pdf`` and ``.json`` from the session, as
``harm3 report`` does).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from ..errors import Harm3Error
from ..progress import CancelToken, ProgressFn, report
from .case_row import predict_case_row
from .model_refs import CohortModels
from .reports import report_case_row
from .rows import CaseRow
from .runner import run_case_task


def predict_task(models: CohortModels, device: str = "auto") -> Callable:
    """case → CaseRow: both models' predictions (the batch runner's task)."""
    return functools.partial(run_case_task, models=models, device=device, predict=predict_case_row)


def _report_predict(case, models, device, out_dir, writer=None):
    return report_case_row(case, models, device, out_dir=out_dir, overwrite=True, writer=writer)


def report_task(models: CohortModels, out_dir, device: str = "auto", writer: Callable | None = None) -> Callable:
    """case → CaseRow: both models and the case's report written into ``out_dir``; ``writer``
    writes each built report's files (default: in this process, see ``report_case_row``)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    work = functools.partial(_report_predict, out_dir=str(out_dir), writer=writer)
    return functools.partial(run_case_task, models=models, device=device, predict=work)


def run_worklist_batch(cases, task: Callable, on_row: Callable | None = None, token: CancelToken | None = None,
                       progress: ProgressFn | None = None) -> list:
    """Run ``task(case)`` for each ``Case`` of ``cases`` in order; the rows (fewer when cancelled).

    ``on_row(row)`` is called after each case (from this thread)."""
    cases = list(cases)
    if not cases:
        raise Harm3Error("no case to run: select cases in the worklist (or choose all)")
    rows = []
    report(progress, 0.0, f"0/{len(cases)} cases")
    for done, case in enumerate(cases, start=1):
        if token is not None and token.cancelled:
            break
        row: CaseRow = task(case)
        rows.append(row)
        if on_row is not None:
            on_row(row)
        report(progress, done / len(cases), f"{done}/{len(cases)} cases ({row.case_id}: {row.status})")
    return rows
