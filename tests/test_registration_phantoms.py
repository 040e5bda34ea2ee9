"""Phantoms with motion between sessions: opt-in, recorded truthfully, the default files unchanged."""

from __future__ import annotations

import numpy as np
import yaml

from napari_harm3.core.cli.main import main
from napari_harm3.core.io.case_checks import validate_case
from napari_harm3.core.io.masks import read_mask
from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.transforms import WorldTransform
from napari_harm3.core.synth.cohort import make_case
from napari_harm3.core.synth.motion import random_rigid_motion, rigid_motion


def _centroid(mask) -> np.ndarray:
    index = np.argwhere(np.asarray(mask.data) > 0).astype(float)
    return mask.index_to_world(index).mean(axis=0)


def test_motion_is_opt_in_and_moves_only_the_post_session(tmp_path):
    still = make_case(tmp_path / "still", 303, slide=False, latents={"m": -2.0})
    moved = make_case(tmp_path / "moved", 303, slide=False, latents={"m": -2.0}, motion=True)
    assert "motion" not in still.synthetic and "motion" not in (still.manifest.read_text())
    for key in ("t1_pre", "t2_pre"):                                   # the reference session: untouched
        assert moved.mri[key].read_bytes() == still.mri[key].read_bytes()
    for key in ("t1_post", "t2_post"):
        assert moved.mri[key].read_bytes() != still.mri[key].read_bytes()
    motion = moved.synthetic["motion"]
    assert 10.0 <= motion["degrees"] <= 20.0 and 10.0 <= np.linalg.norm(motion["shift_zyx_mm"]) <= 20.0
    assert motion["sessions"] == {"pre": ["t1_pre", "t2_pre"], "post": ["t1_post", "t2_post"]}
    truth = WorldTransform(np.array(motion["t1_pre_to_post_zyx"]))
    assert abs(truth.rotation_degrees - motion["degrees"]) < 1e-3
    # the recorded transform is the truth in the registration convention: the tumour (which keeps
    # its centre when it shrinks) is found at T(centre) in both post-treatment scans
    centre = _centroid(read_mask(moved.masks["t1_pre"]))
    for key in ("t1_post", "t2_post"):
        found = _centroid(read_mask(moved.masks[key]))
        assert np.linalg.norm(found - truth.apply(centre[None])[0]) < 1.0, key
        assert np.linalg.norm(found - centre) > 5.0                        # it did move
    assert validate_case(moved) == [] and moved.slide is None


def test_harm3_synth_motion_on_the_command_line(tmp_path, capsys):
    assert main(["synth", "--n", "1", "--seed", "4", "--out", str(tmp_path / "c"), "--motion"]) == 0
    manifest = yaml.safe_load((tmp_path / "c" / "SYN-0001" / "case.yaml").read_text())
    assert len(manifest["synthetic"]["motion"]["t1_pre_to_post_zyx"]) == 4
    assert (tmp_path / "c" / "SYN-0001" / "slide" / "biopsy.tiff").is_file()


def test_a_moved_volume_is_the_original_seen_through_the_motion(tmp_path):
    from napari_harm3.core.synth.motion import moved_volume

    pre = read_volume(make_case(tmp_path / "c", 5, slide=False).mri["t1_pre"])
    motion = rigid_motion((0.2, 0.3, 1.0), 12.0, (3.0, -4.0, 5.0), centre_zyx=(0.0, 10.0, -5.0))
    moved = moved_volume(pre, motion)
    # the voxel at p of the moved image holds the original's value at motion⁻¹(p)
    index = np.array([[12, 50, 40]])
    p = moved.index_to_world(index)
    source = np.round(pre.world_to_index(motion.inverse().apply(p))).astype(int)[0]
    assert abs(float(moved.data[tuple(index[0])]) - float(pre.data[tuple(source)])) < 0.25 * float(pre.data.std())
    rng = np.random.default_rng(0)
    angles = [random_rigid_motion(rng)[0].rotation_degrees for _ in range(50)]
    assert 10.0 <= min(angles) and max(angles) <= 20.0
