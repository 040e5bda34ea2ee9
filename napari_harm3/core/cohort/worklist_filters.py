"""The worklist's columns, filters and sort order (pure; the Qt table asks these).

Columns (:data:`COLUMNS`): each has a title, the text a cell shows and a sort key (a missing
value sorts last whichever the direction). Filters are typed as a query of comma-separated
terms that must all hold (:func:`parse_query`), for instance::

    missing T2-post, high risk
    no report
    SYN-00

Terms: ``missing <input>`` (``T1-pre`` … ``T2-post``, ``slide``, ``masks``, ``transforms``;
spelling is free: ``t2_post``, ``T2 post``), ``missing`` (any input), ``high risk``, ``low
risk``, ``predicted``, ``not predicted``, ``report`` / ``no report``, ``problems``, ``ok``,
``pcr 1`` / ``pcr 0`` (the label); anything else matches a part of the case id. A term may be
negated with ``not`` (``not missing slide``).

:func:`neighbour` gives the next / previous case along an order (what Next / Previous follow).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Harm3Error
from .worklist import ABSENT, INPUTS, PRESENT, WorklistRow, input_title


def _fmt(value, spread=None, digits: int = 2) -> str:
    if value is None:
        return ""
    text = f"{value:.{digits}f}"
    return text if spread is None else f"{text} ± {spread:.{digits}f}"


def _label(value) -> str:
    return "" if value is None else f"{value:g}"


_MARKS = {PRESENT: "✓", ABSENT: "—", "missing": "missing", "unreadable": "unreadable", "unknown": "?"}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    text: Callable[[WorklistRow], str]
    sort_key: Callable[[WorklistRow], object]   # None = no value (sorts last)


def _input_column(key: str) -> Column:
    return Column(key, input_title(key), lambda r: _MARKS.get(r.inputs.get(key, "unknown"), "?"),
                  lambda r: ("unreadable", "missing", "unknown", ABSENT, PRESENT).index(r.inputs.get(key, "unknown")))


COLUMNS = (
    Column("case_id", "Case", lambda r: r.case_id, lambda r: r.case_id),
    *(_input_column(k) for k in INPUTS),
    Column("pcr_label", "pCR label", lambda r: _label(r.labels.pcr), lambda r: r.labels.pcr),
    Column("survival", "Follow-up (months)", lambda r: "" if r.labels.survival_months is None else
           f"{r.labels.survival_months:.1f}" + ("" if r.labels.event is None else (" †" if r.labels.event else " +")),
           lambda r: r.labels.survival_months),
    Column("pcr_probability", "p(pCR)", lambda r: _fmt(r.pcr_probability, r.pcr_spread), lambda r: r.pcr_probability),
    Column("risk", "Risk", lambda r: _fmt(r.risk, r.risk_spread), lambda r: r.risk),
    Column("risk_group", "Group", lambda r: r.risk_group or "", lambda r: r.risk_group),
    Column("report", "Report", lambda r: "written" if r.report else "", lambda r: r.report is not None),
    Column("status", "Status", lambda r: r.status if not r.problems else f"{r.status}: {r.problems[0]}",
           lambda r: r.status),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def column(key: str) -> Column:
    for col in COLUMNS:
        if col.key == key:
            return col
    raise Harm3Error(f"unknown worklist column {key!r}; choose one of {', '.join(COLUMN_KEYS)}")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


_INPUT_NAMES = {_squash(input_title(k)): k for k in INPUTS} | {_squash(k): k for k in INPUTS}

Predicate = Callable[[WorklistRow], bool]

_TERMS: dict = {
    "missing": lambda r: bool(r.missing()),
    "highrisk": lambda r: r.risk_group == "high",
    "lowrisk": lambda r: r.risk_group == "low",
    "predicted": lambda r: r.prediction is not None,
    "notpredicted": lambda r: r.prediction is None,
    "noprediction": lambda r: r.prediction is None,
    "report": lambda r: r.report is not None,
    "noreport": lambda r: r.report is None,
    "problems": lambda r: bool(r.problems),
    "ok": lambda r: not r.problems,
    "pcr1": lambda r: r.labels.pcr == 1,
    "pcr0": lambda r: r.labels.pcr == 0,
}


def parse_term(term: str) -> Predicate:
    """One filter term (see the module's docstring) as a predicate."""
    words = term.strip()
    if words.lower().startswith("not "):
        inner = parse_term(words[4:])
        return lambda r: not inner(r)
    squashed = _squash(words)
    if squashed in _TERMS:
        return _TERMS[squashed]
    if squashed.startswith("missing") and squashed[len("missing"):] in _INPUT_NAMES:
        key = _INPUT_NAMES[squashed[len("missing"):]]
        return lambda r: key in r.missing()
    needle = words.lower()
    return lambda r: needle in r.case_id.lower()


def parse_query(query: str) -> Predicate:
    """A query of comma-separated terms that must all hold (empty: every row)."""
    terms = [parse_term(t) for t in (query or "").split(",") if t.strip()]
    return lambda r: all(term(r) for term in terms)


#: ready-made filters the viewer offers (title → query)
PRESET_FILTERS = {
    "All cases": "",
    "Missing T2-post": "missing T2-post",
    "Missing slide": "missing slide",
    "Any input missing": "missing",
    "High risk": "high risk",
    "Not predicted": "not predicted",
    "No report": "no report",
    "Problems": "problems",
}


def sort_value(row: WorklistRow, key: str, descending: bool = False):
    """A key for ``sorted(..., reverse=descending)``: rows without a value come last in both
    directions (ties keep the order they came in: Python's sort is stable both ways)."""
    value = column(key).sort_key(row)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return (missing != descending, value if not missing else 0)


def ordered(rows, query: str = "", sort: str = "case_id", descending: bool = False) -> list:
    """The rows that match ``query``, sorted by column ``sort``."""
    keep = parse_query(query)
    chosen = sorted((r for r in rows if keep(r)), key=lambda r: r.position)
    return sorted(chosen, key=lambda r: sort_value(r, sort, descending), reverse=descending)


def neighbour(order, case_id, step: int):
    """The case ``step`` places from ``case_id`` along ``order`` (case ids); None past either end.
    A case not in the order (filtered out) starts from the first (step > 0) or last (step < 0)."""
    order = list(order)
    if not order:
        return None
    if case_id not in order:
        return order[0] if step > 0 else order[-1]
    index = order.index(case_id) + step
    return order[index] if 0 <= index < len(order) else None
