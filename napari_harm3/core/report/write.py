"""The one way a report reaches the disk: PDF + JSON, both checked before anything is written,
written as a pair, never overwriting an existing file unless asked.

Both files are rendered to temporaries next to their targets (:func:`~napari_harm3.core.atomic.atomic_path`)
and renamed into place only once both are complete, the PDF first: a failure before that (a page
that cannot be drawn, the PDF's rename refused) removes both temporaries and leaves the previous
pair, if any, as it was — never a new JSON beside an old PDF."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..atomic import atomic_path
from ..errors import Harm3Error
from ..progress import ProgressFn
from ..progress import report as report_progress
from .model import Report
from .render_json import report_json_text
from .render_pdf import render_report_pdf


def report_paths(pdf_path, json_path=None) -> tuple:
    """(PDF, JSON): the JSON defaults to the PDF's name with ``.json``; ``.pdf`` is added when missing."""
    pdf = Path(pdf_path)
    if pdf.suffix.lower() != ".pdf":
        pdf = pdf.with_name(pdf.name + ".pdf")
    return pdf, (Path(json_path) if json_path is not None else pdf.with_suffix(".json"))


def refuse_existing(paths, overwrite: bool) -> None:
    """Harm3Error naming every existing target (before any work) unless ``overwrite``."""
    existing = [str(p) for p in paths if p is not None and Path(p).exists()]
    if existing and not overwrite:
        raise Harm3Error(f"{', '.join(existing)} exists; choose another name or allow replacing it (--overwrite)")


def write_report_files(report: Report, pdf_path, json_path=None, overwrite: bool = False, with_json: bool = True,
                       progress: ProgressFn | None = None) -> tuple:
    """Write the report's PDF (and JSON): (pdf, json or None). Both appear together or neither does."""
    pdf, json_file = report_paths(pdf_path, json_path)
    json_file = json_file if with_json else None
    refuse_existing((pdf, json_file), overwrite)
    json_text = report_json_text(report) if json_file is not None else None  # serialise first
    with contextlib.ExitStack() as pair:
        # entered JSON first, so the PDF (entered last) is renamed first: a refused PDF rename
        # still unwinds the JSON's temporary before it replaces anything
        json_tmp = pair.enter_context(atomic_path(json_file, overwrite=overwrite)) if json_file is not None else None
        pdf_tmp = pair.enter_context(atomic_path(pdf, overwrite=overwrite))
        render_report_pdf(report, pdf_tmp, progress=progress)
        if json_tmp is not None:
            json_tmp.write_text(json_text, encoding="utf-8")
    report_progress(progress, 1.0, "report written")
    return pdf, json_file
