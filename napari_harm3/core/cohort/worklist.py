"""The worklist: a cohort as a table of cases to go through in the viewer (pure, no Qt).

:func:`open_worklist` reads a cohort — its CSV (``cohort.csv``), or a folder of case folders —
into a :class:`Worklist` of :class:`WorklistRow` s: which inputs each case has (the four
sequences, the slide, masks, transforms; named in the manifest and found on disk), its labels,
the predictions already made (a ``predictions.csv`` of ``harm3 predict`` / ``harm3 report``
next to the cohort or in its reports folder) and whether its report was written.

Files are only checked for existence when the table is made (a cohort of hundreds of cases
opens in a moment); a file that turns out unreadable when the case is opened is recorded with
:meth:`Worklist.mark_unreadable`. A row whose manifest cannot be read stays in the table with
its reason — a bad row never stops the table. A cohort table that cannot be read, or a case id
given twice, is one :class:`~napari_harm3.core.errors.Harm3Error`.

Filters and sort order live in :mod:`.worklist_filters`; the Qt table is a thin view of this.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Harm3Error, InputFileError, one_line
from ..io.case import Case, CaseLabels, find_manifest, load_case
from ..io.case_checks import validate_case
from ..io.cohort import (
    case_of_entry,
    find_cohort_table,
    is_cohort_path,
    read_cohort_table,
)
from ..vocabulary import SEQUENCES, sequence_title
from .reports import PREDICTIONS_FILE, report_names
from .rows import FINISHED, CaseRow, read_predictions, write_predictions

#: the inputs a row shows, in column order
INPUTS = SEQUENCES + ("slide", "masks", "transforms")
#: an input's state: named and on disk / not named in the manifest / named but not on disk /
#: named but could not be read / the manifest itself could not be read
PRESENT, ABSENT, MISSING, UNREADABLE, UNKNOWN = "present", "absent", "missing", "unreadable", "unknown"
#: the reports folder of a cohort, unless told another
REPORTS_DIR = "reports"
#: the start of a row's problem line when its last batch did not predict it
NOT_PREDICTED = "not predicted"


def input_title(key: str) -> str:
    return sequence_title(key) if key in SEQUENCES else key


@dataclass(frozen=True)
class WorklistRow:
    """One case of the worklist (a frozen value: updates make a new row)."""

    case_id: str
    position: int                          # row of the cohort table (0-based), the default order
    manifest: Path
    case: Case | None = None               # None: the manifest could not be read
    inputs: dict = field(default_factory=dict)   # INPUTS key → PRESENT / ABSENT / MISSING / UNREADABLE / UNKNOWN
    labels: CaseLabels = field(default_factory=CaseLabels)
    problems: tuple = ()                   # one line each (missing / unreadable files, bad manifest)
    prediction: CaseRow | None = None      # the latest finished batch row of this case
    report: tuple | None = None            # (pdf, json) when both exist

    @property
    def openable(self) -> bool:
        return self.case is not None and any(self.inputs.get(k) == PRESENT for k in SEQUENCES + ("slide",))

    def readable_case(self) -> Case | None:
        """The case without the files found missing or unreadable (the rest opens; the row says
        what is lacking)."""
        if self.case is None:
            return None
        bad = (MISSING, UNREADABLE)
        mri = {k: v for k, v in self.case.mri.items() if self.inputs.get(k) not in bad}
        masks = {k: v for k, v in self.case.masks.items() if k in mri and self.inputs.get("masks") not in bad}
        transforms = {k: v for k, v in self.case.transforms.items() if k in mri and self.inputs.get("transforms") not in bad}
        slide = None if self.inputs.get("slide") in bad else self.case.slide
        return dataclasses.replace(self.case, mri=mri, masks=masks, transforms=transforms, slide=slide)

    def missing(self) -> tuple:
        """Inputs the case lacks (not named, not on disk or unreadable; optional masks and
        transforms only when named and not found). A row whose manifest is unreadable lacks none
        that is known (its ``problems`` say why)."""
        return tuple(k for k in INPUTS if self.inputs.get(k, UNKNOWN) not in (PRESENT, UNKNOWN)
                     and not (k in ("masks", "transforms") and self.inputs.get(k) == ABSENT))

    @property
    def pcr_probability(self):
        return None if self.prediction is None else self.prediction.pcr_probability

    @property
    def pcr_spread(self):
        return None if self.prediction is None else self.prediction.pcr_spread

    @property
    def risk(self):
        return None if self.prediction is None else self.prediction.risk

    @property
    def risk_spread(self):
        return None if self.prediction is None else self.prediction.risk_spread

    @property
    def risk_group(self):
        return None if self.prediction is None else self.prediction.risk_group

    @property
    def status(self) -> str:
        """``ok`` / ``missing files`` / ``unreadable`` / ``manifest error``."""
        if self.case is None:
            return "manifest error"
        if UNREADABLE in self.inputs.values():
            return "unreadable"
        if MISSING in self.inputs.values():
            return "missing files"
        return "ok"


def input_states(case: Case) -> tuple:
    """({input: state}, problems) of a case, checking only that its files exist."""
    states = {}
    for key in SEQUENCES:
        states[key] = ABSENT if key not in case.mri else (PRESENT if case.mri_source(key)[0].exists() else MISSING)
    states["slide"] = ABSENT if case.slide is None else (PRESENT if Path(case.slide).exists() else MISSING)
    for name, named in (("masks", {k: case.mask_source(k)[0] for k in case.masks}), ("transforms", case.transforms)):
        if not named:
            states[name] = ABSENT
        else:
            states[name] = PRESENT if all(Path(p).exists() for p in named.values()) else MISSING
    return states, tuple(validate_case(case, open_files=False))


def _row_of_case(case_id: str, position: int, manifest: Path, case: Case) -> WorklistRow:
    states, problems = input_states(case)
    return WorklistRow(case_id, position, manifest, case, states, case.labels, problems)


def _bad_row(case_id: str, position: int, manifest: Path, labels: CaseLabels, exc: Exception) -> WorklistRow:
    return WorklistRow(case_id, position, manifest, None, {k: UNKNOWN for k in INPUTS}, labels,
                       (f"manifest: {one_line(exc)}",))


def _rows_of_table(entries) -> list:
    rows = []
    for position, entry in enumerate(entries):
        try:
            rows.append(_row_of_case(entry.case_id, position, entry.manifest, case_of_entry(entry)))
        except Harm3Error as exc:
            rows.append(_bad_row(entry.case_id, position, entry.manifest, entry.labels, exc))
    return rows


def _rows_of_folder(folder: Path) -> list:
    """Rows of a folder of case folders (each with a ``case.yaml``), in folder-name order."""
    rows, seen = [], {}
    manifests = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            manifests.append(find_manifest(child))
        except InputFileError:
            continue  # not a case folder (features/, reports/ …)
    if not manifests:
        raise InputFileError(folder, "no cohort.csv and no case folders (sub-folders with a case.yaml) here")
    for position, manifest in enumerate(manifests):
        try:
            case = load_case(manifest)
            case_id = str(case.case_id)
            row = _row_of_case(case_id, position, manifest, case)
        except Harm3Error as exc:
            case_id = manifest.parent.name
            row = _bad_row(case_id, position, manifest, CaseLabels(), exc)
        if case_id in seen:
            raise InputFileError(folder, f"case id {case_id!r} is given twice: {seen[case_id]} and {manifest.parent}")
        seen[case_id] = manifest.parent
        rows.append(row)
    return rows


def latest_predictions(paths) -> tuple:
    """({case_id: finished CaseRow}, notes): the newest finished row of each case over ``paths``
    (files that do not exist are skipped; one that cannot be read is a note, not an error)."""
    found, notes = {}, []
    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            rows = read_predictions(path)
        except Harm3Error as exc:
            notes.append(f"predictions not shown: {one_line(exc)}")
            continue
        for row in rows:
            old = found.get(row.case_id)
            if row.status in FINISHED and (old is None or row.finished >= old.finished):
                found[row.case_id] = row
    return found, notes


class Worklist:
    """The cases of a cohort with what is known about each; updated as batches and reads report.

    Not thread-safe: the viewer changes it on the GUI thread only (workers send it rows)."""

    def __init__(self, source: Path, rows, predictions_path: Path, reports_dir: Path, notes=()):
        self.source = Path(source)
        self.predictions_path = Path(predictions_path)
        self.reports_dir = Path(reports_dir)
        self.notes = tuple(notes)
        self._rows = {row.case_id: row for row in rows}
        self._order = [row.case_id for row in rows]

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, case_id) -> bool:
        return case_id in self._rows

    @property
    def case_ids(self) -> list:
        return list(self._order)

    @property
    def rows(self) -> list:
        """The rows in the cohort table's order."""
        return [self._rows[i] for i in self._order]

    def row(self, case_id: str) -> WorklistRow:
        try:
            return self._rows[case_id]
        except KeyError:
            raise Harm3Error(f"case {case_id!r} is not in the worklist") from None

    def _replace(self, case_id: str, **changes) -> WorklistRow:
        row = dataclasses.replace(self.row(case_id), **changes)
        self._rows[case_id] = row
        return row

    def set_prediction(self, prediction: CaseRow) -> WorklistRow:
        """A batch row arrived: it goes to the row of *its own* case id (never by position). A case
        that was not predicted (skipped, failed) shows no numbers and keeps the reason."""
        row = self.row(prediction.case_id)
        problems = tuple(p for p in row.problems if not p.startswith(NOT_PREDICTED))
        if prediction.status not in FINISHED:
            problems += (f"{NOT_PREDICTED} ({prediction.status}): {prediction.reason}",)
        return self._replace(prediction.case_id, prediction=prediction if prediction.status in FINISHED else None,
                             report=self.report_files(prediction.case_id), problems=problems)

    def refresh_report(self, case_id: str) -> WorklistRow:
        return self._replace(case_id, report=self.report_files(case_id))

    def mark_unreadable(self, case_id: str, message: str) -> WorklistRow:
        """Opening the case failed: its present inputs are unknown-good, the reason is kept."""
        row = self.row(case_id)
        inputs = {k: (UNREADABLE if v == PRESENT and k not in ("masks", "transforms") else v) for k, v in row.inputs.items()}
        line = f"cannot be opened: {message}"
        return self._replace(case_id, inputs=inputs, problems=row.problems + (() if line in row.problems else (line,)))

    def report_files(self, case_id: str):
        pdf, json_path = report_names(case_id, self.reports_dir)
        return (pdf, json_path) if pdf.is_file() and json_path.is_file() else None

    def finished_rows(self) -> list:
        return [r.prediction for r in self.rows if r.prediction is not None]

    def save_predictions(self) -> Path:
        """Write the finished rows to :attr:`predictions_path` (the table's order, atomic)."""
        return write_predictions(self.finished_rows(), self.predictions_path)


def open_worklist(source, predictions=None, reports_dir=None) -> Worklist:
    """A :class:`Worklist` of a cohort CSV, a folder with ``cohort.csv`` or a folder of case folders.

    Predictions shown: ``predictions`` if given, else ``predictions.csv`` next to the cohort and
    in the reports folder (``reports/`` next to the cohort unless ``reports_dir``), the newest
    finished row of each case. Batch runs from the worklist write to ``predictions`` (default:
    ``predictions.csv`` next to the cohort).
    """
    source = Path(source)
    if not source.exists():
        raise InputFileError(source, "no such cohort table or folder")
    if is_cohort_path(source):
        table = find_cohort_table(source).resolve()
        rows, base = _rows_of_table(read_cohort_table(table)), table.parent
    elif source.is_dir():
        rows, base = _rows_of_folder(source.resolve()), source.resolve()
    else:
        raise InputFileError(source, "not a cohort: give its .csv table or a folder of case folders")
    reports = Path(reports_dir) if reports_dir is not None else base / REPORTS_DIR
    out = Path(predictions) if predictions is not None else base / PREDICTIONS_FILE
    found, notes = latest_predictions([out] if predictions is not None else [out, reports / PREDICTIONS_FILE])
    worklist = Worklist(source, rows, out, reports, notes)
    for case_id, prediction in found.items():
        if case_id in worklist:
            worklist.set_prediction(prediction)
    for case_id in worklist.case_ids:
        worklist.refresh_report(case_id)
    return worklist


__all__ = ["ABSENT", "INPUTS", "MISSING", "PRESENT", "UNKNOWN", "UNREADABLE", "Worklist",
           "WorklistRow", "input_states", "input_title", "latest_predictions", "open_worklist"]
