"""A resumable batch run over a cohort: one :class:`~.rows.CaseRow` per case, on Dask if asked.

:func:`run_cohort` reads the cohort table, loads each manifest, and runs every case that is not
already finished in the predictions CSV with the same key (case id, input files' sha256, model
weights' sha256; :mod:`.fingerprint`) — all of them with ``force``. A case whose manifest
cannot be read, or whose files are missing or unreadable (``io.case_checks.validate_case``),
is not predicted: its row has status ``skipped`` and the reason. A case that fails gets status
``failed`` and the rest go on. The CSV is rewritten atomically after every case, so a crash
loses at most the cases in flight, and a rerun picks up where the last one stopped.

Where the cases run: in this process (``workers=0``, the default), or on Dask distributed —
a local cluster of ``workers`` (1 or more) single-threaded worker processes, or the scheduler
at ``scheduler`` (its workers must see the same paths). The per-case function is a parameter
(``predict``, default :func:`.case_row.predict_case_row`); on Dask it must be importable by
the workers (a module-level function).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import torch
from distributed import as_completed

from ..errors import Harm3Error, one_line
from ..io.case import Case
from ..io.case_checks import validate_case
from ..io.cohort import case_of_entry, find_cohort_table, read_cohort_table
from ..progress import ProgressFn, report
from ..wsi.distributed import make_client
from .case_row import case_missing_inputs, predict_case_row
from .fingerprint import inputs_sha256, inputs_stat, row_is_current
from .model_refs import CohortModels
from .rows import FINISHED, STATUSES, CaseRow, read_predictions, write_predictions

PredictFn = Callable[[Case, CohortModels, str], CaseRow]


@dataclass(frozen=True)
class CohortRun:
    """What a batch run left in its predictions CSV."""

    table: Path               # the cohort table
    out: Path                 # the predictions CSV
    rows: tuple               # CaseRow per case, in the table's order
    labels: dict              # case_id → CaseLabels (table over manifest)
    predicted: int            # cases run this time
    reused: int               # finished rows kept from the previous run

    def counts(self) -> dict:
        found = Counter(row.status for row in self.rows)
        return {status: found.get(status, 0) for status in STATUSES}

    def line(self) -> str:
        """``12 cases: 9 ok, 1 partial, 1 failed, 1 skipped (3 reused)``."""
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items())
        return f"{len(self.rows)} cases: {counts} ({self.predicted} predicted, {self.reused} reused)"


def failure_line(row: CaseRow) -> str:
    """One readable line for a case that was not (fully) predicted."""
    return f"{row.case_id}: {row.status}: {row.reason}"


def run_case_task(case: Case, models: CohortModels, device: str = "auto", predict: PredictFn = predict_case_row,
                  torch_threads: int | None = None) -> CaseRow:
    """One case, as a worker runs it: fingerprint, check the files, predict; never raises."""
    start = time.perf_counter()
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    keys = {}
    try:
        keys = {"inputs_stat": inputs_stat(case), "inputs_sha256": inputs_sha256(case)}
        problems = validate_case(case)
        if problems:
            row = CaseRow(str(case.case_id), "skipped", reason="; ".join(problems),
                          missing_inputs=case_missing_inputs(case))
        else:
            row = predict(case, models, device)
    except Exception as exc:  # noqa: BLE001 - a case that fails becomes its row; the cohort goes on
        reason = one_line(exc) if isinstance(exc, Harm3Error) else f"{type(exc).__name__}: {one_line(exc)}"
        row = CaseRow(str(case.case_id), "failed", reason=reason, missing_inputs=case_missing_inputs(case))
    return dataclasses.replace(row, seconds=round(time.perf_counter() - start, 3),
                               finished=datetime.now().astimezone().isoformat(timespec="seconds"), **keys)


def _reused(row: CaseRow, case: Case) -> CaseRow:
    """A kept row, its recorded sizes/times refreshed (so the next resume need not hash again)."""
    stat = inputs_stat(case)
    return row if row.inputs_stat == stat else dataclasses.replace(row, inputs_stat=stat)


def _serial(cases, models, device, predict):
    for case in cases:
        yield run_case_task(case, models, device, predict)


def _distributed(cases, models, device, predict, workers, scheduler, client):
    own = client is None
    if own:
        client = make_client(scheduler, workers)  # make_client keeps glibc's default malloc trim threshold
    threads = 1 if own and not scheduler else None  # a local cluster: one torch thread per worker process
    futures = {}
    try:
        for k, case in enumerate(cases):
            future = client.submit(run_case_task, case, models, device, predict, threads,
                                   key=f"harm3-predict-{k}-{case.case_id}", pure=False)
            futures[future] = case
        for future in as_completed(futures):
            case = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker or a task that could not run
                yield CaseRow(str(case.case_id), "failed", reason=f"the Dask task failed: {type(exc).__name__}: "
                                                                  f"{one_line(exc)}")
    finally:
        client.cancel(list(futures))
        if own:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


def run_cohort(cohort, out, models: CohortModels, predict: PredictFn = predict_case_row, device: str = "auto",
               force: bool = False, workers: int = 0, scheduler: str | None = None, client=None,
               progress: ProgressFn | None = None, on_row: Callable | None = None,
               still_done: Callable | None = None) -> CohortRun:
    """Predict every case of ``cohort`` (a cohort CSV or a folder with ``cohort.csv``) into ``out``.

    ``still_done(row)``: an extra condition for keeping a finished row (e.g. its report files exist).

    ``on_row(row, reused)`` is called for each row as it is known (kept rows first); ``progress``
    after each case run (raising ``Cancelled`` from it stops the run; the rows so far are kept).
    """
    entries = read_cohort_table(cohort)
    table = find_cohort_table(cohort).resolve()
    out = Path(out)
    if out.resolve() == table:
        raise Harm3Error(f"{out} is the cohort table; give another file for the predictions")
    previous = {row.case_id: row for row in read_predictions(out)} if out.exists() else {}
    rows, labels, todo, reused = {}, {}, [], set()
    for entry in entries:
        try:
            case = case_of_entry(entry)
        except Harm3Error as exc:
            rows[entry.case_id] = CaseRow(entry.case_id, "skipped", reason=one_line(exc))
            labels[entry.case_id] = entry.labels
            continue
        labels[entry.case_id] = case.labels
        old = previous.get(entry.case_id)
        if (not force and old is not None and old.status in FINISHED and row_is_current(old, case, models)
                and (still_done is None or still_done(old))):
            rows[entry.case_id] = _reused(old, case)
            reused.add(entry.case_id)
        else:
            todo.append(case)

    def save():
        write_predictions([rows[e.case_id] for e in entries if e.case_id in rows], out)

    for row in list(rows.values()):
        if on_row is not None:
            on_row(row, row.case_id in reused)
    save()
    if todo:
        run = (_serial(todo, models, device, predict) if client is None and not scheduler and workers < 1
               else _distributed(todo, models, device, predict, workers, scheduler, client))
        report(progress, 0.0, f"0/{len(todo)} cases")
        try:
            for done, row in enumerate(run, start=1):
                rows[row.case_id] = row
                save()
                if on_row is not None:
                    on_row(row, False)
                report(progress, done / len(todo), f"{done}/{len(todo)} cases ({row.case_id}: {row.status})")
        finally:
            run.close()  # on Dask: cancels what is left, closes an own cluster
    return CohortRun(table=table, out=out, rows=tuple(rows[e.case_id] for e in entries), labels=labels,
                     predicted=len(todo), reused=len(reused))
