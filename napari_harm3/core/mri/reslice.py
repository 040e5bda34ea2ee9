"""Put volumes on grids napari can slice: axis-aligned with the world, one reference grid.

napari slices a layer along its own index axes, so a volume whose affine is not a plain
per-axis scale of the world (a coronal or sagittal acquisition next to an axial one, a
rotated registration, an oblique scan) would be cut along the wrong planes. Before display,
each volume is brought onto an axis-aligned grid:

- a grid whose index axes already run along the world axes (any signs, e.g. a NIfTI read from
  RAS into LPS) is only **flipped** into increasing world order: exact, no interpolation.
  "Along" allows :data:`NEAR_AXIS_DEGREES` of tilt: real scans are rarely exactly square to the
  table (STS_001's T1 and T2 are tilted 2°), and like a PACS we show them on their own voxels;
  napari then cuts the acquired slices, off the true world plane by at most the tilt;
- the **reference** volume (T1-pre) in another plane is reoriented exactly (transposed and
  flipped); an oblique reference is resampled onto the axis-aligned box around it, at its own
  voxel sizes;
- any **other** volume in another plane or oblique (its affine includes its registration
  transform, see ``case_volumes``) is resampled onto the reference's grid
  (:func:`reslice`, trilinear for images, nearest for labels), "resliced onto T1-pre".

Resampling is SimpleITK's (multi-threaded; ``benchmarks/bench_reslice.py`` compares it with
scipy's ``affine_transform``: the same voxels, about twice as fast). No Qt; the affines are
index (k, j, i) → world (z, y, x) LPS mm, 4×4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

#: relative size of an off-axis affine component still taken as zero (float noise of headers)
AXIS_TOLERANCE = 1e-4
#: tilt (degrees) of an index axis off its world axis still shown on the volume's own voxels
NEAR_AXIS_DEGREES = 3.0
NEAR_AXIS = float(np.sin(np.radians(NEAR_AXIS_DEGREES)))
AS_IS, FLIPPED, REORIENTED, RESLICED = "as is", "flipped", "reoriented", "resliced"


@dataclass(frozen=True, eq=False)
class Grid:
    """An axis-aligned voxel grid: ``shape`` (nz, ny, nx) and an ``affine`` whose index axis n
    runs along +world axis n (a positive diagonal, up to :data:`NEAR_AXIS_DEGREES` of tilt)."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    name: str = ""          # whose grid it is, e.g. "T1-pre"

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


@dataclass(frozen=True, eq=False)
class Placed:
    """A volume (or mask, or map) ready for napari: data on an axis-aligned grid."""

    data: np.ndarray
    affine: np.ndarray
    how: str                # AS_IS, FLIPPED, REORIENTED or RESLICED
    onto: str = ""          # the grid's name when RESLICED

    @property
    def resliced(self) -> bool:
        return self.how == RESLICED


def _linear(affine) -> np.ndarray:
    return np.asarray(affine, dtype=float)[:3, :3]


def axis_permutation(affine, tolerance: float = AXIS_TOLERANCE):
    """(world axis of each index axis, sign of each) when every index axis runs along one world
    axis (a signed permutation), else None (an oblique grid)."""
    linear = _linear(affine)
    norms = np.linalg.norm(linear, axis=0)
    if np.any(norms <= 0):
        raise ValueError("the affine collapses an axis (zero voxel size)")
    unit = linear / norms
    axes = np.argmax(np.abs(unit), axis=0)
    off = np.abs(unit).copy()
    off[axes, range(3)] = 0.0
    if off.max() > tolerance or len(set(axes.tolist())) != 3:
        return None
    signs = np.sign(unit[axes, range(3)])
    return tuple(int(a) for a in axes), tuple(int(s) for s in signs)


def is_axis_aligned(affine, tolerance: float = AXIS_TOLERANCE) -> bool:
    """True when index axis n runs along +world axis n for all three (a positive diagonal)."""
    found = axis_permutation(affine, tolerance)
    return found is not None and found[0] == (0, 1, 2) and all(s > 0 for s in found[1])


def reorient(data, affine, tolerance: float = NEAR_AXIS) -> tuple[np.ndarray, np.ndarray]:
    """``data`` transposed and flipped so index axis n runs along +world axis n (exact, no
    interpolation; the affine's columns are permuted and negated alike, so a small tilt is
    kept); ``affine`` must be a signed permutation within ``tolerance``."""
    found = axis_permutation(affine, tolerance)
    if found is None:
        raise ValueError("an oblique grid cannot be reoriented exactly; reslice it")
    axes, signs = found
    affine = np.asarray(affine, dtype=float)
    data = np.asarray(data)
    order = [axes.index(world) for world in range(3)]          # old index axis of each new axis
    moved = np.transpose(data, order)
    flip = [n for n, old in enumerate(order) if signs[old] < 0]
    if flip:
        moved = np.flip(moved, axis=flip)
    first = np.array([(data.shape[j] - 1) if signs[j] < 0 else 0 for j in range(3)], dtype=float)
    out = np.eye(4)
    out[:3, :3] = np.stack([affine[:3, old] * signs[old] for old in order], axis=1)
    out[:3, 3] = affine[:3, :3] @ first + affine[:3, 3]
    return np.ascontiguousarray(moved), out


def bounding_grid(shape, affine, name: str = "") -> Grid:
    """The axis-aligned grid around a volume's voxel centres, at its voxel sizes (each world
    axis takes the size of the index axis running most along it)."""
    linear = _linear(affine)
    shape = tuple(int(n) for n in shape)
    corners = np.array([[k, j, i] for k in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for i in (0, shape[2] - 1)], dtype=float)
    world = corners @ linear.T + np.asarray(affine, dtype=float)[:3, 3]
    low, high = world.min(axis=0), world.max(axis=0)
    norms = np.linalg.norm(linear, axis=0)
    along = np.argmax(np.abs(linear / norms), axis=1)           # index axis most along each world axis
    spacing = norms[along]
    out_shape = tuple(int(n) for n in np.floor((high - low) / spacing + 1e-6).astype(int) + 1)
    grid = np.eye(4)
    grid[:3, :3] = np.diag(spacing)
    grid[:3, 3] = low
    return Grid(out_shape, grid, name)


def sitk_image(data, affine) -> sitk.Image:
    """A SimpleITK image of ``data`` (z, y, x) placed by ``affine`` (ITK: (x, y, z), index (i, j, k))."""
    affine = np.asarray(affine, dtype=float)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / spacing
    image.SetSpacing(tuple(float(v) for v in spacing[::-1]))
    image.SetOrigin(tuple(float(v) for v in affine[:3, 3][::-1]))
    image.SetDirection(tuple(float(v) for v in direction[::-1, ::-1].ravel()))
    return image


def reslice(data, affine, grid: Grid, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """``data`` (placed by ``affine``) resampled onto ``grid``: trilinear (``order=1``, float32)
    or nearest (``order=0``, for labels, in their own type); points outside get ``fill``."""
    data = np.asarray(data)
    if order == 0:
        source, interpolator, pixel = data, sitk.sitkNearestNeighbor, None
    else:
        source, interpolator, pixel = data.astype(np.float32, copy=False), sitk.sitkLinear, sitk.sitkFloat32
    if source.dtype == bool:
        source = source.astype(np.uint8)
    moving = sitk_image(source, affine)
    geometry = sitk_image(np.zeros((1, 1, 1), np.uint8), grid.affine)  # the grid's spacing, origin, axes
    reference = sitk.Image([int(n) for n in grid.shape[::-1]], sitk.sitkUInt8)
    reference.SetSpacing(geometry.GetSpacing())
    reference.SetOrigin(geometry.GetOrigin())
    reference.SetDirection(geometry.GetDirection())
    out = sitk.Resample(moving, reference, sitk.Transform(), interpolator, float(fill),
                        moving.GetPixelID() if pixel is None else pixel)
    return sitk.GetArrayFromImage(out).astype(data.dtype if order == 0 else np.float32, copy=False)


def place_reference(data, affine, name: str = "") -> tuple[Placed, Grid]:
    """The reference volume on an axis-aligned grid, and that grid (which the others join)."""
    affine = np.asarray(affine, dtype=float)
    if is_axis_aligned(affine, NEAR_AXIS):
        placed = Placed(np.asarray(data), affine, AS_IS)
    elif axis_permutation(affine, NEAR_AXIS) is not None:
        moved, moved_affine = reorient(data, affine)
        found = axis_permutation(affine, NEAR_AXIS)
        placed = Placed(moved, moved_affine, FLIPPED if found[0] == (0, 1, 2) else REORIENTED)
    else:
        grid = bounding_grid(np.shape(data), affine, name)
        placed = Placed(reslice(data, affine, grid), grid.affine, RESLICED, "an axis-aligned grid")
    return placed, Grid(tuple(placed.data.shape), placed.affine, name)


def place_on(data, affine, grid: Grid | None, labels: bool = False) -> Placed:
    """``data`` ready for a view on ``grid`` (the reference's): as is, flipped, or resliced."""
    affine = np.asarray(affine, dtype=float)
    if is_axis_aligned(affine, NEAR_AXIS):
        return Placed(np.asarray(data), affine, AS_IS)
    found = axis_permutation(affine, NEAR_AXIS)
    if found is not None and found[0] == (0, 1, 2):
        moved, moved_affine = reorient(data, affine)
        return Placed(moved, moved_affine, FLIPPED)
    if grid is None:  # nothing to join yet: this volume's own axis-aligned grid
        placed, _ = place_reference(data, affine)
        return placed
    return Placed(reslice(data, affine, grid, order=0 if labels else 1), grid.affine, RESLICED, grid.name)
