"""Registration accuracy on real MRI: known rigid motions are recovered, unmoved pairs stay put.

Each moving image is a real volume moved by a known rigid motion (15–20° about a random axis,
15–20 mm), sampled onto another grid (other voxel size, turned 12°), remapped to another,
non-monotone contrast and given Rician noise (``core/synth/motion.py``). Target registration
error (TRE) = distance between where the estimate and the truth send the fixed foreground's
points. Levels stop at 2 mm here to keep the file quick (the benchmark runs the default 8 → 1 mm
on the full volumes: ``benchmarks/bench_registration.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import real_file
from napari_harm3.core.io.mri import Volume, nifti_affine_to_lps, read_volume
from napari_harm3.core.mri.registration import RegistrationConfig, register_volumes
from napari_harm3.core.mri.registration_images import target_registration_error, volume_foreground_points
from napari_harm3.core.mri.transforms import WorldTransform
from napari_harm3.core.synth.motion import grid_around, inverted_contrast, moved_volume, random_rigid_motion

TEST_LEVELS = (8.0, 4.0, 2.0)


def nibabel_epi() -> Volume:
    """The real EPI brain volume nibabel ships (example4d.nii.gz, first time point)."""
    import nibabel as nib

    path = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "example4d.nii.gz")
    if not os.path.isfile(path):
        pytest.skip(f"nibabel's example4d.nii.gz is not installed ({path})")
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)[..., 0].astype(np.float32)
    return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), nifti_affine_to_lps(image.affine), "example4d", path)


def real_volume(shared_data, which: str) -> Volume:
    if which == "nibabel_epi":
        return nibabel_epi()
    relative = {"sts_nifti_t1": "mri/sts001_nifti/t1.nii.gz", "sts_dicom_t1": "mri/sts001_dicom/T1"}[which]
    volume = read_volume(real_file(shared_data, relative))
    if which == "sts_dicom_t1":  # 512² at 0.39 mm: 2×2 block means (0.78 mm) keep the test quick
        data = volume.data.astype(np.float32)
        data = data.reshape(data.shape[0], data.shape[1] // 2, 2, data.shape[2] // 2, 2).mean(axis=(2, 4))
        affine = volume.affine.copy()
        affine[:3, 1:3] *= 2
        affine[:3, 3] += (volume.affine[:3, 1] + volume.affine[:3, 2]) / 2
        volume = Volume(data, affine, volume.name, volume.source)
    return volume


def moved_pair(volume: Volume, seed: int, motion: bool = True):
    """(moving volume, true transform) for ``volume``: see the module docstring."""
    rng = np.random.default_rng(seed)
    low, high = volume.world_bounds()
    if motion:
        truth, _ = random_rigid_motion(rng, 20.0, 20.0, (low + high) / 2, min_degrees=15.0, min_shift_mm=15.0)
    else:
        truth = WorldTransform.identity()
    spacing = np.asarray(volume.spacing) * np.array([1.2, 1.35, 1.35])
    affine, shape = grid_around(volume, spacing, rotation_degrees=12.0, axis_zyx=rng.standard_normal(3))
    sigma = 0.03 * float(np.percentile(volume.data, 99))
    moving = moved_volume(volume, truth, affine, shape, contrast=inverted_contrast, noise_sigma=sigma, seed=seed)
    return moving, truth


def _tre(result, truth, fixed):
    errors = target_registration_error(result.transform, truth, volume_foreground_points(fixed))
    return float(errors.mean()), float(errors.max())


@pytest.mark.parametrize("which, seed", [("sts_nifti_t1", 1), ("sts_dicom_t1", 2), ("nibabel_epi", 3)])
def test_a_known_rigid_motion_is_recovered(shared_data, which, seed):
    fixed = real_volume(shared_data, which)
    moving, truth = moved_pair(fixed, seed)
    result = register_volumes(fixed, moving, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, truth, fixed)
    print(f"\n{which}: motion {truth.rotation_degrees:.1f}° / {np.linalg.norm(truth.matrix[:3, 3]):.0f} mm, "
          f"TRE mean {mean:.3f} mm, max {worst:.3f} mm, {result.seconds:.1f} s, {result.iterations} iterations; "
          f"{result.verdict.summary}")
    assert mean < 0.5 and worst < 1.0
    assert result.plausible and result.verdict.checks["converged"]
    assert result.metric < result.metric_unregistered                    # better than not registering
    assert abs(result.transform.rotation_degrees - truth.rotation_degrees) < 0.5


def test_an_unmoved_pair_stays_within_0_2_mm(shared_data):
    fixed = real_volume(shared_data, "sts_nifti_t1")
    moving, truth = moved_pair(fixed, 4, motion=False)                  # other grid, contrast and noise only
    result = register_volumes(fixed, moving, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, truth, fixed)
    print(f"\nunmoved pair: TRE mean {mean:.3f} mm, max {worst:.3f} mm ({result.seconds:.1f} s)")
    assert mean < 0.2 and worst < 0.4
    assert result.plausible


def test_t2_onto_t1_of_the_real_study_stays_near_the_scanner_frame(shared_data):
    """STS_001's T1 and T2 were acquired in one session (one frame of reference): registration
    must not drift far from the identity (the patient may have moved a little between them)."""
    t1 = read_volume(real_file(shared_data, "mri/sts001_dicom/T1"))
    t2 = read_volume(real_file(shared_data, "mri/sts001_dicom/T2"))
    result = register_volumes(t1, t2, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, WorldTransform.identity(), t1)
    print(f"\nSTS_001 T2 → T1: {mean:.2f} mm mean, {worst:.2f} mm max from the identity; {result.verdict.summary}")
    assert mean < 2.0 and worst < 3.0
    assert result.plausible and result.verdict.checks["dice"] > 0.9
