"""ITK transform files ↔ world (z, y, x) matrices, and the case's volume seam that applies them."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.case import Case, load_case, save_case
from napari_harm3.core.io.case_checks import validate_case
from napari_harm3.core.io.mri import Volume, write_nifti
from napari_harm3.core.mri.case_volumes import read_case_volumes
from napari_harm3.core.mri.transforms import WorldTransform, read_transform, write_transform


def _euler(angles_deg=(4.0, -7.0, 15.0), translation=(12.0, -20.0, 5.0), center=(10.0, 30.0, -40.0)):
    transform = sitk.Euler3DTransform()
    transform.SetCenter(center)
    transform.SetRotation(*np.radians(angles_deg))
    transform.SetTranslation(translation)
    return transform


def test_an_itk_rigid_file_maps_points_as_simpleitk_does(tmp_path):
    transform = _euler()
    path = tmp_path / "rigid.tfm"
    sitk.WriteTransform(transform, str(path))
    world = read_transform(path)
    points_xyz = np.random.default_rng(1).uniform(-150, 150, (20, 3))
    expected_xyz = np.array([transform.TransformPoint(tuple(p)) for p in points_xyz])
    got_zyx = world.apply(points_xyz[:, ::-1])
    np.testing.assert_allclose(got_zyx[:, ::-1], expected_xyz, atol=1e-9)
    assert world.kind == "Euler3DTransform"
    assert world.rotation_degrees == pytest.approx(np.degrees(np.arccos((np.trace(
        np.array(transform.GetMatrix()).reshape(3, 3)) - 1) / 2)), abs=1e-6)


def test_written_transforms_read_back_and_compose(tmp_path):
    a = read_transform(_write(tmp_path / "a.tfm", _euler()))
    b = WorldTransform(np.array([[1, 0, 0, 3.0], [0, 0.98, -0.2, 1], [0, 0.2, 0.98, -2], [0, 0, 0, 1]]))
    path = write_transform(a.then(b), tmp_path / "ab.tfm")
    back = read_transform(path)
    p = np.array([[5.0, -3.0, 40.0]])
    np.testing.assert_allclose(back.apply(p), b.apply(a.apply(p)), atol=1e-9)
    assert not list(tmp_path.glob("*.partial*"))


def _write(path, transform):
    sitk.WriteTransform(transform, str(path))
    return path


def _bspline():
    grid = sitk.Image([16, 16, 16], sitk.sitkFloat32)
    grid.SetSpacing((25.0, 25.0, 25.0))
    grid.SetOrigin((-200.0, -200.0, -200.0))
    transform = sitk.BSplineTransformInitializer(grid, [4, 4, 4])
    transform.SetParameters(tuple(np.random.default_rng(2).uniform(-5, 5, len(transform.GetParameters()))))
    return transform


@pytest.mark.parametrize("make, words", [(_bspline, "not linear"), (sitk.Euler2DTransform, "2-D")])
def test_non_linear_and_2d_transforms_are_refused(tmp_path, make, words):
    transform = make()
    path = _write(tmp_path / "t.tfm", transform)
    with pytest.raises(InputFileError, match=words):
        read_transform(path)


def test_a_file_of_another_kind_is_one_line(tmp_path):
    path = tmp_path / "t.tfm"
    path.write_text("this is not a transform\n")
    with pytest.raises(InputFileError, match="not an ITK transform file") as info:
        read_transform(path)
    assert "\n" not in str(info.value)


def _volume(path, shape=(6, 10, 12), affine=None):
    affine = np.diag([3.0, 1.5, 1.0, 1.0]) if affine is None else affine
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return write_nifti(Volume(data, affine, path.name, str(path)), path)


def test_the_seam_places_a_registered_volume_in_the_reference_frame(tmp_path):
    _volume(tmp_path / "t1_pre.nii.gz")
    _volume(tmp_path / "t1_post.nii.gz")
    mask = np.zeros((6, 10, 12), np.uint8)
    mask[2:4, 3:6, 4:8] = 1
    write_nifti(Volume(mask, np.diag([3.0, 1.5, 1.0, 1.0]), "m", "m"), tmp_path / "m_post.nii.gz")
    rigid = _euler(translation=(4.0, 2.0, -6.0))
    _write(tmp_path / "post.tfm", rigid)
    case = Case("C1", tmp_path, mri={"t1_pre": tmp_path / "t1_pre.nii.gz", "t1_post": tmp_path / "t1_post.nii.gz"},
                masks={"t1_post": tmp_path / "m_post.nii.gz"}, transforms={"t1_post": tmp_path / "post.tfm"})
    manifest = save_case(case, tmp_path / "case.yaml")
    loaded = load_case(manifest)
    assert loaded.transforms == {"t1_post": (tmp_path / "post.tfm").resolve()}
    assert "transforms:" in manifest.read_text() and "post.tfm" in manifest.read_text()
    seen = read_case_volumes(loaded)
    assert seen.registered("t1_post") and not seen.registered("t1_pre") and seen.reference == "t1_pre"
    post = seen.volumes["t1_post"]
    # a voxel of t1_post, shown at reference point q, must be the voxel T maps q onto
    index = np.array([[3.0, 4.0, 5.0]])
    q = post.index_to_world(index)
    own_world = seen.original_affines["t1_post"][:3, :3] @ index[0] + seen.original_affines["t1_post"][:3, 3]
    expected_xyz = np.array(rigid.TransformPoint(tuple(q[0][::-1])))
    np.testing.assert_allclose(own_world[::-1], expected_xyz, atol=1e-6)
    np.testing.assert_allclose(seen.masks["t1_post"].affine, post.affine)
    np.testing.assert_array_equal(seen.volumes["t1_pre"].affine, np.diag([3.0, 1.5, 1.0, 1.0]))


def test_manifest_transform_problems_are_listed(tmp_path):
    _volume(tmp_path / "t1_pre.nii.gz")
    (tmp_path / "junk.tfm").write_text("junk")
    case = Case("C2", tmp_path, mri={"t1_pre": tmp_path / "t1_pre.nii.gz"},
                transforms={"t2_post": tmp_path / "nowhere.tfm", "t1_post": tmp_path / "junk.tfm"})
    problems = validate_case(case)
    assert any("transforms.t2_post: not found" in p for p in problems)
    assert any("transforms.t2_post: the case has no t2_post volume" in p for p in problems)
    assert any("transforms.t1_post: cannot be read" in p and "not an ITK transform" in p for p in problems)
    with pytest.raises(InputFileError):
        read_case_volumes(case)


def test_the_reference_takes_no_transform(tmp_path):
    (tmp_path / "case.yaml").write_text("case_id: X\nmri: {t1_pre: a.nii.gz}\ntransforms: {t1_pre: a.tfm}\n")
    with pytest.raises(InputFileError, match="transforms.t1_pre"):
        load_case(tmp_path / "case.yaml")
