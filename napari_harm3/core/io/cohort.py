"""The cohort table (CSV): one row per case, labels that override the manifests'.

A CSV file (``cohort.csv``) with a header row and one row per case::

    case_id,manifest,pcr,survival_months,event
    SYN-0001,SYN-0001/case.yaml,1,23.4,1
    SYN-0002,SYN-0002/case.yaml,,41.0,0

``manifest`` is relative to the CSV file (a case folder works too). Empty label cells mean
"unknown"; a known value in the table overrides the manifest's. ``harm3 validate`` lists every
problem of a case or cohort at once (missing or unreadable files, bad labels).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import InputFileError, one_line
from ..vocabulary import COHORT_TABLE_NAME, MANIFEST_NAMES
from .case import LABEL_FIELDS, Case, CaseLabels, _relative, load_case, parse_labels

COHORT_COLUMNS = ("case_id", "manifest") + LABEL_FIELDS


@dataclass(frozen=True)
class CohortEntry:
    """One row of the cohort table."""

    case_id: str
    manifest: Path
    labels: CaseLabels
    row: int


@dataclass(frozen=True)
class Cohort:
    """A cohort: the table's rows and the loaded cases (labels: table over manifest)."""

    table: Path
    entries: tuple[CohortEntry, ...]
    cases: tuple[Case, ...]

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def case_ids(self) -> list[str]:
        return [case.case_id for case in self.cases]

    def _label_array(self, name: str) -> np.ndarray:
        return np.array([np.nan if getattr(c.labels, name) is None else getattr(c.labels, name) for c in self.cases], float)

    @property
    def pcr(self) -> np.ndarray:
        """pCR labels as float (NaN = unknown)."""
        return self._label_array("pcr")

    @property
    def survival_months(self) -> np.ndarray:
        """Follow-up times in months (NaN = unknown)."""
        return self._label_array("survival_months")

    @property
    def event(self) -> np.ndarray:
        """Event flags, 1 = death, 0 = censored (NaN = unknown)."""
        return self._label_array("event")


def find_cohort_table(path) -> Path:
    """The CSV itself, or ``cohort.csv`` inside a folder."""
    path = Path(path)
    if path.is_dir():
        if (path / COHORT_TABLE_NAME).is_file():
            return path / COHORT_TABLE_NAME
        raise InputFileError(path, f"no {COHORT_TABLE_NAME} in this folder")
    if not path.exists():
        raise InputFileError(path, "no such cohort table")
    return path


def read_cohort_table(path) -> tuple[CohortEntry, ...]:
    """The rows of a cohort CSV (manifests not opened); bad cells name row and column."""
    table = find_cohort_table(path).resolve()
    try:
        with open(table, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            raw = list(reader)
            header = [name.strip() for name in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(table, f"cannot be read as CSV ({one_line(exc)})") from None
    if not raw:
        raise InputFileError(table, f"no cases: expected a header ({','.join(COHORT_COLUMNS)}) and one row per case")
    _check_header(table, header)
    for number, row in enumerate(raw, start=2):
        if None in row:  # csv.DictReader keeps the cells beyond the header under the key None
            raise InputFileError(table, f"row {number}: {len(header) + len(row[None])} cells, but the header has "
                                        f"{len(header)} columns")
    rows = [{(k or "").strip(): v for k, v in row.items()} for row in raw]
    entries, seen = [], {}
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        case_id = (row.get("case_id") or "").strip()
        manifest = (row.get("manifest") or "").strip()
        if not case_id or not manifest:
            raise InputFileError(table, f"row {number}: case_id and manifest must not be empty")
        if case_id in seen:
            raise InputFileError(table, f"row {number}: case_id {case_id!r} repeats row {seen[case_id]}")
        seen[case_id] = number
        labels = parse_labels(row, lambda name, reason: InputFileError(table, f"row {number}, column '{name}': {reason}"))
        target = Path(manifest) if Path(manifest).is_absolute() else table.parent / manifest
        entries.append(CohortEntry(case_id, Path(os.path.normpath(target)), labels, number))
    return tuple(entries)


def _check_header(table: Path, header: list) -> None:
    """Required columns present, none twice, no misspelt label column (other extra columns, e.g.
    ``site`` or ``notes``, are allowed and ignored)."""
    missing = [c for c in ("case_id", "manifest") if c not in header]
    if missing:
        raise InputFileError(table, f"missing column(s) {', '.join(missing)}; expected {','.join(COHORT_COLUMNS)}")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise InputFileError(table, f"line 1 (header): column {twice[0]!r} appears {header.count(twice[0])} times")
    for name in header:
        close = difflib.get_close_matches(name, COHORT_COLUMNS, n=1, cutoff=0.8)
        if name not in COHORT_COLUMNS and close:
            raise InputFileError(table, f"line 1 (header): unknown column {name!r}; did you mean {close[0]!r}?")


def case_of_entry(entry: CohortEntry) -> Case:
    """The case of one table row, its labels merged over the manifest's (table first)."""
    case = load_case(entry.manifest)
    if case.case_id != entry.case_id:
        raise InputFileError(case.manifest, f"case_id {case.case_id!r} differs from the cohort table's {entry.case_id!r} (row {entry.row})")
    return dataclasses.replace(case, labels=entry.labels.merged_over(case.labels))


def load_cohort(path) -> Cohort:
    """Read a cohort table and every case manifest it lists (first bad manifest → error;
    :func:`.case_checks.validate_cohort` lists them all)."""
    entries = read_cohort_table(path)
    return Cohort(find_cohort_table(path).resolve(), entries, tuple(case_of_entry(e) for e in entries))


def write_cohort_table(rows, path, overwrite: bool = False) -> Path:
    """Write a cohort CSV from (case_id, manifest path, CaseLabels) triples; manifest paths are
    written relative to the CSV's folder."""
    path = Path(path)
    root = path.parent.resolve()
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COHORT_COLUMNS)
            for case_id, manifest, labels in rows:
                values = [getattr(labels, name) for name in LABEL_FIELDS]
                writer.writerow([case_id, _relative(Path(manifest).resolve(), root)] + ["" if v is None else v for v in values])
    return path


def is_cohort_path(path) -> bool:
    """A CSV file, or a folder holding ``cohort.csv`` (and no case manifest)."""
    path = Path(path)
    if path.is_dir():
        return (path / COHORT_TABLE_NAME).is_file() and not any((path / n).is_file() for n in MANIFEST_NAMES)
    return path.suffix.lower() == ".csv"
