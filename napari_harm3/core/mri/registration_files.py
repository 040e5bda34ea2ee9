"""A registration on disk: the ITK transform file and its JSON record, written together.

``T.tfm`` is what ITK, SimpleITK and 3D Slicer read (FIXED physical points → MOVING points, LPS
mm); ``T.json`` next to it records how it was found and judged (final metric, iterations,
time, verdict, parameters). Both are written atomically, the record around the transform, so an
interrupted or refused write leaves neither under its final name. A rigid result is written as
an ``Euler3DTransform`` (so a reader sees it is rigid), an affine one as an ``AffineTransform``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..atomic import atomic_path
from ..errors import Harm3Error
from .transforms import WorldTransform, world_to_itk, write_transform

#: transform files ITK writes by suffix (``.h5``: HDF5; ``.mat``: ITK's MATLAB format)
WRITABLE_SUFFIXES = (".tfm", ".txt", ".h5", ".mat")


def record_path(transform_path) -> Path:
    """Where the JSON record of ``T.tfm`` lives: ``T.json``."""
    return Path(transform_path).with_suffix(".json")


def check_transform_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in WRITABLE_SUFFIXES:
        raise Harm3Error(f"{path}: a transform file name ends in {', '.join(WRITABLE_SUFFIXES)}")
    return path


def itk_transform(transform: WorldTransform, rigid: bool) -> sitk.Transform:
    """The SimpleITK transform to write for a world transform (Euler3D when rigid)."""
    matrix = world_to_itk(transform.matrix)
    if rigid:
        euler = sitk.Euler3DTransform()
        linear = matrix[:3, :3]
        u, _, vt = np.linalg.svd(linear)                  # the nearest rotation (removes round-off)
        euler.SetMatrix(tuple((u @ vt).ravel()), 1e-6)
        euler.SetTranslation(tuple(matrix[:3, 3]))
        return euler
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(tuple(matrix[:3, :3].ravel()))
    affine.SetTranslation(tuple(matrix[:3, 3]))
    return affine


def write_registration(transform: WorldTransform, record: dict, path, rigid: bool, overwrite: bool = False):
    """Write ``path`` (the transform) and its JSON record; returns (transform path, record path)."""
    path = check_transform_path(path)
    json_path = record_path(path)
    text = json.dumps(_plain(record), indent=2, allow_nan=False)
    with atomic_path(json_path, overwrite=overwrite) as staged:
        Path(staged).write_text(text + "\n", encoding="utf-8")
        write_transform(itk_transform(transform, rigid), path, overwrite=overwrite)
    return path, json_path


def read_record(path) -> dict | None:
    """The JSON record next to transform file ``path`` (None when absent or unreadable)."""
    json_path = record_path(path)
    if not json_path.is_file():
        return None
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def record_is_usable(path) -> bool:
    """True when ``path`` exists and its record says the registration was plausible (or accepted)."""
    record = read_record(path)
    if not Path(path).is_file() or record is None:
        return False
    verdict = record.get("verdict") or {}
    return bool(verdict.get("plausible") or record.get("accepted_implausible"))


def _plain(value):
    """NaN/inf → None, numpy → Python (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value

