"""Volumes as SimpleITK images for registration: conversion, working grids, foregrounds, errors.

A :class:`~napari_harm3.core.io.mri.Volume` (data (k, j, i), affine index → world (z, y, x) LPS
mm) becomes a SimpleITK image whose physical space is the same LPS space written (x, y, z):
``sitk.GetImageFromArray`` already indexes the array as (i, j, k), so only the affine's order is
swapped (``transforms.world_to_itk``). Registration runs on *working images*: each volume smoothed
and resampled per axis to ``max(own voxel, level voxel)`` on its own orientation, so a 0.4 mm ×
5.2 mm series and a 1 mm isotropic one are both worked on at the level's resolution.

The *foreground* (the body) is what plausibility and accuracy are judged on: the upper two of
three Otsu classes of the log of the smoothed image, holes filled per slice and in 3-D, the largest connected part.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import Harm3Error
from .transforms import WorldTransform, world_to_itk


def volume_to_sitk(volume, dtype=np.float32) -> sitk.Image:
    """A Volume (or anything with ``data`` and ``affine``) as a SimpleITK image in LPS (x, y, z)."""
    data = np.asarray(volume.data)
    if data.ndim != 3:
        raise Harm3Error(f"registration needs 3-D volumes, got shape {data.shape}")
    matrix = world_to_itk(np.asarray(volume.affine, float))      # index (i, j, k) → physical (x, y, z)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(matrix)):
        raise Harm3Error("a volume's affine is degenerate (zero or non-finite voxel size)")
    image = sitk.GetImageFromArray(np.ascontiguousarray(data, dtype=dtype))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (matrix[:3, :3] / spacing).ravel()))
    image.SetOrigin(tuple(float(v) for v in matrix[:3, 3]))
    return image


def index_to_physical(image: sitk.Image) -> np.ndarray:
    """4×4 (x, y, z) map from an image's (i, j, k) index to its physical points."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def working_image(image: sitk.Image, voxel_mm: float, interpolator=sitk.sitkLinear) -> sitk.Image:
    """``image`` smoothed and resampled so each axis' voxel is at least ``voxel_mm`` (same
    orientation and physical extent; axes already coarser are kept)."""
    spacing = np.array(image.GetSpacing())
    size = np.array(image.GetSize())
    target = np.maximum(spacing, float(voxel_mm))
    if np.allclose(target, spacing):
        return image
    if interpolator == sitk.sitkLinear:
        # anti-aliasing: a Gaussian of σ = half the new voxel where the axis is coarsened
        sigma = np.where(target > spacing, 0.5 * np.sqrt(np.maximum(target**2 - spacing**2, 0.0)), 0.0)
        image = sitk.SmoothingRecursiveGaussian(image, [float(max(s, 1e-3)) for s in sigma]) if np.any(sigma > 0) else image
    new_size = np.maximum(1, np.round(size * spacing / target)).astype(int)
    new_spacing = size * spacing / new_size                      # same extent, edge to edge
    direction = np.array(image.GetDirection()).reshape(3, 3)
    first_edge = np.array(image.GetOrigin()) - direction @ (spacing / 2)
    origin = first_edge + direction @ (new_spacing / 2)
    return sitk.Resample(image, [int(n) for n in new_size], sitk.Transform(), interpolator,
                         tuple(origin), tuple(new_spacing), image.GetDirection(), 0.0, image.GetPixelID())


def foreground(image: sitk.Image) -> sitk.Image:
    """The body: above the lower of two Otsu thresholds of the log of the smoothed image, holes
    filled, the largest part (uint8).

    The log keeps a bright lesion from taking a class of its own (on a fat-saturated T2 a plain
    Otsu split finds the tumour, not the limb); three classes (background, darker and brighter
    tissue) keep a split from cutting through the tissues. Foreground Dice of the same anatomy
    across contrasts: T1/T2 of STS_001 0.96, T1 against a non-monotone remapping 0.97, phantom
    T1/T2 0.99 (plain Otsu: 0.24, 0.40, 0.99).
    """

    spacing = np.array(image.GetSpacing())
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(image, [float(max(s, 2.0)) for s in spacing]))
    logged = sitk.GetImageFromArray(np.log1p(np.maximum(smooth - smooth.min(), 0.0)).astype(np.float32))
    array = sitk.GetArrayFromImage(sitk.OtsuMultipleThresholds(logged, numberOfThresholds=2)) > 0   # (k, j, i)
    if array.any():
        labels, count = ndimage.label(array)
        if count > 1:
            sizes = ndimage.sum(array, labels, index=np.arange(1, count + 1))
            array = labels == (1 + int(np.argmax(sizes)))
        array = np.stack([ndimage.binary_fill_holes(s) for s in array])
        array = ndimage.binary_fill_holes(array)
    out = sitk.GetImageFromArray(array.astype(np.uint8))
    out.CopyInformation(image)
    return out


def mask_points(mask: sitk.Image, limit: int = 20000, seed: int = 0) -> np.ndarray:
    """Physical (x, y, z) centres of up to ``limit`` voxels of a binary mask (evenly drawn)."""
    index = np.argwhere(sitk.GetArrayFromImage(mask) > 0)[:, ::-1].astype(float)   # (n, 3) (i, j, k)
    if len(index) > limit:
        index = index[np.random.default_rng(seed).choice(len(index), limit, replace=False)]
    matrix = index_to_physical(mask)
    return index @ matrix[:3, :3].T + matrix[:3, 3]


def inside_field_of_view(image: sitk.Image, points_xyz: np.ndarray) -> np.ndarray:
    """Boolean per physical (x, y, z) point: inside the image's voxel grid (half a voxel out)."""
    inverse = np.linalg.inv(index_to_physical(image))
    index = points_xyz @ inverse[:3, :3].T + inverse[:3, 3]
    size = np.array(image.GetSize(), float)
    return np.all((index >= -0.5) & (index <= size - 0.5), axis=1)


def physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) physical (x, y, z) over the image's 8 outer voxel-edge corners."""
    size = np.array(image.GetSize(), float)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float) * size - 0.5
    matrix = index_to_physical(image)
    points = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return points.min(axis=0), points.max(axis=0)


def target_registration_error(estimated: WorldTransform, truth: WorldTransform, points_zyx) -> np.ndarray:
    """Distance (mm) between where ``estimated`` and ``truth`` send each world (z, y, x) point."""
    points = np.asarray(points_zyx, float)
    return np.linalg.norm(estimated.apply(points) - truth.apply(points), axis=1)


def volume_foreground_points(volume, limit: int = 20000, voxel_mm: float = 2.0) -> np.ndarray:
    """World (z, y, x) points of a volume's foreground (on a working grid of ``voxel_mm``)."""
    image = working_image(volume_to_sitk(volume), voxel_mm)
    return mask_points(foreground(image), limit)[:, ::-1]
