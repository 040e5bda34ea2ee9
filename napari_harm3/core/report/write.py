"""The one way a report reaches the disk: PDF + JSON, both checked before anything is written,
each written atomically, never overwriting an existing file unless asked."""

from __future__ import annotations

from pathlib import Path

from ..errors import Harm3Error
from ..progress import ProgressFn, scaled
from .model import Report
from .render_json import write_report_json
from .render_pdf import write_report_pdf


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
    """Write the report's PDF (and JSON): (pdf, json or None)."""
    pdf, json_file = report_paths(pdf_path, json_path)
    json_file = json_file if with_json else None
    refuse_existing((pdf, json_file), overwrite)
    if json_file is not None:
        write_report_json(report, json_file, overwrite=overwrite)
    try:
        write_report_pdf(report, pdf, overwrite=overwrite, progress=scaled(progress, 0.0, 1.0))
    except BaseException:
        if json_file is not None and not overwrite:
            json_file.unlink(missing_ok=True)  # never a JSON without its PDF
        raise
    return pdf, json_file
