"""``summary.pdf``: the cohort summary on A4 pages (matplotlib PdfPages, written atomically).

Page 1: case counts, models, the metrics table and notes; then the pCR page (ROC with its
bootstrap band, calibration), the survival page (Kaplan–Meier by predicted risk group with the
log-rank p), and the cases not predicted, or predicted in part, with their reasons.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure  # a bare Figure, no pyplot: no global backend state (safe in napari)

from ..atomic import atomic_path
from .rows import FINISHED, STATUSES
from .summary_plots import plot_calibration_bins, plot_km_groups, plot_roc_interval

A4 = (8.27, 11.69)
LINES_PER_PAGE = 52
WRAP = 110
RUO = "Research use only — not for diagnostic use."


def _page(title: str) -> Figure:
    figure = Figure(figsize=A4)
    figure.text(0.06, 0.965, title, fontsize=15, weight="bold", va="top")
    figure.text(0.06, 0.94, RUO, fontsize=8, color="0.35", va="top")
    return figure


def _text_block(figure: Figure, lines, top: float, size: float = 8.5, step: float = 0.0165) -> float:
    y = top
    for line in lines:
        figure.text(0.06, y, line, fontsize=size, va="top", family="monospace")
        y -= step
    return y


def _models(rows) -> list:
    seen = {}
    for row in rows:
        for name, sha in ((row.pcr_model, row.pcr_model_sha256), (row.survival_model, row.survival_model_sha256)):
            if name:
                seen.setdefault(name, sha)
    return [f"  {name}: weights sha256 {sha[:16]}…" for name, sha in seen.items()] or ["  none ran"]


def _metric_lines(validation) -> list:
    lines = []
    if validation.pcr is not None:
        v = validation.pcr
        lines += [f"pCR (n={v.n}, {v.n_positive} pCR)",
                  f"  AUC          {v.auc.text()}",
                  f"  Brier score  {v.brier.text()}",
                  f"  calibration  {len(v.calibration.counts)} non-empty of {v.calibration.n_bins} equal-width bins"]
    if validation.survival is not None:
        v = validation.survival
        lines += [f"Survival (n={v.n}, {v.n_events} events)", f"  C-index      {v.cindex.text()}  (Harrell)"]
        if v.groups is not None:
            g = v.groups
            lines += [f"  risk groups  high n={g.high.n}, low n={g.low.n} at risk ≥ {g.threshold:.4g} (training median)",
                      f"  log-rank     p = {g.logrank_p:.3g} (chi² {g.logrank_statistic:.3g})"]
    lines += [f"Intervals: {validation.n_resamples} bootstrap resamples (seed {validation.seed}), percentile, "
              "stratified by pCR / by event."]
    return lines


def _first_page(rows, validation, title: str) -> Figure:
    counts = Counter(r.status for r in rows)
    figure = _page(title)
    lines = [f"Written {datetime.now().astimezone().isoformat(timespec='seconds')}",
             f"Cases: {len(rows)} — " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES), "", "Models:"]
    lines += _models(rows) + ["", "External validation:"] + ["  " + line for line in _metric_lines(validation)]
    if validation.notes:
        lines += ["", "Notes:"] + [w for note in validation.notes for w in textwrap.wrap(note, WRAP, initial_indent="  ",
                                                                                         subsequent_indent="    ")]
    _text_block(figure, lines, 0.9)
    return figure


def _pcr_page(validation) -> Figure:
    figure = _page("pCR — HARM3-Fusion")
    top, bottom = figure.add_axes((0.12, 0.55, 0.76, 0.35)), figure.add_axes((0.12, 0.09, 0.76, 0.35))
    plot_roc_interval(validation.pcr.roc, validation.pcr.auc, ax=top)
    plot_calibration_bins(validation.pcr.calibration, validation.pcr.brier, ax=bottom)
    return figure


def _survival_page(validation) -> Figure:
    v = validation.survival
    figure = _page("Survival — CrossFusion")
    figure.text(0.06, 0.91, f"Harrell's C-index {v.cindex.text()} (n={v.n}, {v.n_events} events)", fontsize=10,
                va="top")
    if v.groups is not None:
        plot_km_groups(v.groups, ax=figure.add_axes((0.12, 0.45, 0.76, 0.4)))
    else:
        figure.text(0.06, 0.86, f"No Kaplan–Meier by risk group: {v.groups_note}", fontsize=9, va="top")
    return figure


def _not_predicted_pages(rows) -> list:
    lines = []
    for row in rows:
        if row.status in FINISHED and not row.reason:
            continue
        lines += textwrap.wrap(f"{row.case_id} [{row.status}]: {row.reason}", WRAP, subsequent_indent="    ")
    if not lines:
        return []
    pages = []
    for start in range(0, len(lines), LINES_PER_PAGE):
        part = "" if start == 0 else f" (continued, {start // LINES_PER_PAGE + 1})"
        figure = _page(f"Cases not predicted or predicted in part{part}")
        _text_block(figure, lines[start:start + LINES_PER_PAGE], 0.9)
        pages.append(figure)
    return pages


def write_summary_pdf(rows, validation, path, overwrite: bool = False, title: str = "Cohort summary") -> Path:
    """Render the summary of ``rows`` (CaseRow) and ``validation`` (a CohortValidation) to ``path``."""
    pages = [_first_page(rows, validation, title)]
    if validation.pcr is not None:
        pages.append(_pcr_page(validation))
    if validation.survival is not None:
        pages.append(_survival_page(validation))
    pages += _not_predicted_pages(rows)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with PdfPages(tmp, metadata={"Title": title, "Subject": RUO}) as pdf:
            for figure in pages:
                pdf.savefig(figure)
    return path
