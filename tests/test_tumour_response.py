"""Tumour response: volumes and longest axial diameters against the phantoms' analytic tumours,
the real STS_001 RTSTRUCT volumes, oblique/sagittal grids, and propagation through a transform."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import real_file
from napari_harm3.core.io.masks import LabelVolume
from napari_harm3.core.mri.case_volumes import align
from napari_harm3.core.mri.transforms import WorldTransform
from napari_harm3.core.mri.tumour_response import (longest_axial_diameter, measure_response, measure_tumour,
                                                   propagate_mask, tumour_label)
from napari_harm3.core.synth.latent import seed_streams
from napari_harm3.core.synth.mri_phantom import MRI_SIZES, Grid, TumourShape, generate_mri, random_tumour, volume_ratio


def ellipsoid(centre=(0.0, -12.0, 17.0), semi_axes=(18.0, 12.0, 14.0)) -> TumourShape:
    """The phantom's tumour class without its wobble: an exact ellipsoid."""
    return TumourShape(centre, semi_axes, np.array([[1.0, 0.0, 0.0]]), np.zeros(1), np.zeros(1))


def mask_on(affine, shape, tumour: TumourShape, scale: float = 1.0) -> np.ndarray:
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3).astype(float)
    world = index @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    return tumour.inside(world[:, 0], world[:, 1], world[:, 2], scale).reshape(shape)


def labels(mask, affine, name="tumour", **metadata) -> LabelVolume:
    return LabelVolume(data=np.asarray(mask, np.uint8), affine=np.asarray(affine, float), name=name, source="memory",
                       metadata=metadata, label_names={1: name})


def ellipse_section_diameter(tumour: TumourShape, z: float) -> float:
    """Longest in-plane diameter of an ellipsoid's axial section at world z."""
    az, ay, ax = tumour.semi_axes
    u = (z - tumour.centre[0]) / az
    return 0.0 if abs(u) >= 1 else 2.0 * max(ay, ax) * np.sqrt(1.0 - u * u)


def wobbly_volume_mm3(tumour: TumourShape, scale: float = 1.0, n: int = 200_000) -> float:
    """V = abc/3 ∮ R(ω)³ dω for the phantom's star-shaped tumour (quadrature on a Fibonacci sphere)."""
    k = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / n), np.pi * (1 + 5 ** 0.5) * k
    u = np.stack([np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1)
    wobble = sum(w * np.cos(3.0 * (u @ d) + p) for d, w, p in zip(tumour.directions, tumour.weights, tumour.phases))
    radius = (1.0 + 0.15 * wobble / np.sqrt(len(tumour.weights))) * scale
    a, b, c = tumour.semi_axes
    return a * b * c / 3.0 * 4.0 * np.pi * float(np.mean(radius ** 3))


@pytest.mark.parametrize("grid", [MRI_SIZES["small"].t1, MRI_SIZES["small"].t2, MRI_SIZES["demo"].t1],
                         ids=["small-T1", "small-T2", "demo-T1"])
def test_ellipsoid_volume_and_diameter_match_the_analytic_shape(grid):
    tumour = ellipsoid()
    size = measure_tumour(labels(mask_on(grid.affine, grid.shape, tumour), grid.affine), "t1_pre")
    analytic_ml = 4.0 / 3.0 * np.pi * np.prod(tumour.semi_axes) / 1000.0
    assert size.volume_ml == pytest.approx(analytic_ml, rel=0.02)
    # the largest section the grid samples, and a voxel of tolerance: [D - h, D + h·√2]
    z = grid.affine[0, 3] + grid.spacing[0] * np.arange(grid.shape[0])
    expected = max(ellipse_section_diameter(tumour, zk) for zk in z)
    h = grid.spacing[1]
    assert expected - h <= size.longest_axial_diameter_mm <= expected + h * np.sqrt(2)
    assert size.sections == "own slices" and size.section_z_mm == pytest.approx(z[np.argmin(abs(z))], abs=grid.spacing[0])
    ends = np.array(size.diameter_endpoints_mm)
    assert np.linalg.norm(ends[0, 1:] - ends[1, 1:]) == pytest.approx(size.longest_axial_diameter_mm)


def test_axial_means_the_patient_axis_for_oblique_and_sagittal_grids():
    tumour = ellipsoid()
    # oblique axial: slices tilted 30° about the left-right axis (k still closest to S-I)
    angle = np.radians(30.0)
    tilt = np.eye(4)
    tilt[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    grid = Grid((40, 96, 96), (2.0, 1.0, 1.0))
    oblique = tilt @ grid.affine
    d_oblique, _, _, how = longest_axial_diameter(mask_on(oblique, grid.shape, tumour), oblique)
    assert how == "own slices" and 28.0 - 1.0 <= d_oblique <= 28.0 + 1.5  # x semi-axis 14 mm, unchanged by the tilt
    # sagittal acquisition: slices along x (2 mm), rows along -z, columns along y; resliced axially
    sagittal = np.array([[0, -1.0, 0, 40], [0, 0, 1.0, -60], [2.0, 0, 0, -30], [0, 0, 0, 1]])
    mask = mask_on(sagittal, (30, 90, 110), tumour)
    d_sagittal, z, _, how = longest_axial_diameter(mask, sagittal)
    assert how == "axial reslice"
    # x is sampled every 2 mm, so several sections near the centre tie; the first is kept
    assert ellipse_section_diameter(tumour, z) - 2.0 <= d_sagittal <= ellipse_section_diameter(tumour, z) + 2.0 * np.sqrt(2)
    assert abs(z) <= 3.0
    size = measure_tumour(labels(mask, sagittal), "t2_pre")
    assert size.volume_ml == pytest.approx(4.0 / 3.0 * np.pi * 18 * 12 * 14 / 1000.0, rel=0.03)


def test_phantom_response_follows_the_latent_shrinkage():
    """generate_mri's own masks: the pre tumour's quadrature volume, the post one shrunk by
    volume_ratio(m), and the % change the latent response m implies."""
    seed, m = 11, 0.4
    scans = generate_mri(seed_streams(seed)["mri"], m, size="small")
    _, tumour_seed, *_ = seed_streams(seed)["mri"].spawn(6)                   # generate_mri's own stream split
    tumour = random_tumour(np.random.default_rng(tumour_seed))
    masks = {k: labels(s.mask, s.affine) for k, s in scans.items()}
    report = measure_response(masks)
    ratio = volume_ratio(m)
    pre_ml, post_ml = wobbly_volume_mm3(tumour) / 1000.0, wobbly_volume_mm3(tumour, ratio ** (1 / 3)) / 1000.0
    for record in report.responses:
        assert record.pre.volume_ml == pytest.approx(pre_ml, rel=0.01)            # 12.74 mL analytic
        assert record.post.volume_ml == pytest.approx(post_ml, rel=0.04)          # 3.40 mL (voxels 2-3 mm)
        assert record.volume_change_percent == pytest.approx(100.0 * (ratio - 1.0), abs=1.5)   # -73.3 %
        # the diameter shrinks like the linear scale, within a voxel on each side
        h = scans[f"{record.contrast.lower()}_pre"].affine[1, 1]
        expected = record.pre.longest_axial_diameter_mm * ratio ** (1 / 3)
        assert abs(record.post.longest_axial_diameter_mm - expected) <= 2 * h * np.sqrt(2)
        assert record.registration.startswith("no registration")
    assert [r.contrast for r in report.responses] == ["T1", "T2"]
    data = report.to_dict()
    assert "axial" in data["axial_definition"] and data["responses"][0]["post"]["sequence"] == "t1_post"


def test_real_sts001_rtstruct_volumes(shared_data):
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume

    root = real_file(shared_data, "mri/sts001_dicom")
    t1, t2 = read_volume(root / "T1"), read_volume(root / "T2")
    m1, m2 = read_mask(root / "T1_rtstruct", reference=t1), read_mask(root / "T2_rtstruct", reference=t2)
    assert tumour_label(m1) == (1, "GTV_Mass")                                  # the mass, not the oedema
    report = measure_response({"t1_pre": m1, "t2_pre": m2})
    t1_size, t2_size = (r.pre for r in report.responses)
    assert t1_size.volume_ml == pytest.approx(364.8, abs=0.1)                   # 364.754 mL on T1
    assert t2_size.volume_ml == pytest.approx(364.8, abs=0.2)                   # 364.895 mL on T2
    assert t1_size.mask_origin == "RTSTRUCT" and t1_size.sections == "own slices"   # the T1 is tilted 2°
    assert 90.0 < t1_size.longest_axial_diameter_mm < 97.0
    assert t2_size.longest_axial_diameter_mm == pytest.approx(t1_size.longest_axial_diameter_mm, abs=2 * 0.52)
    # the T1 mask propagated onto the T2 grid: same volume, and it lies on T2's own contours
    moved = propagate_mask(m1, t2, from_sequence="t1_pre")
    assert measure_tumour(moved, "t2_pre").volume_ml == pytest.approx(t1_size.volume_ml, rel=0.002)
    own = m2.data == 1
    assert 2 * np.sum(own & (moved.data == 1)) / (own.sum() + moved.data.sum()) > 0.98
    assert moved.metadata["propagated_from"] == "propagated from T1-pre"


def test_post_mask_propagated_through_a_registration():
    """The patient moved between sessions (15° and 20 mm): the pre mask propagated onto the post
    scan through the transform lands on the post tumour; records name the transform."""
    tumour = ellipsoid()
    pre_grid, post_grid = MRI_SIZES["small"].t1, MRI_SIZES["small"].t2
    angle = np.radians(15.0)
    motion = np.eye(4)                                     # reference point → where the post scanner sees it
    motion[0:2, 0:2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]   # about left-right
    motion[:3, 3] = (5.0, 20.0, -8.0)
    transform = WorldTransform(motion, source="/cases/x/transforms/t1_post_to_t1_pre.tfm", kind="Euler3DTransform")
    pre = labels(mask_on(pre_grid.affine, pre_grid.shape, tumour), pre_grid.affine, "GTV")
    # the post scan's own mask, drawn on where the tumour is in its scanner frame, then aligned by the seam
    truth_affine = np.linalg.inv(motion) @ post_grid.affine
    post = align(labels(mask_on(truth_affine, post_grid.shape, tumour), post_grid.affine, "GTV"), transform)
    moved = propagate_mask(pre, post, from_sequence="t1_pre", registration="t1_post_to_t1_pre.tfm")
    dice = 2 * np.sum((moved.data == 1) & (post.data == 1)) / (moved.data.sum() + post.data.sum())
    assert dice > 0.9
    report = measure_response({"t1_pre": pre, "t1_post": post}, transforms={"t1_post": transform})
    record = report.responses[0]
    assert abs(record.volume_change_percent) < 4.0 and abs(record.diameter_change_percent) < 12.0
    assert "t1_post_to_t1_pre.tfm (Euler3DTransform)" in record.registration
    # an unedited propagated post mask is measured, and the record says what it is
    report = measure_response({"t1_pre": pre, "t1_post": moved})
    assert report.responses[0].post.mask_origin.startswith("propagated from T1-pre")
    assert "not edited" in report.responses[0].note


def test_missing_masks_and_bad_labels():
    grid = MRI_SIZES["small"].t1
    mask = labels(mask_on(grid.affine, grid.shape, ellipsoid()), grid.affine, "GTV")
    record = measure_response({"t2_post": mask}).responses[0]
    assert record.contrast == "T2" and record.pre is None and record.volume_change_percent is None
    assert "T2-pre" in record.note
    empty = measure_tumour(labels(np.zeros(grid.shape), grid.affine), "t1_pre")
    assert empty.volume_ml == 0.0 and empty.longest_axial_diameter_mm == 0.0 and empty.diameter_endpoints_mm == ()
    from napari_harm3.core.errors import Harm3Error

    with pytest.raises(Harm3Error, match="no label named 'Mass'"):
        tumour_label(mask, "Mass")
    with pytest.raises(Harm3Error, match="unknown sequences: t3"):
        measure_response({"t3": mask})
