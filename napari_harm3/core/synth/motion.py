"""Patient motion between sessions, known exactly: random rigid motions and moved copies of volumes.

Weeks apart, a patient lies differently on the table: 15–20° of rotation about some axis and
~20 mm of shift are common. :func:`random_rigid_motion` draws such a motion as a
:class:`~napari_harm3.core.mri.transforms.WorldTransform` in the registration convention — it maps
a point of the first session (the reference) to where the same anatomy is in the second.

:func:`moved_volume` makes the second session's image of a real volume: the volume sampled through
the motion onto another grid (other voxel size, orientation, field of view), optionally with
another contrast and Rician noise. Registering it back onto the original must recover the motion —
the accuracy checks of ``core/mri/registration.py`` do exactly that.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..mri.prep import sample_on_grid
from ..mri.transforms import WorldTransform


def rotation_matrix(axis_zyx, degrees: float) -> np.ndarray:
    """3×3 rotation by ``degrees`` about the unit vector ``axis_zyx`` (Rodrigues)."""
    axis = np.asarray(axis_zyx, float)
    axis = axis / np.linalg.norm(axis)
    theta = np.radians(float(degrees))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.cos(theta) * np.eye(3) + np.sin(theta) * cross + (1 - np.cos(theta)) * np.outer(axis, axis)


def rigid_motion(axis_zyx, degrees: float, shift_zyx, centre_zyx=(0.0, 0.0, 0.0)) -> WorldTransform:
    """Rotation by ``degrees`` about the axis through ``centre_zyx``, then ``shift_zyx`` (mm)."""
    rotation = rotation_matrix(axis_zyx, degrees)
    centre = np.asarray(centre_zyx, float)
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = centre - rotation @ centre + np.asarray(shift_zyx, float)
    return WorldTransform(matrix, kind="rigid motion")


def random_rigid_motion(rng: np.random.Generator, max_degrees: float = 20.0, max_shift_mm: float = 20.0,
                        centre_zyx=(0.0, 0.0, 0.0), min_degrees: float | None = None,
                        min_shift_mm: float | None = None) -> tuple[WorldTransform, dict]:
    """A rigid motion about a random axis through ``centre_zyx``: angle uniform in
    [``min_degrees`` (default half the maximum), ``max_degrees``], shift of uniform length in
    [``min_shift_mm`` (default half), ``max_shift_mm``] in a random direction.

    Returns (transform, description) where the description is plain numbers for a manifest.
    """
    min_degrees = max_degrees / 2 if min_degrees is None else min_degrees
    min_shift_mm = max_shift_mm / 2 if min_shift_mm is None else min_shift_mm
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    degrees = float(rng.uniform(min_degrees, max_degrees))
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    shift = direction * float(rng.uniform(min_shift_mm, max_shift_mm))
    transform = rigid_motion(axis, degrees, shift, centre_zyx)
    description = {"axis_zyx": [round(float(v), 6) for v in axis], "degrees": round(degrees, 4),
                   "shift_zyx_mm": [round(float(v), 4) for v in shift],
                   "centre_zyx_mm": [round(float(v), 4) for v in centre_zyx]}
    return transform, description


def grid_around(volume, spacing_zyx, rotation_degrees: float = 0.0, axis_zyx=(1.0, 0.0, 0.0), shape=None):
    """(affine, shape) of a grid over ``volume``'s field of view with voxels ``spacing_zyx``,
    turned by ``rotation_degrees`` about ``axis_zyx`` through the volume's centre."""
    spacing = np.asarray(spacing_zyx, float)
    low, high = volume.world_bounds()
    centre = (low + high) / 2
    if shape is None:
        shape = np.maximum(1, np.ceil((high - low) / spacing).astype(int) + 1)
    shape = tuple(int(s) for s in shape)
    rotation = rotation_matrix(axis_zyx, rotation_degrees)
    direction = rotation @ np.asarray(volume.affine, float)[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine, shape


def moved_volume(volume, motion: WorldTransform, grid_affine=None, grid_shape=None, contrast=None,
                 noise_sigma: float = 0.0, seed: int = 0, name: str | None = None):
    """``volume`` as seen after ``motion`` (reference point → moved point), on another grid.

    The value at a world point ``p`` of the result is the original's at ``motion⁻¹(p)``.
    ``contrast``: a function of the original intensities (float32 array → array), e.g. a
    non-monotone curve for "another sequence"; ``noise_sigma`` adds Rician noise of that level.
    """
    grid_affine = np.asarray(volume.affine if grid_affine is None else grid_affine, float)
    grid_shape = tuple(volume.shape if grid_shape is None else grid_shape)
    data = sample_on_grid(np.asarray(volume.data, np.float32), motion.matrix @ np.asarray(volume.affine, float),
                          grid_affine, grid_shape, order=1, cval=0.0)
    if contrast is not None:
        data = np.asarray(contrast(data), np.float32)
    if noise_sigma > 0:
        noise = np.random.default_rng(seed).normal(0.0, noise_sigma, (2,) + data.shape).astype(np.float32)
        data = np.sqrt((data + noise[0]) ** 2 + noise[1] ** 2)
    return dataclasses.replace(volume, data=data.astype(np.float32), affine=grid_affine,
                               name=name or f"{volume.name} moved", source=f"{volume.source} (moved)",
                               metadata={**dict(volume.metadata or {}), "synthetic_motion": motion.matrix.tolist()})


def known_motion_pair(volume, seed: int, moved: bool = True, degrees=(15.0, 20.0), shift_mm=(15.0, 20.0)):
    """(moving volume, true transform) for registration checks on a real ``volume``.

    The truth is a rigid motion about a random axis through the volume's centre (angle and
    shift drawn in the given ranges; the identity with ``moved=False``); the moving image is
    the volume seen through it on another grid (voxels 1.2× deeper and 1.35× wider, turned 12°
    about a random axis), with :func:`inverted_contrast` and Rician noise of 3 % of the 99th
    intensity percentile.
    """
    rng = np.random.default_rng(seed)
    low, high = volume.world_bounds()
    if moved:
        truth, _ = random_rigid_motion(rng, degrees[1], shift_mm[1], (low + high) / 2,
                                       min_degrees=degrees[0], min_shift_mm=shift_mm[0])
    else:
        truth = WorldTransform.identity()
    spacing = np.asarray(volume.spacing) * np.array([1.2, 1.35, 1.35])
    affine, shape = grid_around(volume, spacing, rotation_degrees=12.0, axis_zyx=rng.standard_normal(3))
    sigma = 0.03 * float(np.percentile(volume.data, 99))
    moving = moved_volume(volume, truth, affine, shape, contrast=inverted_contrast, noise_sigma=sigma, seed=seed)
    return moving, truth


def inverted_contrast(data: np.ndarray) -> np.ndarray:
    """A T1 → 'T2-like' remapping: non-monotone in the intensities (bright becomes middling,
    middling bright, background stays dark), so only a statistical metric can match it."""
    data = np.asarray(data, np.float32)
    top = float(np.percentile(data, 99.5)) or 1.0
    u = np.clip(data / top, 0.0, 1.5)
    return (top * (1.6 * u * np.exp(-2.2 * u) / (1.6 * 0.4545 * np.exp(-1.0)) * 0.8)).astype(np.float32)
