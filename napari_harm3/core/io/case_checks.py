"""Every problem of a case or a cohort at once (``harm3 validate``, the worklist, batch runs).

Each problem is one line naming the field and the file: missing or unreadable MRI, masks,
transforms and slide, a slide without microns per pixel, bad rows of the cohort table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Harm3Error, InputFileError
from ..vocabulary import SEQUENCES
from .case import Case
from .masks import read_mask
from .mri import read_volume
from .wsi import open_slide
from ..mri.transforms import read_transform
from .cohort import Cohort, case_of_entry, read_cohort_table


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InputFileError):
        return exc.reason
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def validate_case(case: Case, open_files: bool = True) -> list[str]:
    """Every problem of ``case`` at once (empty list = fine).

    Checks that each MRI, mask and slide path exists and, with ``open_files``, that each opens
    with the project's readers (masks on their sequence's volume, for RTSTRUCT) and that the
    slide has microns per pixel (from its metadata or ``slide_mpp``).
    """
    problems: list[str] = []
    volumes = {}
    if not case.mri and case.slide is None:
        problems.append(f"{case.case_id}: no MRI and no slide in the case")
    for key in SEQUENCES:
        if key not in case.mri:
            continue
        folder, uid = case.mri_source(key)
        if not folder.exists():
            problems.append(f"mri.{key}: not found: {folder}")
        elif open_files:
            try:
                volumes[key] = read_volume(folder, series_uid=uid)
            except Exception as exc:  # noqa: BLE001 - every failure becomes one line
                problems.append(f"mri.{key}: cannot be read: {folder}: {_reason(exc)}")
    for key in SEQUENCES:
        if key not in case.masks:
            continue
        folder, _uid = case.mask_source(key)
        if not folder.exists():
            problems.append(f"masks.{key}: not found: {folder}")
        elif open_files:
            try:
                mask = read_mask(folder, reference=volumes.get(key))
                reference = volumes.get(key)
                if reference is not None and mask.shape != reference.shape and np.allclose(mask.affine, reference.affine):
                    problems.append(f"masks.{key}: shape {mask.shape} differs from the volume's {reference.shape}: {folder}")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"masks.{key}: cannot be read: {folder}: {_reason(exc)}")
    problems.extend(_transform_problems(case, open_files))
    if case.slide is not None:
        problems.extend(_slide_problems(case, open_files))
    return problems


def _transform_problems(case: Case, open_files: bool) -> list[str]:
    problems = []
    for key, path in sorted(case.transforms.items()):
        if key not in case.mri:
            problems.append(f"transforms.{key}: the case has no {key} volume for it: {path}")
        if not Path(path).is_file():
            problems.append(f"transforms.{key}: not found: {path}")
        elif open_files:
            try:
                read_transform(path)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"transforms.{key}: cannot be read: {path}: {_reason(exc)}")
    return problems


def _slide_problems(case: Case, open_files: bool) -> list[str]:
    if not Path(case.slide).exists():
        return [f"slide: not found: {case.slide}"]
    if not open_files:
        return []
    try:
        slide = open_slide(case.slide, mpp=case.slide_mpp)
    except Exception as exc:  # noqa: BLE001
        return [f"slide: cannot be read: {case.slide}: {_reason(exc)}"]
    try:
        if slide.mpp is None:
            return [f"slide: no microns-per-pixel in its metadata; set slide_mpp in the manifest: {case.slide}"]
    finally:
        slide.close()
    return []


def validate_cohort(cohort, open_files: bool = True) -> list[str]:
    """Every problem of a cohort (a :class:`Cohort`, a CSV path or a folder with ``cohort.csv``)."""
    if isinstance(cohort, Cohort):
        entries = cohort.entries
    else:
        try:
            entries = read_cohort_table(cohort)
        except Harm3Error as exc:
            return [str(exc)]
    problems = []
    for entry in entries:
        try:
            case = case_of_entry(entry)
        except Harm3Error as exc:
            problems.append(f"{entry.case_id}: {exc}")
            continue
        problems.extend(f"{entry.case_id}: {p}" for p in validate_case(case, open_files=open_files))
    return problems
