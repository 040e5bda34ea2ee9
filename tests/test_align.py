"""``harm3 align`` on phantoms with motion between sessions: transforms found, composed, recorded,
kept on a rerun; cohorts on Dask; bad manifests in one line; HARM3-Fusion reading through them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from napari_harm3.core.cli.main import main
from napari_harm3.core.io.case import load_case
from napari_harm3.core.io.cohort import load_cohort
from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.case_volumes import read_case_volumes
from napari_harm3.core.mri.prep import MriPrepConfig, crop_to_volume, sample_on_grid
from napari_harm3.core.mri.registration import RegistrationConfig
from napari_harm3.core.mri.registration_case import align_case
from napari_harm3.core.mri.registration_images import target_registration_error, volume_foreground_points
from napari_harm3.core.mri.transforms import WorldTransform, read_transform
from napari_harm3.core.synth.cohort import make_case, make_cohort
from napari_harm3.core.train.harm3_data import sample_from_case

QUICK = ["--levels", "8,4"]
TIGHT = MriPrepConfig(size=(16, 32, 32), margin_mm=3.0, min_extent_mm=(16.0, 20.0, 20.0))


def _truth(case, sequence: str) -> WorldTransform:
    if sequence == "t2_pre":
        return WorldTransform.identity()
    return WorldTransform(np.array(case.synthetic["motion"]["t1_pre_to_post_zyx"]))


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """A non-responder (the tumour keeps its size) with motion, aligned by the command line."""
    root = tmp_path_factory.mktemp("align")
    original = make_case(root / "case", 202, motion=True, slide=False, latents={"m": -2.0})
    folder = root / "aligned"
    shutil.copytree(original.root, folder)
    assert main(["align", str(folder)] + QUICK) == 0
    return load_case(folder), load_case(original.root)


def test_align_finds_composes_and_records_the_transforms(aligned):
    case, _ = aligned
    assert set(case.transforms) == {"t1_post", "t2_pre", "t2_post"}
    points = volume_foreground_points(read_volume(case.mri["t1_pre"]))
    for sequence, path in case.transforms.items():
        assert path == case.root / "transforms" / f"{sequence}_to_t1_pre.tfm"
        errors = target_registration_error(read_transform(path), _truth(case, sequence), points)
        record = json.loads(path.with_suffix(".json").read_text())
        print(f"\n{sequence}: TRE mean {errors.mean():.2f} mm, max {errors.max():.2f} mm ({record['seconds']:.1f} s)")
        assert errors.mean() < 2.0 and errors.max() < 3.0
        assert record["verdict"]["plausible"] and record["reference"] == "t1_pre"
    t2_post = json.loads(case.transforms["t2_post"].with_suffix(".json").read_text())
    assert t2_post["registered_onto"] == "t2_pre"                      # same contrast, then composed
    step, t2_pre = np.array(t2_post["step_matrix_zyx"]), read_transform(case.transforms["t2_pre"]).matrix
    np.testing.assert_allclose(step @ t2_pre, read_transform(case.transforms["t2_post"]).matrix, atol=1e-6)
    manifest = yaml.safe_load(case.manifest.read_text())
    assert manifest["transforms"]["t1_post"] == "transforms/t1_post_to_t1_pre.tfm"
    assert manifest["labels"] == load_case(case.manifest).labels.as_dict()


def test_a_rerun_keeps_what_is_done_and_force_redoes_it(aligned, tmp_path, capsys):
    case, _ = aligned
    stamps = {s: p.stat().st_mtime_ns for s, p in case.transforms.items()}
    capsys.readouterr()
    assert main(["align", str(case.root)] + QUICK) == 0
    assert capsys.readouterr().out.count(" kept") == 3
    assert {s: p.stat().st_mtime_ns for s, p in case.transforms.items()} == stamps
    assert load_case(case.root).transforms == case.transforms
    copy = tmp_path / "copy"
    shutil.copytree(case.root, copy)
    (copy / "transforms" / "t2_pre_to_t1_pre.json").unlink()            # interrupted before its record
    outcome = align_case(copy, RegistrationConfig(levels_mm=(8.0,), search_step_deg=0.0))
    assert [s.status for s in outcome.steps] == ["kept", "registered", "registered"]   # T2-post follows T2-pre
    forced = align_case(copy, RegistrationConfig(levels_mm=(8.0,), search_step_deg=0.0), force=True)
    assert [s.status for s in forced.steps] == ["registered"] * 3 and forced.ok


def test_the_seam_and_harm3_preparation_see_the_same_anatomy(aligned):
    """With the transforms, the post-treatment crops show the tumour where T1-pre has it, and a
    map made on the crop (what Grad-CAM gives) lands on each volume's own tumour voxels."""
    case, unaligned = aligned
    with_t, without = sample_from_case(case, TIGHT, use_slide=False), sample_from_case(unaligned, TIGHT, use_slide=False)
    assert with_t.volumes["t1_post"].metadata["registration"].endswith("t1_post_to_t1_pre.tfm")
    seen = read_case_volumes(case)
    raw = {s: read_volume(case.mri[s]) for s in ("t1_post", "t2_post")}
    own_masks = {s: np.asarray(seen.masks[s].data) > 0 for s in raw}          # each on its scan's own voxels
    pre_tumour = with_t.tumour_mask.astype(np.float32)                    # the crop's T1-pre tumour
    shares = {}
    for label, sample in (("aligned", with_t), ("not aligned", without)):
        for s in raw:
            crop = sample_on_grid(own_masks[s].astype(np.float32), sample.volumes[s].affine, sample.prep.crop_affine,
                                  sample.prep.crop_shape) >= 0.5
            dice = 2 * float((crop & with_t.tumour_mask).sum()) / (crop.sum() + with_t.tumour_mask.sum())
            back = crop_to_volume(pre_tumour, sample.prep, sample.volumes[s])     # crop map → volume voxels
            shares[label, s] = (dice, float(back[own_masks[s]].sum() / max(back.sum(), 1e-9)))
    print("\n" + ", ".join(f"{k[1]} {k[0]}: crop Dice {v[0]:.2f}, map inside {v[1]:.2f}" for k, v in shares.items()))
    for s in raw:
        assert shares["aligned", s][0] > 0.75 and shares["aligned", s][0] > shares["not aligned", s][0] + 0.3
        assert shares["aligned", s][1] > 0.8 and shares["aligned", s][1] > shares["not aligned", s][1] + 0.3


def test_a_cohort_runs_on_dask_and_a_bad_case_is_one_line(tmp_path, capsys):
    table = make_cohort(tmp_path / "cohort", 2, seed=9, motion=True, slide=False)
    broken = load_cohort(table).cases[1]
    broken.mri["t1_post"].write_bytes(b"not a nifti file")
    assert main(["align", str(table), "--workers", "2"] + QUICK) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("harm3: error:")]
    assert len(lines) == 2, captured.err                           # the case's line, then the summary
    assert lines[0].startswith("harm3: error: SYN-0002:") and "t1_post.nii.gz" in lines[0]
    assert "1 of 2 cases" in lines[1]
    good = load_cohort(table).cases[0]
    assert set(good.transforms) == {"t1_post", "t2_pre", "t2_post"} and "SYN-0001: T1-post registered" in captured.out
    assert not load_cohort(table).cases[1].transforms


@pytest.mark.parametrize("problem, words", [
    ("2d", "2-D"), ("nowhere", "no such transform file"), ("junk", "not an ITK transform file")])
def test_a_manifest_transform_that_cannot_be_used_is_one_line(aligned, tmp_path, capsys, problem, words):
    """The manifest lists its own T2-pre transform: 2-D, missing, or not a transform at all."""
    case, _ = aligned
    folder = tmp_path / "case"
    shutil.copytree(case.root, folder)
    shutil.rmtree(folder / "transforms")
    bad = folder / "theirs.tfm"
    if problem == "2d":
        sitk.WriteTransform(sitk.Euler2DTransform(), str(bad))
    elif problem == "junk":
        bad.write_text("#Insight Transform File V1.0\nnonsense\n")
    manifest = yaml.safe_load((folder / "case.yaml").read_text())
    manifest["transforms"] = {"t2_pre": "theirs.tfm"}
    (folder / "case.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    capsys.readouterr()
    assert main(["align", str(folder)] + QUICK) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harm3: error:")]
    assert len(err) == 1 and words in err[0] and "T2-pre" in err[0] and "T2-post" in err[0]
    after = load_case(folder)
    assert set(after.transforms) == {"t1_post", "t2_pre"} and after.transforms["t2_pre"] == bad
    assert main(["validate", str(folder)]) == 2                       # validate names it too
    assert "problem: transforms.t2_pre:" in capsys.readouterr().err
