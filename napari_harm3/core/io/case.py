"""Patient cases: the case manifest (YAML); the cohort table is :mod:`.cohort`.

Case manifest
-------------
One YAML file (JSON is accepted too, ``.json``) per patient, usually ``<case folder>/case.yaml``.
Paths are relative to the manifest's folder (absolute paths work too)::

    case_id: SYN-0001
    mri:                      # any may be missing; a value is a NIfTI file or a DICOM folder
      t1_pre: mri/t1_pre.nii.gz         #   ("folder#<SeriesInstanceUID>" picks one series,
                                        #    "…#UID:N" / "file.dcm#:N" one volume of a multi-stack series)
      t1_post: mri/t1_post.nii.gz
      t2_pre: mri/t2_pre.nii.gz
      t2_post: mri/t2_post.nii.gz
    masks:                    # optional tumour masks, keyed like mri (NIfTI label volume or RTSTRUCT)
      t1_pre: mri/tumour_t1_pre.nii.gz
    slide: slide/biopsy.tiff  # pre-treatment biopsy whole-slide image
    slide_mpp: null           # optional µm/px for slides whose metadata lacks it
    transforms:               # optional registration onto t1_pre (ITK transform files, written by
      t1_post: transforms/t1_post_to_t1_pre.tfm   #   ``harm3 align``): each maps t1_pre's physical
                              #   (LPS mm) points to that sequence's points
    labels: {pcr: 1, survival_months: 23.4, event: 1}   # optional; any may be missing
    synthetic: {...}          # only for phantoms: the latent scores that generated the case

Sequences are ``t1_pre``, ``t1_post``, ``t2_pre``, ``t2_post`` (contrast T1 and T2, before and
after neoadjuvant treatment). ``pcr`` is 1 for pathological complete response, else 0;
``survival_months`` is the follow-up time and ``event`` 1 for death (0 = censored).
``transforms`` holds one ITK transform file per sequence other than ``t1_pre`` (the case's
reference frame): it maps t1_pre's physical (LPS mm) points to that sequence's points, the
convention ITK, SimpleITK and 3D Slicer read. Volumes are shown and prepared through them
(``core/mri/case_volumes.py``). ``case_id`` defaults to the manifest's folder name. An unknown field, a wrong type or a YAML
syntax error is reported in one line naming the file and the field.

"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import yaml

from ..atomic import atomic_path
from ..errors import InputFileError

from ..vocabulary import MANIFEST_NAMES, REFERENCE_SEQUENCE, SEQUENCES

MANIFEST_FIELDS = ("case_id", "mri", "masks", "slide", "slide_mpp", "transforms", "labels", "synthetic")
LABEL_FIELDS = ("pcr", "survival_months", "event")
#: sequences that may carry a transform (the reference has none)
TRANSFORM_KEYS = tuple(s for s in SEQUENCES if s != REFERENCE_SEQUENCE)


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class CaseLabels:
    """Outcome labels of one patient; ``None`` = unknown."""

    pcr: int | None = None
    survival_months: float | None = None
    event: int | None = None

    def as_dict(self) -> dict:
        """The known labels only (for a manifest)."""
        return {name: getattr(self, name) for name in LABEL_FIELDS if getattr(self, name) is not None}

    def merged_over(self, fallback: "CaseLabels") -> "CaseLabels":
        """These labels, with unknown ones taken from ``fallback``."""
        return CaseLabels(*(getattr(self, n) if getattr(self, n) is not None else getattr(fallback, n) for n in LABEL_FIELDS))


@dataclass(frozen=True)
class Case:
    """One patient: MRI volumes, tumour masks, biopsy slide, labels (paths absolute once loaded).

    ``mri`` and ``masks`` map a sequence key (``SEQUENCES``) to a file or DICOM folder path, or
    to the text ``"<folder>#<SeriesInstanceUID>"`` for one series of a folder (``#UID:N`` or
    ``#:N``: volume N of a series or file holding several stacks, echoes or time points); see
    :func:`split_series_reference`.
    """

    case_id: str
    root: Path
    mri: Mapping[str, Path | str] = field(default_factory=dict)
    masks: Mapping[str, Path | str] = field(default_factory=dict)
    slide: Path | None = None
    slide_mpp: float | None = None
    labels: CaseLabels = field(default_factory=CaseLabels)
    synthetic: Mapping | None = None
    manifest: Path | None = None
    transforms: Mapping[str, Path] = field(default_factory=dict)  # sequence → ITK file (t1_pre → it)

    def mri_source(self, key: str) -> tuple[Path, str | None]:
        """(path, series UID or None) of sequence ``key``."""
        return split_series_reference(self.mri[key])

    def mask_source(self, key: str) -> tuple[Path, str | None]:
        return split_series_reference(self.masks[key])


def split_series_reference(value) -> tuple[Path, str | None]:
    """``"folder#UID"`` → (Path(folder), "UID"); a plain path → (Path, None).

    A path that exists as written is taken literally even if it contains ``#``.
    """
    text = str(value)
    if "#" in text and not Path(text).exists():
        folder, uid = text.rsplit("#", 1)
        return Path(folder), (uid.strip() or None)
    return Path(text), None


# --------------------------------------------------------------------------- manifest parsing
def _type_name(value) -> str:
    return "nothing (null)" if value is None else type(value).__name__


def _bad(path: Path, field_name: str, reason: str) -> InputFileError:
    return InputFileError(path, f"field '{field_name}': {reason}")


def _resolve(root: Path, value: str) -> Path | str:
    folder, uid = split_series_reference(value if Path(value).is_absolute() else root / value)
    folder = Path(os.path.normpath(folder))
    return f"{folder}#{uid}" if uid else folder


def _parse_paths(path: Path, root: Path, name: str, value, keys=SEQUENCES) -> dict[str, Path | str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, name, f"expected a mapping of sequence → path, got {_type_name(value)}")
    out = {}
    for key, item in value.items():
        if key not in keys:
            raise _bad(path, f"{name}.{key}", f"unknown sequence; expected one of {', '.join(keys)}")
        if item is None:
            continue
        if not isinstance(item, str) or not item.strip():
            raise _bad(path, f"{name}.{key}", f"expected a path (text), got {_type_name(item)}")
        out[key] = _resolve(root, item.strip())
    return out


def _number(value, integer01: bool = False):
    """Checked label value, or raise ValueError(reason)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {value!r}")
    if integer01:
        if value not in (0, 1):
            raise ValueError(f"expected 0 or 1, got {value!r}")
        return int(value)
    if value < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return float(value)


def parse_labels(values: Mapping, error) -> CaseLabels:
    """CaseLabels from a mapping; ``error(field, reason)`` builds the exception to raise."""
    checked = {}
    for name in LABEL_FIELDS:
        try:
            checked[name] = _number(values.get(name), integer01=name != "survival_months")
        except ValueError as exc:
            raise error(name, str(exc)) from None
    return CaseLabels(**checked)


def _read_mapping(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputFileError(path, "is not a text file; expected a YAML or JSON case manifest") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputFileError(path, f"YAML syntax error{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InputFileError(path, f"expected a mapping of fields (case_id, mri, slide, …), got {_type_name(data)}")
    return data


def find_manifest(path) -> Path:
    """The manifest file itself, or ``case.yaml`` (``.yml``, ``.json``) inside a case folder."""
    path = Path(path)
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        raise InputFileError(path, f"no {MANIFEST_NAMES[0]} in this folder; pass the manifest file or a case folder")
    if not path.exists():
        raise InputFileError(path, "no such case manifest or folder")
    return path


def load_case(path) -> Case:
    """Read a case manifest (file, or a case folder holding ``case.yaml``); paths become absolute."""
    manifest = find_manifest(path).resolve()
    data = _read_mapping(manifest)
    root = manifest.parent
    unknown = [key for key in data if key not in MANIFEST_FIELDS]
    if unknown:
        raise _bad(manifest, str(unknown[0]), f"unknown field; known fields: {', '.join(MANIFEST_FIELDS)}")
    case_id = data.get("case_id", root.name)
    if isinstance(case_id, int) and not isinstance(case_id, bool):
        case_id = str(case_id)
    if not isinstance(case_id, str) or not case_id.strip():
        raise _bad(manifest, "case_id", f"expected text, got {_type_name(case_id)}")
    slide = data.get("slide")
    if slide is not None and (not isinstance(slide, str) or not slide.strip()):
        raise _bad(manifest, "slide", f"expected a path (text), got {_type_name(slide)}")
    slide_mpp = data.get("slide_mpp")
    if slide_mpp is not None:
        if isinstance(slide_mpp, bool) or not isinstance(slide_mpp, (int, float)) or not slide_mpp > 0:
            raise _bad(manifest, "slide_mpp", f"expected a positive number of µm per pixel, got {slide_mpp!r}")
        slide_mpp = float(slide_mpp)
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise _bad(manifest, "labels", f"expected a mapping (pcr, survival_months, event), got {_type_name(labels)}")
    for key in labels:
        if key not in LABEL_FIELDS:
            raise _bad(manifest, f"labels.{key}", f"unknown label; known labels: {', '.join(LABEL_FIELDS)}")
    synthetic = data.get("synthetic")
    if synthetic is not None and not isinstance(synthetic, dict):
        raise _bad(manifest, "synthetic", f"expected a mapping, got {_type_name(synthetic)}")
    return Case(
        case_id=case_id.strip(),
        root=root,
        mri=_parse_paths(manifest, root, "mri", data.get("mri")),
        masks=_parse_paths(manifest, root, "masks", data.get("masks")),
        transforms={k: Path(v) for k, v in _parse_paths(manifest, root, "transforms", data.get("transforms"),
                                                        TRANSFORM_KEYS).items()},
        slide=Path(_resolve(root, slide.strip())) if slide else None,
        slide_mpp=slide_mpp,
        labels=parse_labels(labels, lambda name, reason: _bad(manifest, f"labels.{name}", reason)),
        synthetic=synthetic,
        manifest=manifest,
    )


# --------------------------------------------------------------------------- manifest writing
def _relative(target, root: Path) -> str:
    folder, uid = split_series_reference(target)
    folder = Path(folder)
    if not folder.is_absolute():
        text = folder.as_posix()
    else:
        try:
            text = folder.relative_to(root).as_posix()
        except ValueError:
            text = str(folder)
    return f"{text}#{uid}" if uid else text


def manifest_dict(case: Case, root: Path) -> dict:
    """The manifest mapping of ``case`` with paths relative to ``root`` where they lie under it."""
    data: dict = {"case_id": case.case_id}
    if case.mri:
        data["mri"] = {key: _relative(case.mri[key], root) for key in SEQUENCES if key in case.mri}
    if case.masks:
        data["masks"] = {key: _relative(case.masks[key], root) for key in SEQUENCES if key in case.masks}
    data["slide"] = _relative(case.slide, root) if case.slide is not None else None
    data["slide_mpp"] = case.slide_mpp
    if case.transforms:
        data["transforms"] = {key: _relative(case.transforms[key], root) for key in SEQUENCES if key in case.transforms}
    labels = case.labels.as_dict()
    if labels:
        data["labels"] = labels
    if case.synthetic is not None:
        data["synthetic"] = _plain(dict(case.synthetic))
    return data


def _plain(value):
    """Numpy scalars/arrays and tuples → plain Python (YAML-safe)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_case(case: Case, path, overwrite: bool = False) -> Path:
    """Write ``case`` as a YAML manifest (``path`` = file, or a folder → ``folder/case.yaml``).

    Relative paths in ``case`` are taken relative to ``case.root``; absolute ones are written
    relative to the manifest's folder when they lie under it. Returns the manifest path.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / MANIFEST_NAMES[0]
    root = path.parent.resolve()
    absolute = dataclasses.replace(
        case,
        mri={k: _absolute(v, case.root) for k, v in case.mri.items()},
        masks={k: _absolute(v, case.root) for k, v in case.masks.items()},
        slide=Path(_absolute(case.slide, case.root)) if case.slide is not None else None,
        transforms={k: Path(_absolute(v, case.root)) for k, v in case.transforms.items()},
    )
    text = yaml.safe_dump(manifest_dict(absolute, root), sort_keys=False, allow_unicode=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def _absolute(value, root: Path) -> Path | str:
    folder, uid = split_series_reference(value)
    folder = Path(folder) if Path(folder).is_absolute() else Path(root) / folder
    folder = Path(os.path.normpath(folder.resolve() if folder.exists() else folder))
    return f"{folder}#{uid}" if uid else folder
