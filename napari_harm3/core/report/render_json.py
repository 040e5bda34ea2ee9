"""Render a :class:`~.model.Report` as JSON: the same content as the PDF, for machines.

Numbers stay numbers (no rounding beyond the figure previews), figures are shape + min/max +
a small block-averaged preview (see :mod:`.arrays`), so a report's JSON stays well under 1 MB.
"""

from __future__ import annotations

import json

from ..atomic import atomic_path
from .model import Report


def report_json_text(report: Report) -> str:
    """The report's JSON text (UTF-8, compact, keys in a fixed order, no NaN).

    Compact because the figure previews are thousands of numbers; ``python -m json.tool`` shows it indented.
    """
    return json.dumps(report.to_json_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"


def write_report_json(report: Report, path, overwrite: bool = False):
    """Write the report's JSON at ``path`` atomically; an existing file needs ``overwrite``."""
    text = report_json_text(report)  # serialise first: a failure leaves nothing behind
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
