"""Render a :class:`~.model.Report` as a 4-page A4 PDF with matplotlib (PdfPages).

1. summary: case, pCR probability ± spread with the fold values, survival risk and group,
   analyses not run and why, model provenance (card summary, weight sha256);
2. MRI key slices with Grad-CAM and the tumour contour;
3. slide thumbnail with attention per scale and the top patches;
4. survival curve S(t) in months, input files with sha256, software version and date.

Every page carries the research-use notice in its header and footer. The PDF is rendered to
a temporary file and renamed onto the final name (:func:`~napari_harm3.core.atomic.atomic_path`).
"""

from __future__ import annotations

import textwrap

import matplotlib as mpl
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..atomic import atomic_path
from ..progress import ProgressFn, report as report_progress
from . import plots
from .model import Report, report_text
from .response_text import response_lines

A4_INCHES = (8.27, 11.69)
MARGIN = 0.06  # figure fraction left/right
NOTICE_RED = "#b00020"
PAGE_COUNT = 4


def write_report_pdf(report: Report, path, overwrite: bool = False, progress: ProgressFn | None = None):
    """Write ``report`` as a PDF at ``path`` (atomically; an existing file needs ``overwrite``)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        render_report_pdf(report, tmp, progress=progress)
    report_progress(progress, 1.0, "report written")
    return path


def render_report_pdf(report: Report, target, progress: ProgressFn | None = None) -> None:
    """Draw the report's pages into the PDF ``target`` as it is (not atomic: the callers pass the
    temporary of :func:`~napari_harm3.core.atomic.atomic_path`)."""
    metadata = {
        "Title": f"{report_text()['title']} - {report.case.case_id}",
        "Subject": report.research_use_notice,
        "Creator": f"napari-harm3 {report.software_version}",
        "CreationDate": report.created,  # None (de-identified) removes the date
        "ModDate": None,
    }
    pages = (summary_page, mri_page, slide_page, survival_page)
    with PdfPages(target, metadata=metadata) as pdf:
        for number, draw in enumerate(pages, start=1):
            report_progress(progress, (number - 1) / len(pages), f"report page {number}/{len(pages)}")
            figure = new_page(report, number)
            draw(figure, report)
            pdf.savefig(figure)


def new_page(report: Report, number: int):
    """An A4 figure with the notice as header and footer, the case id and the page number.

    A bare :class:`matplotlib.figure.Figure` (no pyplot): no global backend state, safe in a
    worker thread of the viewer, nothing to close."""
    figure = Figure(figsize=A4_INCHES)
    text = report_text()
    figure.text(0.5, 0.985, text["header"], ha="center", va="top", fontsize=9, weight="bold", color=NOTICE_RED)
    figure.text(MARGIN, 0.962, f"{text['title']} - case {report.case.case_id}", ha="left", va="top", fontsize=11,
                weight="bold")
    figure.add_artist(_rule(figure, 0.945))
    footer = f"{report.research_use_notice}  |  napari-harm3 {report.software_version}  |  page {number}/{PAGE_COUNT}"
    figure.text(0.5, 0.012, _wrap(footer, 150), ha="center", va="bottom", fontsize=6, color=NOTICE_RED)
    return figure


def _rule(figure, y: float):
    return Line2D([MARGIN, 1 - MARGIN], [y, y], transform=figure.transFigure, color="0.5", linewidth=0.6)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(p, width) for p in str(text).split("\n"))


def _heading(figure, y: float, title: str) -> float:
    figure.text(MARGIN, y, title, fontsize=10, weight="bold", va="top")
    return y - 0.022


def _paragraph(figure, y: float, text: str, size: float = 8, width: int = 110, colour: str = "black",
               line_height: float = 0.0135) -> float:
    wrapped = _wrap(text, width)
    figure.text(MARGIN + 0.01, y, wrapped, fontsize=size, va="top", color=colour)
    return y - line_height * (wrapped.count("\n") + 1) * size / 8 - 0.006


# -- page 1 ------------------------------------------------------------------------------------

def case_rows(report: Report) -> list:
    """(label, value) rows of the case block; de-identified fields say so."""
    case = report.case
    removed = "removed (de-identified)" if report.is_deidentified else "not recorded"
    dates = ", ".join(f"{what} {date}" for what, date in case.study_dates)
    return [
        ("Case", case.case_id + ("  (pseudonym)" if case.pseudonymised else "")),
        ("Patient name", case.patient_name or removed),
        ("Patient ID", case.patient_id or removed),
        ("Birth date", case.birth_date or removed),
        ("Study dates", dates or removed),
        ("MRI volumes", ", ".join(case.sequences) or "none"),
        ("Slide", case.slide or "none"),
        ("Missing inputs", ", ".join(case.missing_inputs) or "none"),
    ]


def summary_page(figure, report: Report) -> None:
    text = report_text()
    y = _heading(figure, 0.93, text["sections"]["case"])
    table = figure.add_axes((MARGIN + 0.01, y - 0.125, 1 - 2 * MARGIN, 0.125))
    plots.plot_table(table, case_rows(report), col_widths=(0.2, 0.8), font_size=8)
    y -= 0.14

    y = _heading(figure, y, text["sections"]["pcr"])
    if report.pcr is not None:
        pcr = report.pcr
        folds = ", ".join(f"{p:.3f}" for p in pcr.fold_probabilities)
        thresholds = f"{pcr.threshold:.2f}" + (f" and training Youden {pcr.youden_threshold:.2f}"
                                               if pcr.youden_threshold is not None else "")
        y = _paragraph(figure, y, f"Probability of pCR: {pcr.probability:.3f} \u00b1 {pcr.spread:.3f} - {pcr.verdict} "
                                  f"(thresholds {thresholds})", size=10)
        y = _paragraph(figure, y, f"Fold models ({len(pcr.fold_probabilities)}): {folds}. {text['explanations']['pcr']}")
        if pcr.missing_inputs:
            y = _paragraph(figure, y, "Predicted without: " + ", ".join(pcr.missing_inputs)
                           + " (the model used learned placeholders; treat with extra caution).", colour=NOTICE_RED)
        strip = figure.add_axes((MARGIN + 0.05, y - 0.055, 0.6, 0.045))
        plots.plot_fold_probabilities(strip, pcr)
        y -= 0.1
    else:
        y = _paragraph(figure, y, text["not_run"]["pcr"] + " (see notes).", colour=NOTICE_RED)

    y = _heading(figure, y, text["sections"]["survival"])
    if report.survival is not None:
        survival = report.survival
        group = (f"{survival.risk_group} risk (high when risk \u2265 {survival.risk_threshold:.3f}, the training "
                 "cohort's median)" if survival.risk_group else "no risk group (the model card gives no cohort threshold)")
        median = survival.median_survival_months
        y = _paragraph(figure, y, f"Risk score: {survival.risk:.3f} \u00b1 {survival.risk_spread:.3f} - {group}", size=10)
        if survival.risk_percentile is not None:
            y = _paragraph(figure, y, f"Higher than {survival.risk_percentile:.0f} % of the training cohort's risks.")
        if survival.landmarks:
            y = _paragraph(figure, y, "Predicted survival: " + ", ".join(f"S({m:g} months) = {v:.2f}"
                                                                          for m, v in survival.landmarks) + ".")
        y = _paragraph(figure, y, "Predicted median survival: "
                       + (f"{median:.1f} months" if median is not None else "beyond the last bin (S(t) stays above 0.5)")
                       + ". Curve on page 4.")
        if survival.missing_inputs:
            y = _paragraph(figure, y, "Predicted without: " + ", ".join(survival.missing_inputs), colour=NOTICE_RED)
    else:
        y = _paragraph(figure, y, text["not_run"]["survival"] + " (see notes).", colour=NOTICE_RED)

    response = report.tumour_response
    if response is not None and response.responses:
        y = _heading(figure, y - 0.005, "Tumour response (from the masks)")
        for line in response_lines(response):
            y = _paragraph(figure, y, line, size=7.5, width=120)

    if report.notes:
        y = _heading(figure, y - 0.005, "Notes")
        for note in report.notes:
            y = _paragraph(figure, y, "- " + note, size=7.5, width=120)

    y = _heading(figure, y - 0.005, text["sections"]["models"])
    if not report.models:
        y = _paragraph(figure, y, "No model was run.")
    for model in report.models:
        y = _paragraph(figure, y, f"{model.name}  ({model.kind}, version {model.version})", size=8.5)
        if model.card_summary:
            y = _paragraph(figure, y, model.card_summary, size=7, width=130)
        rows = [(w.file, w.sha256) for w in model.weights]
        height = 0.0105 * max(1, len(rows))
        table = figure.add_axes((MARGIN + 0.02, y - height, 1 - 2 * MARGIN - 0.02, height))
        plots.plot_table(table, rows, col_widths=(0.3, 0.7), font_size=6, monospace_cols=(1,))
        table.set_ylim(0, 1)
        y -= height + 0.008
        if y < 0.06:
            break
    if report.is_deidentified:
        _paragraph(figure, 0.045, text["explanations"]["deidentified"], size=7, colour="0.3")


# -- page 2 ------------------------------------------------------------------------------------

def mri_page(figure, report: Report) -> None:
    text = report_text()
    y = _heading(figure, 0.93, text["sections"]["mri"])
    method = report.pcr.gradcam_method if report.pcr is not None else ""
    y = _paragraph(figure, y, text["explanations"]["gradcam"] + (f" Map: {method}." if method else ""))
    if not report.mri_figures:
        _paragraph(figure, y - 0.02, "No MRI volume in this case.", size=10)
        return
    panel_w, panel_h = 0.42, 0.35
    for i, mri in enumerate(report.mri_figures[:4]):
        row, col = divmod(i, 2)
        left = MARGIN + col * (panel_w + 0.04)
        bottom = y - 0.04 - (row + 1) * (panel_h + 0.04)
        ax = plots.plot_mri_slice(figure.add_axes((left, bottom, panel_w, panel_h)), mri)
        if mri.overlay is None:
            ax.set_title(ax.get_title() + " - no Grad-CAM", fontsize=8)
    bar = figure.add_axes((0.3, 0.075, 0.4, 0.01))
    figure.colorbar(mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=plots.OVERLAY_CMAP), cax=bar,
                    orientation="horizontal").set_label("Grad-CAM (0-1)", fontsize=7)
    bar.tick_params(labelsize=6)


# -- page 3 ------------------------------------------------------------------------------------

def slide_page(figure, report: Report) -> None:
    text = report_text()
    y = _heading(figure, 0.93, text["sections"]["slide"])
    slide = report.slide_figure
    if slide is None:
        _paragraph(figure, y - 0.01, "No whole-slide image in this report (no slide, or no slide model run).", size=10)
        return
    y = _paragraph(figure, y, f"{slide.slide_name}. {text['explanations']['slide']} Map colours: {slide.normalisation}.")
    panels = [("thumbnail", None)] + list(slide.heatmaps.items())[:5]
    columns = 3
    panel_w = (1 - 2 * MARGIN - 0.02 * (columns - 1)) / columns
    aspect = slide.thumbnail.shape[0] / slide.thumbnail.shape[1]
    panel_h = min(0.2, panel_w * aspect * A4_INCHES[0] / A4_INCHES[1])
    for i, (label, heatmap) in enumerate(panels):
        row, col = divmod(i, columns)
        rect = (MARGIN + col * (panel_w + 0.02), y - (row + 1) * (panel_h + 0.03), panel_w, panel_h)
        covered = slide.coverage.get(label)
        title = label if covered is None else f"{label}\n(covers {100 * covered:.0f} % of the tissue)"
        plots.plot_slide_attention(figure.add_axes(rect), slide.thumbnail, heatmap, slide.downsample, title=title)
    y -= ((len(panels) - 1) // columns + 1) * (panel_h + 0.03) + 0.015

    if slide.top_patches:
        y = _heading(figure, y, "Top patches: the most attended patches that are at least half tissue, best first") - 0.03
    rows = list(slide.top_patches.items())[:4]
    k = max((len(tiles) for _, tiles in rows), default=0)
    if k:
        gap = 0.05  # room for each tile's title above and position below
        tile = min(0.11, (1 - 2 * MARGIN - 0.17) / k - 0.015,
                   ((y - 0.05) / max(len(rows), 1) - gap) * A4_INCHES[1] / A4_INCHES[0])
        tile_h = tile * A4_INCHES[0] / A4_INCHES[1]
        for r, (label, tiles) in enumerate(rows):
            top = y - r * (tile_h + gap)
            figure.text(MARGIN, top - tile_h / 2, _wrap(label, 22), fontsize=7, va="center")
            for c, patch in enumerate(tiles):
                rect = (MARGIN + 0.17 + c * (tile + 0.015), top - tile_h, tile, tile_h)
                plots.plot_patch_tile(figure.add_axes(rect), patch, rank=c + 1)


# -- page 4 ------------------------------------------------------------------------------------

def survival_page(figure, report: Report) -> None:
    text = report_text()
    y = _heading(figure, 0.93, text["sections"]["survival_curve"])
    if report.survival is not None:
        y = _paragraph(figure, y, text["explanations"]["survival"])
        curve = figure.add_axes((MARGIN + 0.07, y - 0.33, 0.8, 0.3))
        plots.plot_survival_curve(curve, report.survival)
        y -= 0.38
    else:
        y = _paragraph(figure, y, text["not_run"]["survival"] + " (see the notes on page 1).", size=10,
                       colour=NOTICE_RED) - 0.01

    y = _heading(figure, y, text["sections"]["inputs"])
    rows = [(f.role, _shorten(f.path, 48), f.sha256) for f in report.inputs] or [("-", "no input files", "")]
    height = 0.013 * (len(rows) + 1)
    table = figure.add_axes((MARGIN + 0.01, y - height, 1 - 2 * MARGIN, height))
    plots.plot_table(table, rows, col_widths=(0.11, 0.37, 0.52), header=("role", "file", "sha256"), font_size=6,
                     monospace_cols=(2,))
    y -= height + 0.02

    y = _heading(figure, y, text["sections"]["software"])
    created = report.created.isoformat(sep=" ", timespec="seconds") if report.created else "removed (de-identified)"
    lines = [f"napari-harm3 {report.software_version}", f"Report created: {created}",
             f"Models: " + ("; ".join(f"{m.name} {m.version}" for m in report.models) or "none")]
    for line in lines:
        y = _paragraph(figure, y, line)
    _paragraph(figure, y - 0.01, report.research_use_notice, size=9, colour=NOTICE_RED)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "\u2026" + text[-(width - 1):]

