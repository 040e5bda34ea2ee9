"""``harm3 register`` on phantoms with known motion: the files it writes, and bad input in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from napari_harm3.core.cli.main import main
from napari_harm3.core.io.mri import Volume, read_volume, write_nifti
from napari_harm3.core.mri.registration import RegistrationConfig, register_volumes
from napari_harm3.core.mri.registration_images import target_registration_error, volume_foreground_points
from napari_harm3.core.mri.transforms import WorldTransform, read_transform
from napari_harm3.core.synth.cohort import make_case
from napari_harm3.core.synth.motion import moved_volume, rigid_motion

QUICK = ["--levels", "8,4"]


@pytest.fixture(scope="module")
def moved_case(tmp_path_factory):
    """A phantom whose patient lies differently at the post-treatment session (no slide)."""
    return make_case(tmp_path_factory.mktemp("reg") / "case", 101, motion=True, slide=False)


def _truth(case) -> WorldTransform:
    return WorldTransform(np.array(case.synthetic["motion"]["t1_pre_to_post_zyx"]))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("harm3: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_register_writes_the_itk_transform_and_its_record(moved_case, tmp_path, capsys):
    out = tmp_path / "post_to_pre.tfm"
    fixed, moving = moved_case.mri["t1_pre"], moved_case.mri["t1_post"]
    assert main(["register", str(fixed), str(moving), "--out", str(out)] + QUICK) == 0
    assert "plausible" in capsys.readouterr().out
    transform = read_transform(out)
    assert transform.kind == "Euler3DTransform"                           # a rigid result says so
    errors = target_registration_error(transform, _truth(moved_case), volume_foreground_points(read_volume(fixed)))
    print(f"\nphantom T1-post → T1-pre at 8, 4 mm: TRE mean {errors.mean():.2f} mm, max {errors.max():.2f} mm")
    assert errors.mean() < 1.5 and errors.max() < 2.5
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["verdict"]["plausible"] is True and record["accepted_implausible"] is False
    assert record["final_metric"] < record["unregistered_metric"]
    assert record["iterations"] == sum(record["iterations_per_level"]) > 0 and record["seconds"] > 0
    assert record["parameters"]["mode"] == "rigid" and record["parameters"]["levels_mm"] == [8.0, 4.0]
    np.testing.assert_allclose(record["matrix_zyx"], transform.matrix, atol=1e-6)
    assert not list(tmp_path.glob("*.partial"))
    # never overwritten silently
    assert main(["register", str(fixed), str(moving), "--out", str(out)] + QUICK) == 2
    assert "exists" in _one_error_line(capsys)


def test_an_implausible_result_is_refused_and_nothing_is_written(moved_case, tmp_path, capsys):
    """Turned 60° (beyond repositioning between sessions): found, but refused as implausible."""
    pre = read_volume(moved_case.mri["t1_pre"])
    turned = moved_volume(pre, rigid_motion((0.0, 0.0, 1.0), 60.0, (0.0, 0.0, 0.0)))
    path = write_nifti(dataclasses.replace(turned, source=""), tmp_path / "turned.nii.gz")
    out = tmp_path / "t.tfm"
    assert main(["register", str(moved_case.mri["t1_pre"]), str(path), "--out", str(out)] + QUICK) == 2
    line = _one_error_line(capsys)
    assert "implausible" in line and "rotation" in line and "nothing written" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["turned.nii.gz"]
    assert main(["register", str(moved_case.mri["t1_pre"]), str(path), "--out", str(out), "--accept-implausible"]
                + QUICK) == 0
    assert "harm3: warning:" in capsys.readouterr().err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["accepted_implausible"] is True and record["verdict"]["plausible"] is False
    assert read_transform(out).rotation_degrees > 45


def test_a_moving_image_that_does_not_overlap_is_one_line(moved_case, tmp_path, capsys):
    pre = read_volume(moved_case.mri["t1_pre"])
    far = pre.affine.copy()
    far[0, 3] += 600.0                                                  # 600 mm up: another frame of reference
    path = write_nifti(Volume(pre.data, far, "far", ""), tmp_path / "far.nii.gz")
    out = tmp_path / "far.tfm"
    assert main(["register", str(moved_case.mri["t1_pre"]), str(path), "--out", str(out)] + QUICK) == 2
    line = _one_error_line(capsys)
    assert "does not overlap" in line and "--init moments" in line
    assert not out.exists() and not out.with_suffix(".json").exists()
    # aligned by content instead, the 600 mm come back
    assert main(["register", str(moved_case.mri["t1_pre"]), str(path), "--out", str(out), "--init", "moments"]
                + QUICK) == 0
    np.testing.assert_allclose(read_transform(out).matrix[:3, 3], [600.0, 0.0, 0.0], atol=1.0)


def test_bad_options_and_files_are_one_line(moved_case, tmp_path, capsys):
    fixed, moving = str(moved_case.mri["t1_pre"]), str(moved_case.mri["t1_post"])
    cases = [
        ([fixed, moving, "--out", str(tmp_path / "t.json")], "transform file name ends in"),
        ([fixed, str(tmp_path / "nowhere.nii.gz"), "--out", str(tmp_path / "t.tfm")], "no such file"),
    ]
    empty = write_nifti(Volume(np.zeros((24, 96, 96), np.uint8), read_volume(fixed).affine, "m", ""), tmp_path / "m.nii.gz")
    cases.append(([fixed, moving, "--out", str(tmp_path / "t.tfm"), "--fixed-mask", str(empty)], "fixed mask"))
    for argv, words in cases:
        assert main(["register"] + argv + QUICK) == 2, argv
        assert words in _one_error_line(capsys)
    assert main(["register", fixed, moving, "--out", str(tmp_path / "t.tfm"), "--levels", "8,x"]) == 2
    assert "--levels" in _one_error_line(capsys)
    assert not (tmp_path / "t.tfm").exists()


def test_a_fixed_mask_limits_the_comparison(moved_case, tmp_path):
    """A mask over the central part of T1-pre: the metric is sampled there only; still found."""
    pre = read_volume(moved_case.mri["t1_pre"])
    mask = np.zeros(pre.shape, np.uint8)
    mask[4:20, 16:80, 16:80] = 1
    path = write_nifti(Volume(mask, pre.affine, "centre", ""), tmp_path / "centre.nii.gz")
    out = tmp_path / "masked.tfm"
    assert main(["register", str(moved_case.mri["t1_pre"]), str(moved_case.mri["t1_post"]), "--out", str(out),
                 "--fixed-mask", str(path)] + QUICK) == 0
    assert json.loads(out.with_suffix(".json").read_text())["fixed_mask"] == str(path)
    errors = target_registration_error(read_transform(out), _truth(moved_case), volume_foreground_points(pre))
    assert errors.mean() < 2.0


def test_bounds_decide_the_verdict(moved_case):
    """The same registration judged with tighter bounds: implausible, with the reason."""
    pre, post = read_volume(moved_case.mri["t1_pre"]), read_volume(moved_case.mri["t1_post"])
    strict = register_volumes(pre, post, RegistrationConfig(levels_mm=(8.0, 4.0), max_rotation_deg=5.0, max_shift_mm=5.0))
    assert not strict.plausible
    assert any("rotation" in r for r in strict.verdict.reasons) and any("moved" in r for r in strict.verdict.reasons)
    assert strict.verdict.summary.startswith("implausible: ")


def test_affine_mode_writes_an_affine_transform(moved_case, tmp_path):
    out = tmp_path / "affine.tfm"
    assert main(["register", str(moved_case.mri["t1_pre"]), str(moved_case.mri["t1_post"]), "--out", str(out),
                 "--mode", "affine"] + QUICK) == 0
    transform = read_transform(out)
    assert transform.kind == "AffineTransform"
    scales = np.linalg.svd(transform.matrix[:3, :3], compute_uv=False)
    assert np.all(np.abs(scales - 1.0) < 0.05)                         # the motion is rigid: near-unit scales
    errors = target_registration_error(transform, _truth(moved_case), volume_foreground_points(read_volume(moved_case.mri["t1_pre"])))
    assert errors.mean() < 2.0
