"""The words of the case, defined once: sequences, magnifications, analyses, model kinds, file names.

Every other module imports these names instead of spelling them again, so a sequence key, a
magnification label or a model kind cannot drift between the viewer, the report and the
command line.

- **Sequences** — the four MRI volumes of a case, T1/T2 × before/after neoadjuvant treatment.
  ``t1_pre`` is the case's reference frame: registration transforms map its physical points to
  the other sequences' points (see ``core/mri/transforms.py``).
- **Magnifications** — slide magnifications are integers (5, 10, 20); :func:`mag_label` writes
  them as people read them ("5x") and :func:`parse_magnification` reads every spelling met in
  files and options ("5x", "x5", "5", 5, 5.0).
- **Analyses** — ``pcr`` (HARM3-Fusion) and ``survival`` (CrossFusion), with the model-card
  kinds each accepts.
"""

from __future__ import annotations

import re

# -- MRI sequences ---------------------------------------------------------------------------
SEQUENCES = ("t1_pre", "t1_post", "t2_pre", "t2_post")
#: sequence → title shown on panels, in reports and tables
SEQUENCE_TITLES = {"t1_pre": "T1-pre", "t1_post": "T1-post", "t2_pre": "T2-pre", "t2_post": "T2-post"}
#: the sequence whose physical space the case's other volumes are registered to
REFERENCE_SEQUENCE = "t1_pre"
#: what ``harm3 align`` registers: sequence → the sequence it is registered onto (composed to the reference)
REGISTRATION_CHAIN = {"t1_post": "t1_pre", "t2_pre": "t1_pre", "t2_post": "t2_pre"}


def sequence_title(key: str) -> str:
    """``t1_pre`` → ``T1-pre`` (unknown keys as given)."""
    return SEQUENCE_TITLES.get(key, key)


def ordered_sequences(keys) -> list:
    """``keys`` in SEQUENCES order, unknown ones after them in their own order."""
    keys = list(keys)
    return [s for s in SEQUENCES if s in keys] + [k for k in keys if k not in SEQUENCES]


# -- slide magnifications ----------------------------------------------------------------------
#: CrossFusion's three scales
CROSSFUSION_MAGNIFICATIONS = (5, 10, 20)
#: HARM3-Fusion reads its slide features at this magnification (spec §4)
HARM3_SLIDE_MAGNIFICATION = 20
#: objective magnifications the slide pipeline extracts at
OBJECTIVE_MAGNIFICATIONS = (5, 10, 20, 40)
#: CrossFusion attention maps in display order → the magnification of the patches they score
ATTENTION_MAP_MAGNIFICATION = {"5x": 5, "10x": 10, "20x": 20, "final": 10}
ATTENTION_MAPS = tuple(ATTENTION_MAP_MAGNIFICATION)
#: HARM3-Fusion's pooling attention over the 20× slide patches
POOLING_MAP = "pooling"

_MAG = re.compile(r"^\s*x?\s*(\d+(?:\.\d+)?)\s*x?\s*$", re.IGNORECASE)


def mag_label(magnification) -> str:
    """20 → ``"20x"``."""
    return f"{parse_magnification(magnification)}x"


def parse_magnification(value) -> int:
    """An integer magnification from 20, 20.0, "20", "20x", "x20" (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"not a magnification: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _MAG.match(str(value))
        if not match:
            raise ValueError(f"not a magnification: {value!r} (expected e.g. 20 or 20x)")
        number = float(match.group(1))
    if number <= 0 or number != int(number):
        raise ValueError(f"not a magnification: {value!r}")
    return int(number)


# -- analyses and model kinds ------------------------------------------------------------------
ANALYSES = ("pcr", "survival")
ANALYSIS_TITLES = {"pcr": "pCR (HARM3-Fusion)", "survival": "Survival (CrossFusion)"}
#: "<name> analysis not run: <why>" in notes and reports
ANALYSIS_NAMES = {"pcr": "pCR", "survival": "Survival"}


def not_run_note(analysis: str, why: str = "") -> str:
    text = f"{ANALYSIS_NAMES[analysis]} analysis not run"
    return f"{text}: {why}" if why else text
#: model-card ``kind`` of each architecture
HARM3_KIND = "harm3-fusion"
CROSSFUSION_KIND = "crossfusion"
#: analysis → card kinds it accepts ("harm3" is the name the first issue used)
MODEL_KINDS = {"pcr": (HARM3_KIND, "harm3"), "survival": (CROSSFUSION_KIND,)}


def analysis_of_kind(kind: str) -> str | None:
    """The analysis a model-card kind serves, or None."""
    return next((a for a, kinds in MODEL_KINDS.items() if kind in kinds), None)


# -- file names --------------------------------------------------------------------------------
MANIFEST_NAMES = ("case.yaml", "case.yml", "case.json")
COHORT_TABLE_NAME = "cohort.csv"
#: slide features are cached in this folder next to the case folders (or under the case)
FEATURES_DIR = "features"
#: registration transforms written by ``harm3 align``, inside the case folder
TRANSFORMS_DIR = "transforms"
