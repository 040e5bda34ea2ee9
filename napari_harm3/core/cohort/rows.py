"""One case's batch predictions (:class:`CaseRow`) and the predictions CSV that holds them.

The CSV has one row per case of the cohort, in the cohort table's order, with the columns of
:data:`COLUMNS` (the fields of :class:`CaseRow`, in order). Empty cells mean "not computed";
``missing_inputs`` lists input names separated by ``;``. The file is rewritten atomically
after every case of a batch run, so a crash loses at most the cases in flight.
"""

from __future__ import annotations

import csv
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputFileError, one_line

#: row statuses: both analyses asked for ran / one ran (``reason`` says why not the other) /
#: none ran / the case was not run (missing or unreadable inputs, ``reason`` lists them)
STATUSES = ("ok", "partial", "failed", "skipped")
#: statuses of a finished case: a resumed run reuses these rows while their key still matches
FINISHED = ("ok", "partial")
LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class CaseRow:
    """One case of a batch run: predictions with their spread over the fold models, provenance."""

    case_id: str
    status: str                               # one of STATUSES
    reason: str = ""                          # why skipped / failed / partial (one line)
    pcr_probability: float | None = None      # mean p(pCR) over the HARM3-Fusion fold models
    pcr_spread: float | None = None           # sd over the fold models (ddof 1)
    pcr_folds: int | None = None              # number of fold models
    risk: float | None = None                 # CrossFusion risk −ΣS, mean over the fold models
    risk_spread: float | None = None          # sd over the fold models
    survival_folds: int | None = None
    risk_threshold: float | None = None       # the model card's training-cohort median risk
    risk_group: str | None = None             # "high" (risk >= threshold) or "low"
    missing_inputs: tuple = ()                # of t1_pre, t1_post, t2_pre, t2_post, slide
    pcr_model: str = ""
    pcr_model_sha256: str = ""                # see model_refs.weights_sha256
    survival_model: str = ""
    survival_model_sha256: str = ""
    inputs_sha256: str = ""                   # see fingerprint.inputs_sha256
    inputs_stat: str = ""                     # sizes and modification times of the same files
    seconds: float | None = None              # wall time of the case
    finished: str = ""                        # ISO time the case finished

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


COLUMNS = tuple(f.name for f in dataclasses.fields(CaseRow))
_TYPES = typing.get_type_hints(CaseRow)


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    return str(value)


def _parse(name: str, text: str):
    kind = _TYPES[name]
    if kind is tuple:
        return tuple(t for t in text.split(LIST_SEPARATOR) if t) if text else ()
    if kind is str:
        return text
    if text == "":
        return None
    if kind == (float | None):
        return float(text)
    if kind == (int | None):
        return int(text)
    return text  # str | None


def row_to_cells(row: CaseRow) -> list:
    return [cell_text(getattr(row, name)) for name in COLUMNS]


def write_predictions(rows, path) -> Path:
    """Write ``rows`` (CaseRow, in order) to ``path`` atomically, replacing the previous table:
    this is how a batch run records its progress (see :func:`read_predictions`)."""
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(row_to_cells(row) for row in rows)
    return path


def read_predictions(path) -> tuple:
    """The rows of a predictions CSV written by :func:`write_predictions`.

    A file of another kind (for instance the cohort table given as ``--out`` by mistake) is an
    :class:`InputFileError` naming what it lacks, so a batch run never replaces it.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(path, f"cannot be read as a predictions table ({one_line(exc)})") from None
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InputFileError(path, f"is not a harm3 predictions table (no column {', '.join(missing[:3])}"
                                   f"{'…' if len(missing) > 3 else ''}); choose another --out")
    rows = []
    for number, record in enumerate(records, start=2):
        try:
            rows.append(CaseRow(**{name: _parse(name, record.get(name) or "") for name in COLUMNS}))
        except (TypeError, ValueError) as exc:
            raise InputFileError(path, f"row {number}: {one_line(exc)}") from None
    return tuple(rows)
