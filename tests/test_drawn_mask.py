"""A tumour mask painted in the viewer counts like one read from a file (issue 12): it is put back
on its volume's voxels, measured, reported, and refused for another case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.mri.drawn_mask import DRAWN, drawn_mask
from napari_harm3.core.session import CaseSession
from napari_harm3.core.synth.cohort import make_case


@pytest.fixture(scope="module")
def case_path(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("drawn") / "DRAWN-1", seed=31, case_id="DRAWN-1")


def box(shape, lo, hi):
    labels = np.zeros(shape, np.uint8)
    labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 1
    return labels


def test_a_flipped_display_grid_maps_back_exactly(case_path):
    session = CaseSession()
    volume = session.open(case_path).volumes.volumes["t1_pre"]
    labels = box(volume.shape, (3, 10, 12), (7, 20, 30))
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, volume.shape[1] - 1  # rows reversed, as the viewer reorients a flipped scan
    mask = drawn_mask(labels[:, ::-1, :], volume.affine @ flip, volume)
    assert mask.shape == volume.shape and np.array_equal(mask.data, labels)
    assert np.allclose(mask.affine, volume.affine) and mask.metadata["origin"] == DRAWN


def test_the_drawn_mask_is_measured_reported_and_belongs_to_its_case(case_path, tmp_path):
    session = CaseSession()
    opened = session.open(case_path)
    volume = opened.volumes.volumes["t1_post"]
    changed = []
    session.masks_changed.connect(changed.append)
    labels = box(volume.shape, (2, 5, 5), (6, 15, 25))
    response = session.set_drawn_mask("t1_post", labels, volume.affine, case_ref=opened.ref)
    assert changed == [opened.ref]
    post = [s for s in response.sizes() if s.sequence == "t1_post"]
    assert len(post) == 1 and post[0].mask_origin == DRAWN
    voxel_ml = abs(np.linalg.det(np.asarray(volume.affine)[:3, :3])) / 1000.0
    assert post[0].voxels == int(labels.sum()) and post[0].volume_ml == pytest.approx(labels.sum() * voxel_ml, rel=1e-6)
    pdf, js = session.export_report(tmp_path / "r.pdf")
    sizes = [s for r in json.loads(js.read_text())["tumour_response"]["responses"] for s in (r["pre"], r["post"]) if s]
    assert any(s["sequence"] == "t1_post" and s["mask_origin"] == DRAWN for s in sizes)
    with pytest.raises(Harm3Error, match="empty"):
        session.set_drawn_mask("t1_post", np.zeros_like(labels), volume.affine)
    other = session.open(case_path)  # the same files opened again: another case identity
    with pytest.raises(Harm3Error, match="no longer open"):
        session.set_drawn_mask("t1_post", labels, volume.affine, case_ref=opened.ref)
    assert other.ref != opened.ref
