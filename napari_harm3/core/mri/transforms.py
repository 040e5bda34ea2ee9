"""Registration transforms between a case's volumes, as ITK transform files and as 4×4 matrices.

Convention (ITK's, also SimpleITK's and 3D Slicer's): a transform **maps the fixed image's
physical points to the moving image's points**, in LPS millimetres. For a case the fixed image
is the reference sequence (``t1_pre``), so a sequence's transform answers "where in this scan is
the anatomy found at this point of T1-pre?". ITK writes points as (x, y, z); this package's
world is (z, y, x) LPS (``core/io/mri.py``), so matrices here are in (z, y, x) order and
:func:`itk_to_world` / :func:`world_to_itk` convert.

Only linear transforms are taken (translation, rigid/Euler, versor, similarity, affine, and
composites of them): a non-linear or 2-D transform is refused in one line naming what it is.
A volume is brought into the reference frame by changing its affine only — no resampling:
``index → own world → T⁻¹ → reference world`` (:func:`aligned_affine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..atomic import atomic_path
from ..errors import InputFileError

#: (x, y, z) ↔ (z, y, x) on homogeneous 4-vectors; its own inverse
_SWAP_XZ = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat", ".xfm")


@dataclass(frozen=True, eq=False)
class WorldTransform:
    """A linear transform of world (z, y, x) LPS mm points: reference point → sequence point."""

    matrix: np.ndarray        # 4×4, homogeneous, (z, y, x) order
    source: str = ""          # the file it was read from ("" = made in memory)
    kind: str = "affine"      # what the file held, e.g. "Euler3DTransform"

    def __post_init__(self):
        matrix = np.asarray(self.matrix, dtype=float)
        if matrix.shape != (4, 4) or not np.allclose(matrix[3], (0, 0, 0, 1)):
            raise ValueError(f"a world transform is a homogeneous 4×4 matrix, got {matrix.shape}")
        object.__setattr__(self, "matrix", matrix)

    @classmethod
    def identity(cls) -> "WorldTransform":
        return cls(np.eye(4), kind="identity")

    def apply(self, points) -> np.ndarray:
        """(N, 3) world (z, y, x) points of the reference → the sequence's points."""
        points = np.asarray(points, dtype=float)
        return points @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def inverse(self) -> "WorldTransform":
        return WorldTransform(np.linalg.inv(self.matrix), self.source, self.kind)

    def then(self, other: "WorldTransform") -> "WorldTransform":
        """This transform followed by ``other`` (points: ``other.apply(self.apply(p))``)."""
        return WorldTransform(other.matrix @ self.matrix, kind="composite")

    @property
    def rotation_degrees(self) -> float:
        """Angle of the rotation part (polar decomposition), in degrees."""
        u, _, vt = np.linalg.svd(self.matrix[:3, :3])
        rotation = u @ vt
        return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0))))

    @property
    def translation_mm(self) -> float:
        return float(np.linalg.norm(self.matrix[:3, 3]))


def itk_to_world(matrix_xyz: np.ndarray) -> np.ndarray:
    """A 4×4 acting on (x, y, z) points → the same map on (z, y, x) points."""
    return _SWAP_XZ @ np.asarray(matrix_xyz, dtype=float) @ _SWAP_XZ


def world_to_itk(matrix_zyx: np.ndarray) -> np.ndarray:
    return _SWAP_XZ @ np.asarray(matrix_zyx, dtype=float) @ _SWAP_XZ


def sitk_to_matrix(transform: sitk.Transform, what: str = "transform") -> np.ndarray:
    """The 4×4 (x, y, z) matrix of a linear SimpleITK transform (ValueError when it is not linear).

    Found by mapping the origin and the unit vectors, then checked on points 200 mm out: a
    B-spline or displacement field fails the check instead of being linearised silently.
    """
    if transform.GetDimension() != 3:
        raise ValueError(f"{what} is {transform.GetDimension()}-D; a 3-D transform is needed")
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.array(transform.TransformPoint(tuple(e))) - origin for e in np.eye(3)]
    matrix = np.eye(4)
    matrix[:3, :3] = np.stack(columns, axis=1)
    matrix[:3, 3] = origin
    probes = np.random.default_rng(0).uniform(-200.0, 200.0, (8, 3))
    for p in probes:
        expected = matrix[:3, :3] @ p + matrix[:3, 3]
        if np.abs(np.array(transform.TransformPoint(tuple(p))) - expected).max() > 1e-3:
            raise ValueError(f"{what} ({transform.GetName()}) is not linear; only rigid and affine transforms are taken")
    return matrix


def read_transform(path) -> WorldTransform:
    """Read an ITK transform file (``.tfm``/``.txt``/``.h5``/``.mat``) as a :class:`WorldTransform`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such transform file")
    try:
        transform = sitk.ReadTransform(str(path))
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[-160:]
        raise InputFileError(path, f"not an ITK transform file ({reason})") from None
    try:
        matrix = sitk_to_matrix(transform, "the transform")
    except ValueError as exc:
        raise InputFileError(path, str(exc)) from None
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
        raise InputFileError(path, "the transform is degenerate (it collapses space)")
    return WorldTransform(itk_to_world(matrix), source=str(path), kind=transform.GetName())


def matrix_to_sitk(matrix_zyx: np.ndarray) -> sitk.AffineTransform:
    """A SimpleITK affine transform doing what the world (z, y, x) matrix does."""
    m = world_to_itk(matrix_zyx)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple(m[:3, :3].ravel()))
    transform.SetTranslation(tuple(m[:3, 3]))
    return transform


def write_transform(transform, path, overwrite: bool = False) -> Path:
    """Write a :class:`WorldTransform` (or a SimpleITK transform) as an ITK text file, atomically."""
    path = Path(path)
    itk = transform if isinstance(transform, sitk.Transform) else matrix_to_sitk(transform.matrix)
    with atomic_path(path, overwrite=overwrite) as tmp:
        # ITK picks the writer by suffix: the temporary name keeps the final one
        staged = Path(tmp).with_name(Path(tmp).name + path.suffix)
        try:
            sitk.WriteTransform(itk, str(staged))
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)
    return path


def aligned_affine(affine: np.ndarray, transform: WorldTransform | None) -> np.ndarray:
    """A volume's affine (index → own world) made to land in the reference frame: T⁻¹ · A."""
    if transform is None:
        return np.asarray(affine, dtype=float)
    return np.linalg.inv(transform.matrix) @ np.asarray(affine, dtype=float)
