"""De-identification of a report: names, identifiers and dates removed; paths reduced to names.

- patient name, patient ID, birth date and study dates (from DICOM metadata) are dropped;
- the case id becomes a stable pseudonym ``case-<12 hex>`` (sha256 of an optional secret
  salt + the case id: the same case always gets the same pseudonym; with a salt nobody can
  recompute it from a list of ids);
- the report date is dropped; file paths become base names;
- every remaining text (file names, notes, model paths) has the case id, the patient's
  name parts and ID, and dates that look like the removed ones replaced.

Pixel data is kept as is: burned-in annotations in images are not detected.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from .model import CaseSummary, InputFile, Report

REDACTED = "[removed]"
_MIN_TOKEN = 3  # name parts shorter than this are not scrubbed from free text (too many false hits)


def pseudonym(case_id: str, salt: str = "") -> str:
    """A stable pseudonym for ``case_id``: ``case-`` + the first 12 hex digits of sha256(salt + id)."""
    return "case-" + hashlib.sha256(f"{salt}{case_id}".encode("utf-8")).hexdigest()[:12]


class Scrubber:
    """Replaces identifying strings (case-insensitively) in free text."""

    def __init__(self, replacements: dict):
        tokens = {k: v for k, v in replacements.items() if k and len(k) >= _MIN_TOKEN}
        self._patterns = [(re.compile(re.escape(k), re.IGNORECASE), v)
                          for k, v in sorted(tokens.items(), key=lambda kv: -len(kv[0]))]

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for pattern, value in self._patterns:
            text = pattern.sub(value, text)
        return text


def identifying_tokens(case: CaseSummary, alias: str) -> dict:
    """{identifying string: replacement} for a case: its id, patient name parts, ID and dates."""
    tokens = {case.case_id: alias}
    if case.patient_id:
        tokens[case.patient_id] = REDACTED
    if case.patient_name:
        name = case.patient_name
        tokens[name] = REDACTED
        for part in re.split(r"[\^\s,]+", name):
            tokens.setdefault(part, REDACTED)
    for date in [case.birth_date] + [d for _, d in case.study_dates]:
        for form in _date_forms(date):
            tokens[form] = REDACTED
    return tokens


def _date_forms(date: str | None) -> list:
    """A date as written in DICOM (YYYYMMDD) and ISO (YYYY-MM-DD)."""
    if not date:
        return []
    digits = re.sub(r"\D", "", date)
    forms = [date]
    if len(digits) == 8:
        forms += [digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"]
    return forms


def _base_name(path: str) -> str:
    """The last component of a POSIX or Windows path."""
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] if path else path


def deidentify_report(report: Report, salt: str = "") -> Report:
    """The de-identified copy of ``report`` (see the module docstring)."""
    if report.is_deidentified:
        return report
    alias = pseudonym(report.case.case_id, salt)
    scrub = Scrubber(identifying_tokens(report.case, alias))
    case = replace(
        report.case,
        case_id=alias,
        patient_name=None,
        patient_id=None,
        birth_date=None,
        study_dates=(),
        slide=scrub(_base_name(report.case.slide)) if report.case.slide else None,
        missing_inputs=tuple(scrub(m) for m in report.case.missing_inputs),
        pseudonymised=True,
    )
    inputs = tuple(InputFile(role=f.role, path=scrub(_base_name(f.path)), sha256=f.sha256) for f in report.inputs)
    models = tuple(replace(m, path=_base_name(m.path), card_summary=scrub(m.card_summary)) for m in report.models)
    slide = report.slide_figure
    if slide is not None:
        slide = replace(slide, slide_name=scrub(_base_name(slide.slide_name)))
    return replace(
        report,
        case=case,
        inputs=inputs,
        models=models,
        slide_figure=slide,
        created=None,
        notes=tuple(_scrub_paths(scrub(n)) for n in report.notes),
        is_deidentified=True,
    )


#: an absolute path with at least two components (so "T1/T2" or "1/5" are left alone)
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\\/\s:;,'\"()]+){2,}[\\/]?")


def _scrub_paths(text: str) -> str:
    """Absolute paths in free text → their base names."""
    return _PATH.sub(lambda m: _base_name(m.group(0)) or m.group(0), text)

