"""Patch and feature files in CLAM's layout, inside CrossFusion's folder layout.

Layout (``{mag_dir}`` is ``x20`` for 256-px patches, ``x20_p224`` for other sizes)::

    {root}/{encoder}/{mag_dir}/patches/{slide}.h5    coords (N, 2) int64, level-0 (x, y) top-left
    {root}/{encoder}/{mag_dir}/h5_files/{slide}.h5   features (N, D) float32 + coords (N, 2) int32
    {root}/{encoder}/{mag_dir}/pt_files/{slide}.pt   the (N, D) float32 tensor

The patch file's ``coords`` dataset carries CLAM's attributes (``patch_size`` = pixels read at
``patch_level``, ``patch_level``, ``downsample``, ``downsampled_level_dim``, ``level_dim``,
``name``) and ours (``magnification``, ``patch_size_level0``, ``target_patch_size``, …), so CLAM's
extractor reads the same regions. Feature files record the encoder, its weights' sha256, the
magnification and the patch size. Files are written atomically; a run in progress keeps its
rows in ``h5_files/.{slide}.partial.h5`` so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import Harm3Error, InputFileError
from .magnification import mag_label

DEFAULT_PATCH_SIZE = 256


@dataclass(frozen=True)
class FeatureBag:
    """Patch features of one slide at one magnification."""

    features: np.ndarray  # (N, D) float32
    coords: np.ndarray  # (N, 2) int64 level-0 (x, y) top-left
    patch_size_level0: int
    mag: float | None
    encoder: str
    weights_sha256: str = ""
    patch_size: int = DEFAULT_PATCH_SIZE
    slide: str = ""
    attrs: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.features)


def mag_dir_name(mag: float | None, patch_size: int = DEFAULT_PATCH_SIZE) -> str:
    """``x20`` (256-px patches) or ``x20_p224``."""
    name = f"x{mag_label(mag)}"
    return name if int(patch_size) == DEFAULT_PATCH_SIZE else f"{name}_p{int(patch_size)}"


def safe_encoder_dir(encoder: str) -> str:
    """Folder name for an encoder name ('resnet50_trunc+random-init' stays readable)."""
    return "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in encoder)


@dataclass(frozen=True)
class SlideFiles:
    """Where one slide's files for one encoder, magnification and patch size go."""

    root: Path  # {root}/{encoder}/{mag_dir}
    slide: str

    @classmethod
    def of(cls, out_root, encoder: str, mag: float | None, patch_size: int, slide: str) -> "SlideFiles":
        return cls(Path(out_root) / safe_encoder_dir(encoder) / mag_dir_name(mag, patch_size), slide)

    @property
    def patches(self) -> Path:
        return self.root / "patches" / f"{self.slide}.h5"

    @property
    def h5(self) -> Path:
        return self.root / "h5_files" / f"{self.slide}.h5"

    @property
    def pt(self) -> Path:
        return self.root / "pt_files" / f"{self.slide}.pt"

    @property
    def partial(self) -> Path:
        return self.root / "h5_files" / f".{self.slide}.partial.h5"

    def done(self) -> bool:
        return self.h5.is_file() and self.pt.is_file() and self.patches.is_file()


def patch_file_path(patch_root, mag: float | None, patch_size: int, slide: str) -> Path:
    """``{patch_root}/{mag_dir}/patches/{slide}.h5`` (the encoder-free output of ``harm3 patch``)."""
    return Path(patch_root) / mag_dir_name(mag, patch_size) / "patches" / f"{slide}.h5"


def _attr_value(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)) and not all(isinstance(v, (int, float)) for v in value):
        return json.dumps(value)
    return value


def write_patch_file(path, coords: np.ndarray, attrs: dict, overwrite: bool = True) -> Path:
    """Write CLAM's patch file: dataset ``coords`` (N, 2) int64 with ``attrs`` on it."""
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as handle:
            dataset = handle.create_dataset("coords", data=coords, maxshape=(None, 2),
                                            chunks=(max(1, min(len(coords), 4096)), 2))
            for key, value in attrs.items():
                dataset.attrs[key] = _attr_value(value)
    return Path(path)


def read_patch_file(path) -> tuple:
    """(coords (N, 2) int64, attrs dict) from a CLAM patch file (ours or CLAM's)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "patch file not found")
    try:
        with h5py.File(path, "r") as handle:
            if "coords" not in handle:
                raise InputFileError(path, "not a CLAM patch file (no 'coords' dataset)")
            dataset = handle["coords"]
            coords = np.asarray(dataset[:], dtype=np.int64).reshape(-1, 2)
            attrs = {k: _plain(v) for k, v in dataset.attrs.items()}
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})") from exc
    return coords, attrs


def _plain(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_feature_files(files: SlideFiles, features: np.ndarray, coords: np.ndarray, attrs: dict,
                        overwrite: bool = True) -> None:
    """Write ``h5_files/{slide}.h5`` (features + coords) and ``pt_files/{slide}.pt`` atomically."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    with atomic_path(files.pt, overwrite=overwrite) as tmp:
        torch.save(torch.from_numpy(features), tmp)
    with atomic_path(files.h5, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset("features", data=features)
            handle.create_dataset("coords", data=np.asarray(coords, dtype=np.int32).reshape(-1, 2))
            for key, value in attrs.items():
                handle.attrs[key] = _attr_value(value)


def load_clam_features(path, patches=None) -> tuple:
    """(features (N, D) float32, coords (N, 2) int64, attrs) from CLAM's files.

    ``path`` is an ``h5_files/{slide}.h5`` (features + coords), or a ``pt_files/{slide}.pt`` whose
    coordinates come from ``patches`` or, by default, the sibling ``../patches/{slide}.h5``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "feature file not found")
    if path.suffix == ".pt":
        try:
            tensor = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(path, f"not a tensor file torch.load(weights_only=True) can read ({exc})") from exc
        if not hasattr(tensor, "numpy") or tensor.ndim != 2:
            raise InputFileError(path, "does not hold an (N, D) feature tensor")
        features = tensor.float().numpy()
        patches = Path(patches) if patches else path.parent.parent / "patches" / f"{path.stem}.h5"
        coords, attrs = read_patch_file(patches)
    else:
        try:
            with h5py.File(path, "r") as handle:
                if "features" not in handle:
                    raise InputFileError(path, "not a CLAM feature file (no 'features' dataset)")
                features = np.asarray(handle["features"][:], dtype=np.float32)
                coords = np.asarray(handle["coords"][:], dtype=np.int64) if "coords" in handle else None
                attrs = {k: _plain(v) for k, v in handle.attrs.items()}
        except OSError as exc:
            raise InputFileError(path, f"not a readable HDF5 file ({exc})") from exc
        if coords is None:
            if patches is None:
                raise InputFileError(path, "has no 'coords'; give the patch file too")
            coords, _ = read_patch_file(patches)
    if len(coords) != len(features):
        raise InputFileError(path, f"{len(features)} feature rows but {len(coords)} coordinates")
    return features, coords.reshape(-1, 2), attrs


class PartialFeatures:
    """Rows computed so far for one slide (resumable): an HDF5 file with growing datasets."""

    def __init__(self, path, n_total: int, dim: int, fingerprint: str):
        self.path = Path(path)
        self.n_total, self.dim, self.fingerprint = int(n_total), int(dim), fingerprint

    def rows_done(self) -> int:
        """Rows already stored by an earlier run of the same job (0 when none or another job's)."""
        if not self.path.is_file():
            return 0
        try:
            with h5py.File(self.path, "r") as handle:
                same = (handle.attrs.get("fingerprint") == self.fingerprint
                        and int(handle.attrs.get("n_total", -1)) == self.n_total
                        and handle["features"].shape[1] == self.dim)
                return int(handle.attrs.get("rows", 0)) if same else 0
        except (OSError, KeyError):
            return 0

    def start(self, resume: bool) -> int:
        """Open for appending; returns the first row to compute."""
        done = self.rows_done() if resume else 0
        if done == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(self.path, "w") as handle:
                handle.create_dataset("features", shape=(0, self.dim), maxshape=(None, self.dim),
                                      dtype="float32", chunks=(256, self.dim))
                handle.attrs.update(fingerprint=self.fingerprint, n_total=self.n_total, rows=0)
        return done

    def append(self, start: int, rows: np.ndarray) -> None:
        """Store rows ``start … start+len(rows)``; the row count is updated last."""
        with h5py.File(self.path, "a") as handle:
            dataset = handle["features"]
            dataset.resize(start + len(rows), axis=0)
            dataset[start:start + len(rows)] = rows
            handle.attrs["rows"] = start + len(rows)

    def read(self) -> np.ndarray:
        with h5py.File(self.path, "r") as handle:
            return np.asarray(handle["features"][: int(handle.attrs["rows"])], dtype=np.float32)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def check_patch_file_matches(path, attrs: dict, keys=("magnification", "patch_size_level0", "target_patch_size")) -> None:
    """Raise when an existing patch file was made with other settings than ``attrs``."""
    _, existing = read_patch_file(path)
    for key in keys:
        if key in existing and key in attrs and str(existing[key]) != str(_attr_value(attrs[key])):
            raise Harm3Error(f"{path}: made with {key}={existing[key]}, not {attrs[key]}; "
                             "use --force to recompute or another output folder")
