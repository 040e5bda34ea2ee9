"""An orientation phantom: three balls on the patient's left, anterior and superior sides.

The balls are defined in world millimetres (LPS (z, y, x): +z superior, +y posterior, +x the
patient's left) and evaluated at the voxel centres of any grid, so one phantom can be
"acquired" axially, coronally, sagittally or obliquely, and stored with any axis flips: in
every variant each ball must show on the side its letter names. The balls differ in size
(left largest, superior smallest), so a picture tells them apart without colour.
"""

from __future__ import annotations

import numpy as np

from ..io.mri import Volume
from .motion import rotation_matrix

#: marker letter → (world centre (z, y, x) mm, radius mm)
MARKERS: dict[str, tuple[tuple[float, float, float], float]] = {
    "L": ((0.0, 0.0, 40.0), 12.0),
    "A": ((0.0, -40.0, 0.0), 8.0),
    "S": ((40.0, 0.0, 0.0), 5.5),
}
#: half the field of view (mm) every variant covers around the world origin
HALF_FIELD_MM = 60.0

#: acquisition variant → the world direction (z, y, x) of each index axis (k, j, i)
_DIRECTIONS: dict[str, np.ndarray] = {
    # DICOM axial: slices go up, rows to posterior, columns to the left
    "axial": np.eye(3),
    # NIfTI stored RAS-ward (i to the right, j anterior), slices still superior
    "axial flipped": np.diag([1.0, -1.0, -1.0]),
    # coronal: slices step posterior, rows go down (inferior), columns to the left
    "coronal": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    # sagittal: slices step to the left, rows go down, columns to posterior
    "sagittal": np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
}
VARIANTS: tuple[str, ...] = tuple(_DIRECTIONS) + ("oblique",)


def variant_affine(variant: str, spacing=(3.0, 2.0, 2.0)) -> tuple[tuple[int, int, int], np.ndarray]:
    """(shape, affine) of a grid covering ±:data:`HALF_FIELD_MM` around the origin, acquired as
    ``variant`` ("oblique": axial tilted 25° about x, then 15° about z)."""
    if variant == "oblique":
        directions = rotation_matrix((1.0, 0.0, 0.0), 15.0) @ rotation_matrix((0.0, 0.0, 1.0), 25.0)
    else:
        try:
            directions = _DIRECTIONS[variant]
        except KeyError:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}") from None
    spacing = np.asarray(spacing, dtype=float)
    shape = tuple(int(n) for n in np.floor(2 * HALF_FIELD_MM / spacing).astype(int) + 1)
    linear = directions * spacing            # column n: index axis n's step in world mm
    centre_index = (np.asarray(shape, dtype=float) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ centre_index
    return shape, affine


def marker_data(shape, affine, value: float = 1000.0) -> np.ndarray:
    """The three balls (``value`` inside, 0 outside) at the voxel centres of a grid."""
    k, j, i = np.indices(tuple(shape), dtype=float)
    index = np.stack([k, j, i], axis=-1)
    affine = np.asarray(affine, dtype=float)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    out = np.zeros(tuple(shape), dtype=np.float32)
    for centre, radius in MARKERS.values():
        inside = np.sum((world - np.asarray(centre)) ** 2, axis=-1) <= radius**2
        out[inside] = value
    return out


def orientation_phantom(variant: str, spacing=(3.0, 2.0, 2.0), name: str | None = None) -> Volume:
    """The phantom acquired as ``variant`` (see :data:`VARIANTS`) as a :class:`Volume`."""
    shape, affine = variant_affine(variant, spacing)
    return Volume(data=marker_data(shape, affine), affine=affine, name=name or f"phantom {variant}",
                  source=f"<orientation phantom: {variant}>", metadata={"variant": variant})
