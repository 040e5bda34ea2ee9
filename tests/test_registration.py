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
from napari_harm3.core.synth.motion import known_motion_pair

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


def halved_in_plane(volume: Volume) -> Volume:
    """2×2 in-plane block means (a 512² series at 0.39 mm → 256² at 0.78 mm): quicker, same anatomy."""
    data = volume.data.astype(np.float32)
    nz, ny, nx = (n - n % 2 for n in data.shape)
    data = data[:nz, :ny, :nx].reshape(nz, ny // 2, 2, nx // 2, 2).mean(axis=(2, 4))
    affine = volume.affine.copy()
    affine[:3, 3] += (affine[:3, 1] + affine[:3, 2]) / 2
    affine[:3, 1:3] *= 2
    return Volume(data, affine, volume.name, volume.source)


def real_volume(request, which: str) -> Volume:
    """A real volume by name (the STS_001 ones from ../shared/data: skipped where it is absent)."""
    if which == "nibabel_epi":
        return nibabel_epi()
    shared_data = request.getfixturevalue("shared_data")
    relative = {"sts_nifti_t1": "mri/sts001_nifti/t1.nii.gz", "sts_dicom_t1": "mri/sts001_dicom/T1",
                "sts_dicom_t2": "mri/sts001_dicom/T2"}[which]
    volume = read_volume(real_file(shared_data, relative))
    return halved_in_plane(volume) if which.startswith("sts_dicom") else volume


def _tre(result, truth, fixed):
    errors = target_registration_error(result.transform, truth, volume_foreground_points(fixed))
    return float(errors.mean()), float(errors.max())


@pytest.mark.parametrize("which, seed", [("sts_nifti_t1", 1), ("sts_dicom_t1", 2), ("nibabel_epi", 3)])
def test_a_known_rigid_motion_is_recovered(request, which, seed):
    fixed = real_volume(request, which)
    moving, truth = known_motion_pair(fixed, seed)
    result = register_volumes(fixed, moving, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, truth, fixed)
    centre = np.mean(fixed.world_bounds(), axis=0)
    shift = np.linalg.norm(truth.apply(centre[None])[0] - centre)
    print(f"\n{which}: motion {truth.rotation_degrees:.1f}° / {shift:.0f} mm, "
          f"TRE mean {mean:.3f} mm, max {worst:.3f} mm, {result.seconds:.1f} s, {result.iterations} iterations; "
          f"{result.verdict.summary}")
    assert mean < 0.5 and worst < 1.0
    assert result.plausible and result.verdict.checks["converged"]
    assert result.metric < result.metric_unregistered                    # better than not registering
    assert abs(result.transform.rotation_degrees - truth.rotation_degrees) < 0.5


def test_an_unmoved_pair_stays_within_0_2_mm(request):
    fixed = real_volume(request, "sts_nifti_t1")
    moving, truth = known_motion_pair(fixed, 4, moved=False)                  # other grid, contrast and noise only
    result = register_volumes(fixed, moving, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, truth, fixed)
    print(f"\nunmoved pair: TRE mean {mean:.3f} mm, max {worst:.3f} mm ({result.seconds:.1f} s)")
    assert mean < 0.2 and worst < 0.4
    assert result.plausible


def test_t2_onto_t1_of_the_real_study_stays_near_the_scanner_frame(request):
    """STS_001's T1 and T2 were acquired in one session (one frame of reference): registration
    must not drift far from the identity (the patient may have moved a little between them)."""
    t1, t2 = real_volume(request, "sts_dicom_t1"), real_volume(request, "sts_dicom_t2")
    result = register_volumes(t1, t2, RegistrationConfig(levels_mm=TEST_LEVELS))
    mean, worst = _tre(result, WorldTransform.identity(), t1)
    print(f"\nSTS_001 T2 → T1: {mean:.2f} mm mean, {worst:.2f} mm max from the identity; {result.verdict.summary}")
    assert mean < 2.0 and worst < 3.0
    assert result.plausible and result.verdict.checks["dice"] > 0.9
