"""MRI preparation for HARM3-Fusion: reorientation, world-coordinate resampling onto the T1-pre
grid, region of interest, intensity normalisation, and the inverse mapping back to the voxels."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.mri.prep import (MriPrepConfig, crop_to_volume, prepare_mri, reorient, sample_on_grid)


def _vol(data, affine):
    return SimpleNamespace(data=np.asarray(data, np.float32), affine=np.asarray(affine, float))


def _world(affine, shape):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def linear(world):
    return 2.0 * world[..., 0] - 1.5 * world[..., 1] + 0.5 * world[..., 2] + 10.0


def _linear_volume(shape, affine):
    return _vol(linear(_world(affine, shape)).reshape(shape), affine)


# an oblique-free but permuted and flipped scanner grid: data axis 0 runs along world x (right→left
# reversed), axis 1 along world z, axis 2 along world y
PERMUTED = np.array([[0.0, 2.0, 0.0, -20.0],
                     [0.0, 0.0, 1.5, -30.0],
                     [-1.0, 0.0, 0.0, 25.0],
                     [0.0, 0.0, 0.0, 1.0]])


def test_reorient_keeps_world_points_and_gives_ras():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(30, 12, 20))
    out, affine = reorient(data, PERMUTED, "RAS")
    # RAS for data[k, j, i]: k → +z (superior), j → −y (anterior), i → −x (right) in LPS world
    direction = np.sign(np.round(affine[:3, :3], 6))
    assert np.array_equal(direction, np.diag([1.0, -1.0, -1.0]))
    assert out.shape == (12, 20, 30)
    # every voxel keeps its world position and value
    old_world = _world(PERMUTED, data.shape)
    new_world = _world(affine, out.shape)
    old_sorted = data.ravel()[np.lexsort(old_world.T)]
    new_sorted = out.ravel()[np.lexsort(new_world.T)]
    np.testing.assert_allclose(np.sort(old_world, axis=0), np.sort(new_world, axis=0))
    np.testing.assert_array_equal(old_sorted, new_sorted)
    lps, aff_lps = reorient(data, PERMUTED, "LPS")
    assert np.array_equal(np.sign(np.round(aff_lps[:3, :3], 6)), np.eye(3))


def test_sample_on_grid_is_exact_for_linear_fields_in_world_coordinates():
    vol = _linear_volume((30, 12, 20), PERMUTED)
    grid = np.diag([0.7, 1.1, 0.9, 1.0])
    grid[:3, 3] = [-18.0, -28.0, -2.0]
    sampled = sample_on_grid(vol.data, vol.affine, grid, (10, 12, 12))
    expected = linear(_world(grid, (10, 12, 12))).reshape(10, 12, 12)
    np.testing.assert_allclose(sampled, expected, rtol=1e-4, atol=1e-3)


def _two_grids():
    t1_affine = np.diag([3.0, 1.0, 1.0, 1.0])
    t1_affine[:3, 3] = [-30.0, -40.0, -40.0]
    t2_affine = np.array([[0.0, 0.0, 1.5, -30.0], [0.0, 1.5, 0.0, -40.0], [-3.0, 0.0, 0.0, 38.0], [0, 0, 0, 1.0]])
    return t1_affine, t2_affine


def test_prepare_puts_all_volumes_on_the_t1_pre_grid():
    t1_affine, t2_affine = _two_grids()
    volumes = {"t1_pre": _linear_volume((20, 80, 80), t1_affine), "t1_post": _linear_volume((20, 80, 80), t1_affine),
               "t2_pre": _linear_volume((27, 54, 40), t2_affine), "t2_post": None}
    cfg = MriPrepConfig(size=(8, 16, 16), clip_percentiles=(0.0, 100.0), centre_extent_mm=(24.0, 32.0, 32.0))
    prepared = prepare_mri(volumes, None, cfg)
    assert prepared.images.shape == (4, 8, 16, 16) and prepared.images.dtype == np.float32
    assert prepared.present == (True, True, True, False)
    assert not prepared.images[3].any()
    assert prepared.prep.roi_source == "centre"
    # undo the z-score: each crop must be the linear field at the crop's world points
    expected = linear(_world(prepared.prep.crop_affine, (8, 16, 16))).reshape(8, 16, 16)
    for n, seq in enumerate(("t1_pre", "t1_post", "t2_pre")):
        st = prepared.prep.intensity[seq]
        raw = prepared.images[n] * st["sd"] + st["mean"]
        np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=2e-2)
    # the crop box is centred on the T1 volume with the asked extent
    centre_world = t1_affine[:3, :3] @ ((np.array([20, 80, 80]) - 1) / 2) + t1_affine[:3, 3]
    crop_centre = prepared.prep.crop_affine[:3, :3] @ ((np.array([8, 16, 16]) - 1) / 2) + prepared.prep.crop_affine[:3, 3]
    np.testing.assert_allclose(crop_centre, centre_world, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.diag(prepared.prep.crop_affine[:3, :3])) * [8, 16, 16], [24.0, 32.0, 32.0])


def test_roi_from_mask_and_intensity_normalisation():
    t1_affine, _ = _two_grids()
    rng = np.random.default_rng(1)
    data = rng.normal(100, 10, (20, 80, 80))
    data[0, 0, 0] = 1e6                                  # a spike the clip must remove
    mask = np.zeros((20, 80, 80), np.uint8)
    mask[8:12, 30:46, 40:50] = 1
    cfg = MriPrepConfig(size=(8, 16, 16), margin_mm=4.0, min_extent_mm=(0.0, 0.0, 0.0))
    prepared = prepare_mri({"t1_pre": _vol(data, t1_affine)}, _vol(mask, t1_affine), cfg)
    prep = prepared.prep
    assert prep.roi_source == "mask"
    # box = mask's voxel-edge extent (4×3, 16×1, 10×1 mm) plus 4 mm each side
    extent = np.abs(np.diag(prep.crop_affine[:3, :3])) * np.array([8, 16, 16])
    np.testing.assert_allclose(extent, [12 + 8, 16 + 8, 10 + 8], atol=1e-6)
    assert prepared.tumour_mask is not None and prepared.tumour_mask.shape == (8, 16, 16)
    frac = prepared.tumour_mask.mean()
    expected_frac = (12 * 16 * 10) / (20 * 24 * 18)
    assert abs(frac - expected_frac) < 0.08
    st = prep.intensity["t1_pre"]
    assert st["high"] < 1000                             # spike clipped by the 99.5th percentile
    assert abs(prepared.images[0].mean()) < 0.5 and 0.5 < prepared.images[0].std() < 1.5


def test_crop_to_volume_inverts_the_crop_mapping():
    t1_affine, t2_affine = _two_grids()
    volumes = {"t1_pre": _linear_volume((20, 80, 80), t1_affine)}
    mask = np.zeros((20, 80, 80), np.uint8)
    mask[8:12, 30:46, 40:50] = 1
    prepared = prepare_mri(volumes, _vol(mask, t1_affine), MriPrepConfig(size=(8, 16, 16), margin_mm=6.0,
                                                                         min_extent_mm=(0.0, 0.0, 0.0)))
    prep = prepared.prep
    crop_map = linear(_world(prep.crop_affine, (8, 16, 16))).reshape(8, 16, 16)
    for target_affine, shape in ((t1_affine, (20, 80, 80)), (t2_affine, (27, 54, 40))):
        target = _vol(np.zeros(shape), target_affine)
        back = crop_to_volume(crop_map, prep, target)
        assert back.shape == shape and back.dtype == np.float32
        # inside the crop box (away from its border) the field is reproduced; outside it is zero
        world = _world(target_affine, shape)
        crop_idx = (world - prep.crop_affine[:3, 3]) @ np.linalg.inv(prep.crop_affine[:3, :3]).T
        inside = np.all((crop_idx >= 0) & (crop_idx <= np.array([7, 15, 15])), axis=1)
        outside = np.any((crop_idx < -1) | (crop_idx > np.array([8, 16, 16])), axis=1)
        assert inside.sum() > 50
        np.testing.assert_allclose(back.ravel()[inside], linear(world)[inside], rtol=1e-4, atol=2e-2)
        assert not back.ravel()[outside].any()
    # a coarser map spanning the same box lands in the same place (e.g. a CAM at feature resolution)
    coarse = np.zeros((4, 8, 8), np.float32)
    coarse[1:3, 2:6, 2:6] = 1.0
    back = crop_to_volume(coarse, prep, _vol(np.zeros((20, 80, 80)), t1_affine))
    assert (back[mask > 0] > 0.5).mean() > 0.6
    assert back[mask == 0].sum() < back[mask > 0].sum() * 2


def test_bad_inputs_are_one_line_errors():
    t1_affine, _ = _two_grids()
    with pytest.raises(Harm3Error, match="no MRI volume"):
        prepare_mri({"t1_pre": None}, None)
    with pytest.raises(Harm3Error, match="unknown MRI sequence"):
        prepare_mri({"flair": _vol(np.zeros((4, 4, 4)), t1_affine)}, None)
    with pytest.raises(Harm3Error, match="orientation"):
        reorient(np.zeros((2, 2, 2)), np.eye(4), "RAX")
