"""The cohort summary: ``summary.csv``, ``summary_metrics.csv`` and ``summary.pdf``.

- ``summary.csv`` — one row per case of the cohort (in the table's order): status and reason,
  the predictions and the labels side by side (:data:`CASE_COLUMNS`);
- ``summary_metrics.csv`` — the cohort's metrics in long form, one per row
  (``analysis,metric,value,ci_low,ci_high,n,detail``): case counts by status, and where the
  cohort has labels, the external validation of :mod:`.validation` (AUC, Brier, C-index,
  log-rank p) with how each was computed; a second file rather than a header block above the
  case rows, so that both stay plain tables for a spreadsheet or ``pandas.read_csv``;
- ``summary.pdf`` — metrics table, ROC with its interval, calibration plot, Kaplan–Meier curves
  by predicted risk group with the log-rank p, and the cases not predicted with their reasons.

Every file is written atomically; existing ones are replaced only with ``overwrite``.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import Harm3Error
from ..io.case import LABEL_FIELDS, CaseLabels
from .rows import STATUSES, cell_text
from .summary_pdf import write_summary_pdf
from .validation import (
    CONFIDENCE,
    N_RESAMPLES,
    SEED,
    PcrValidation,
    SurvivalValidation,
    validate_pcr,
    validate_survival,
)

SUMMARY_FILES = ("summary.csv", "summary_metrics.csv", "summary.pdf")
CASE_COLUMNS = ("case_id", "status", "reason", "pcr_probability", "pcr_spread", "pcr", "risk", "risk_spread",
                "risk_group", "risk_threshold", "survival_months", "event", "missing_inputs", "pcr_model",
                "survival_model")
METRIC_COLUMNS = ("analysis", "metric", "value", "ci_low", "ci_high", "n", "detail")


@dataclass(frozen=True, eq=False)
class CohortValidation:
    """External validation of one batch run (None where the cohort lacks the labels)."""

    pcr: PcrValidation | None
    survival: SurvivalValidation | None
    notes: tuple
    n_resamples: int = N_RESAMPLES
    seed: int = SEED


def labels_by_case(labels) -> dict:
    """{case_id: CaseLabels} from a mapping or a loaded ``Cohort`` (its cases' merged labels)."""
    if hasattr(labels, "cases"):
        return {case.case_id: case.labels for case in labels.cases}
    return dict(labels or {})


def _threshold(rows, notes) -> float | None:
    found = Counter(r.risk_threshold for r in rows if r.risk is not None and r.risk_threshold is not None)
    if len(found) > 1:
        notes.append(f"survival: the rows carry {len(found)} different risk thresholds; the most common is used")
    return found.most_common(1)[0][0] if found else None


def cohort_validation(rows, labels, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> CohortValidation:
    """Join predictions with labels and validate both models where the cohort allows it."""
    labels = labels_by_case(labels)
    notes, pcr, survival = [], None, None
    pairs = [(labels[r.case_id].pcr, r.pcr_probability) for r in rows
             if r.case_id in labels and labels[r.case_id].pcr is not None and r.pcr_probability is not None]
    if pairs:
        y, p = np.array(pairs, dtype=float).T
        try:
            pcr = validate_pcr(y, p, n_resamples=n_resamples, seed=seed)
        except Harm3Error as exc:
            notes.append(f"pCR not validated: {exc}")
    else:
        notes.append("pCR not validated: no case has both a pCR label and a prediction")
    triples = [(labels[r.case_id].survival_months, labels[r.case_id].event, r.risk) for r in rows
               if r.case_id in labels and r.risk is not None and labels[r.case_id].survival_months is not None
               and labels[r.case_id].event is not None]
    if triples:
        times, events, risk = np.array(triples, dtype=float).T
        try:
            survival = validate_survival(times, events, risk, _threshold(rows, notes), n_resamples=n_resamples,
                                         seed=seed)
        except Harm3Error as exc:
            notes.append(f"survival not validated: {exc}")
        else:
            if survival.groups_note:
                notes.append(f"survival risk groups: {survival.groups_note}")
    else:
        notes.append("survival not validated: no case has a risk, a follow-up time and an event flag")
    return CohortValidation(pcr=pcr, survival=survival, notes=tuple(notes), n_resamples=n_resamples, seed=seed)


def case_records(rows, labels) -> list:
    """summary.csv's rows: each case's predictions and labels (cells as text)."""
    labels = labels_by_case(labels)
    out = []
    for row in rows:
        known = labels.get(row.case_id, CaseLabels())
        values = {name: getattr(row, name) for name in CASE_COLUMNS if name not in LABEL_FIELDS}
        values.update({name: getattr(known, name) for name in LABEL_FIELDS})
        out.append([cell_text(values[name]) for name in CASE_COLUMNS])
    return out


def metric_records(rows, validation: CohortValidation) -> list:
    """summary_metrics.csv's rows (cells as values; empty where not applicable)."""
    counts = Counter(r.status for r in rows)
    records = [("cohort", "cases", len(rows), "", "", len(rows), "rows of the cohort table")]
    records += [("cohort", f"cases_{s}", counts.get(s, 0), "", "", len(rows), "") for s in STATUSES]
    method = (f"{CONFIDENCE * 100:.0f} % percentile interval, {validation.n_resamples} bootstrap resamples "
              f"(seed {validation.seed})")
    if validation.pcr is not None:
        v = validation.pcr
        records += [
            ("pcr", "auc", v.auc.estimate, v.auc.low, v.auc.high, v.n, f"sklearn roc_auc_score; {method}, "
             "stratified by pCR"),
            ("pcr", "brier", v.brier.estimate, v.brier.low, v.brier.high, v.n, f"sklearn brier_score_loss; {method}"),
            ("pcr", "n_pcr", v.n_positive, "", "", v.n, "labelled pCR cases with a prediction"),
            ("pcr", "calibration_bins", len(v.calibration.counts), "", "", v.n,
             f"sklearn calibration_curve, {v.calibration.n_bins} equal-width bins (non-empty ones counted)")]
    if validation.survival is not None:
        v = validation.survival
        records += [
            ("survival", "c_index", v.cindex.estimate, v.cindex.low, v.cindex.high, v.n,
             f"Harrell, lifelines concordance_index; {method}, stratified by event; "
             f"{v.cindex.n_resamples} resamples had comparable pairs"),
            ("survival", "n_events", v.n_events, "", "", v.n, "deaths among the cases with follow-up")]
        if v.groups is not None:
            g = v.groups
            records += [
                ("survival", "logrank_p", g.logrank_p, "", "", v.n,
                 f"lifelines logrank_test, high (risk >= {g.threshold:.6g}, n={g.high.n}) vs low (n={g.low.n}); "
                 f"chi2 {g.logrank_statistic:.4g}"),
                ("survival", "risk_threshold", g.threshold, "", "", v.n, "the model card's training-cohort median risk")]
    records += [("note", "", "", "", "", "", note) for note in validation.notes]
    return [[cell_text(float(c)) if isinstance(c, (float, np.floating)) else cell_text(c) for c in record]
            for record in records]


def _write_csv(path: Path, header, records, overwrite: bool) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(records)
    return path


def write_cohort_summary(rows, labels, out_dir, overwrite: bool = False, n_resamples: int = N_RESAMPLES,
                         seed: int = SEED, title: str = "Cohort summary") -> tuple:
    """Write summary.csv, summary_metrics.csv and summary.pdf into ``out_dir``; returns their paths.

    ``rows``: the batch run's CaseRow per case (e.g. ``read_predictions(path)`` or
    ``run_cohort(...).rows``); ``labels``: {case_id: CaseLabels} or a loaded ``Cohort``.
    Existing summary files are an error before anything is written, unless ``overwrite``.
    """

    out_dir = Path(out_dir)
    rows = tuple(rows)
    paths = tuple(out_dir / name for name in SUMMARY_FILES)
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise Harm3Error(f"{existing[0]} exists; pass --overwrite (or choose another folder) to replace the summary")
    validation = cohort_validation(rows, labels, n_resamples=n_resamples, seed=seed)
    _write_csv(paths[0], CASE_COLUMNS, case_records(rows, labels), overwrite)
    _write_csv(paths[1], METRIC_COLUMNS, metric_records(rows, validation), overwrite)
    write_summary_pdf(rows, validation, paths[2], overwrite=overwrite, title=title)
    return paths
