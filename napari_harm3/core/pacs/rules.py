"""Which series of a study is which sequence: rules on the series description, never guesses.

A rule set maps each sequence (``SEQUENCES``: t1_pre, t1_post, t2_pre, t2_post) to one or more
regular expressions, searched case-insensitively in the series description. Only MR image
series are candidates. The outcome (:class:`SeriesAssignment`) says, for every series, why it
was or was not taken:

- a series that matches the rules of exactly one sequence, and is the only series matching that
  sequence, is **assigned**;
- a series that matches the rules of several sequences, or one of several series matching the
  same sequence, is **ambiguous**: reported with what it matched, and assigned to nothing;
- everything else (no rule matched, or not an MR image series) is **unassigned** and listed.

The default rules read the descriptions our synthetic studies carry ("T1 pre", "T2 post FS")
and a plain pre-treatment scan ("AXIAL SE T1 - RESEARCH" → t1_pre). Here *pre* and *post* mean
before and after neoadjuvant treatment; a site whose descriptions use "post" for *post-contrast*
must write its own rules (see NOTES / README "PACS").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..errors import Harm3Error
from ..vocabulary import SEQUENCES

#: "T1"/"T2" as a token: not part of a longer number (T10) nor preceded by a letter or digit
_T1 = r"(?<![a-z0-9])t1(?![0-9])"
_T2 = r"(?<![a-z0-9])t2(?![0-9])"
_POST = r"(?<![a-z])post(?![a-z])"
DEFAULT_RULES: Mapping[str, tuple[str, ...]] = {
    "t1_pre": (rf"{_T1}(?!.*{_POST})",),
    "t1_post": (rf"{_T1}.*{_POST}",),
    "t2_pre": (rf"{_T2}(?!.*{_POST})",),
    "t2_post": (rf"{_T2}.*{_POST}",),
}


@dataclass(frozen=True)
class SeriesRules:
    """sequence → regular expressions (searched case-insensitively in SeriesDescription)."""

    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def __post_init__(self):
        for key, items in self.patterns.items():
            if key not in SEQUENCES:
                raise Harm3Error(f"rules: unknown sequence {key!r}; expected one of {', '.join(SEQUENCES)}")
            for item in items:
                try:
                    re.compile(item, re.IGNORECASE)
                except re.error as exc:
                    raise Harm3Error(f"rules.{key}: bad regular expression {item!r} ({exc})") from None

    @classmethod
    def from_mapping(cls, data, where: str = "rules") -> "SeriesRules":
        """Rules from a config mapping ``{sequence: regex or [regex, …]}``; sequences left out
        keep their default rules, a sequence mapped to ``[]`` or null matches nothing."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise Harm3Error(f"{where}: expected a mapping of sequence → regular expression(s)")
        patterns = dict(DEFAULT_RULES)
        for key, value in data.items():
            if value is None:
                value = []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise Harm3Error(f"{where}.{key}: expected a regular expression or a list of them")
            patterns[str(key)] = tuple(value)
        return cls(patterns)

    def matches(self, description: str) -> list[str]:
        """The sequences whose rules match ``description``, in SEQUENCES order."""
        text = description or ""
        return [key for key in SEQUENCES
                if any(re.search(p, text, re.IGNORECASE) for p in self.patterns.get(key, ()))]


@dataclass(frozen=True)
class SeriesCandidate:
    """What the rules look at: one series of the study (from its headers)."""

    uid: str
    description: str
    modality: str
    is_image: bool = True  # an image series (not SR, SEG, RTSTRUCT, PR …)
    n_instances: int = 0

    @property
    def label(self) -> str:
        count = f"{self.n_instances} object{'' if self.n_instances == 1 else 's'}"
        return f"'{self.description or '(no description)'}' ({self.modality}, {count})"


@dataclass(frozen=True)
class SeriesAssignment:
    """The rules' verdict on a study's series."""

    assigned: Mapping[str, SeriesCandidate]                  # sequence → series
    ambiguous: tuple[tuple[SeriesCandidate, tuple[str, ...], str], ...]  # (series, sequences it matched, why)
    unassigned: tuple[tuple[SeriesCandidate, str], ...]      # (series, why)

    @property
    def missing(self) -> tuple[str, ...]:
        """Sequences no series was assigned to."""
        return tuple(s for s in SEQUENCES if s not in self.assigned)

    def lines(self, skip=()) -> list[str]:
        """A readable account, one line per sequence and per series left out (except the series
        whose UIDs are in ``skip``, e.g. RTSTRUCTs attached as masks)."""
        out = [f"{key:8s} ← {self.assigned[key].label}" if key in self.assigned else f"{key:8s} ← (none)"
               for key in SEQUENCES]
        out += [f"ambiguous: {s.label} matches {', '.join(keys)}: {why}" for s, keys, why in self.ambiguous]
        out += [f"unassigned: {s.label}: {why}" for s, why in self.unassigned if s.uid not in skip]
        return out


def assign_series(candidates, rules: SeriesRules | None = None,
                  overrides: Mapping[str, str] | None = None) -> SeriesAssignment:
    """Assign ``candidates`` (SeriesCandidate) to sequences by ``rules``.

    ``overrides`` (sequence → SeriesInstanceUID) are taken as given, before the rules; a series
    named there is not matched again, and the rules no longer fill that sequence.
    """
    rules = rules or SeriesRules()
    overrides = dict(overrides or {})
    by_uid = {c.uid: c for c in candidates}
    assigned: dict[str, SeriesCandidate] = {}
    for key, uid in overrides.items():
        if key not in SEQUENCES:
            raise Harm3Error(f"--assign {key}=…: unknown sequence; expected one of {', '.join(SEQUENCES)}")
        if uid not in by_uid:
            raise Harm3Error(f"--assign {key}={uid}: the study has no such series")
        assigned[key] = by_uid[uid]
    taken = {c.uid for c in assigned.values()}
    unassigned, ambiguous, wanted = [], [], {}
    for c in candidates:
        if c.uid in taken:
            continue
        if not c.is_image or c.modality != "MR":
            unassigned.append((c, "not an MR image series"))
            continue
        keys = [k for k in rules.matches(c.description) if k not in assigned]
        if not keys:
            unassigned.append((c, "no rule matches its description"))
        elif len(keys) > 1:
            ambiguous.append((c, tuple(keys), "its description matches the rules of several sequences"))
        else:
            wanted.setdefault(keys[0], []).append(c)
    for key, series in wanted.items():
        if len(series) == 1:
            assigned[key] = series[0]
        else:
            others = ", ".join(s.label for s in series)
            ambiguous += [(s, (key,), f"{len(series)} series match {key} ({others})") for s in series]
    order = {c.uid: i for i, c in enumerate(candidates)}
    return SeriesAssignment(
        assigned={k: assigned[k] for k in SEQUENCES if k in assigned},
        ambiguous=tuple(sorted(ambiguous, key=lambda a: order[a[0].uid])),
        unassigned=tuple(unassigned),
    )
