"""Synthetic patients: determinism, the latent design (signals present where the models need
them, absent where they must not be), files on disk, the tiny cohort."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from scipy import ndimage

from napari_harm3.core.synth.latent import (
    PCR_THRESHOLD,
    case_seed,
    draw_cohort_latents,
    draw_latents,
    seed_streams,
)
from napari_harm3.core.synth.mri_phantom import SEQUENCE_KEYS, generate_mri, volume_ratio
from napari_harm3.core.synth.slide_phantom import (
    COARSE,
    checker_amplitude,
    plan_slide,
    render_slide,
)

SLIDE = (1024, 1536)  # a reduced slide for the in-memory checks (the files use the "small" preset)


def _checker_energy(image: np.ndarray) -> float:
    """Mean correlation of the grey image with the level's (−1)^(row+col) pattern."""
    grey = image.astype(np.float64).mean(axis=-1) if image.ndim == 3 else image.astype(np.float64)
    sign = np.ones(grey.shape)
    sign[0::2, 1::2] = -1
    sign[1::2, 0::2] = -1
    return float((grey * sign).mean())


def _box_mean(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.int32)
    return image[0::2, 0::2] + image[0::2, 1::2] + image[1::2, 0::2] + image[1::2, 1::2]


def _auc(score, label) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, score))


def _harrell_c(time_, event, risk) -> float:
    """Harrell's C: among comparable pairs (the earlier time is an event), the share where the
    earlier one has the higher risk (ties count half)."""
    earlier = (time_[:, None] < time_[None, :]) & (event[:, None] == 1)
    higher = (risk[:, None] > risk[None, :]) + 0.5 * (risk[:, None] == risk[None, :])
    return float((higher * earlier).sum() / earlier.sum())


# ---------------------------------------------------------------------------- latents, labels
def test_latents_are_deterministic():
    assert draw_latents(11) == draw_latents(11)
    assert draw_latents(11) != draw_latents(12)
    assert case_seed(3, 0) == case_seed(3, 0) != case_seed(3, 1)
    fixed = draw_latents(11, m=2.5, s=2.5)
    assert fixed.m == 2.5 and fixed.pcr == 1 and fixed.c == draw_latents(11).c
    with pytest.raises(ValueError):
        draw_latents(1, q=1.0)


def test_label_balance_and_censoring():
    latents = draw_cohort_latents(200, seed=0)
    pcr = np.array([p.pcr for p in latents])
    event = np.array([p.event for p in latents])
    months = np.array([p.survival_months for p in latents])
    print(f"\npCR {pcr.mean():.2f}, censored {1 - event.mean():.2f}, median observed {np.median(months):.1f} months")
    assert 0.5 <= pcr.mean() <= 0.7
    assert 0.18 <= 1 - event.mean() <= 0.42
    assert 18 <= np.median(months) <= 42 and months.min() > 0
    for p in latents:
        assert p.pcr == int(p.m + p.s + 0.3 * p.eps > PCR_THRESHOLD)


def test_oracle_fusion_beats_each_modality():
    """Logistic regression on the true scores (fit on one half, AUC on the other): m and s
    together predict pCR better than either; c and f together rank survival better than either."""
    from sklearn.linear_model import LogisticRegression

    latents = draw_cohort_latents(600, seed=1)
    table = {k: np.array([getattr(p, k) for p in latents]) for k in ("m", "s", "c", "f", "pcr", "survival_months", "event")}
    train, test = slice(0, 300), slice(300, 600)
    aucs = {}
    for name, columns in {"m": ["m"], "s": ["s"], "both": ["m", "s"]}.items():
        x = np.stack([table[c] for c in columns], axis=1)
        model = LogisticRegression().fit(x[train], table["pcr"][train])
        aucs[name] = _auc(model.decision_function(x[test]), table["pcr"][test])
    print(f"\noracle pCR AUC: MRI {aucs['m']:.3f}, slide {aucs['s']:.3f}, both {aucs['both']:.3f}")
    assert aucs["both"] > max(aucs["m"], aucs["s"]) + 0.05
    assert min(aucs["m"], aucs["s"]) > 0.65  # each modality carries real signal
    c_index = {
        name: _harrell_c(table["survival_months"][test], table["event"][test], risk[test])
        for name, risk in {"coarse": table["c"], "fine": table["f"], "both": table["c"] + table["f"]}.items()
    }
    print(f"oracle survival C-index: coarse {c_index['coarse']:.3f}, fine {c_index['fine']:.3f}, both {c_index['both']:.3f}")
    assert c_index["both"] > max(c_index["coarse"], c_index["fine"]) + 0.03


# ---------------------------------------------------------------------------- MRI phantom
@pytest.fixture(scope="module")
def scans():
    return generate_mri(seed_streams(5)["mri"], m=0.0)


def test_mri_is_deterministic(scans):
    again = generate_mri(seed_streams(5)["mri"], m=0.0)
    other = generate_mri(seed_streams(6)["mri"], m=0.0)
    for key in SEQUENCE_KEYS:
        np.testing.assert_array_equal(scans[key].data, again[key].data)
        np.testing.assert_array_equal(scans[key].mask, again[key].mask)
        assert not np.array_equal(scans[key].data, other[key].data)
        assert scans[key].data.dtype == np.int16 and scans[key].mask.dtype == np.uint8


def test_mri_grids_differ_but_share_world(scans):
    t1, t2 = scans["t1_pre"], scans["t2_pre"]
    assert t1.data.shape == (24, 96, 96) and t2.data.shape == (24, 64, 64)
    assert t2.affine[1, 1] > t1.affine[1, 1]  # T2 coarser in-plane
    np.testing.assert_array_equal(scans["t1_post"].affine, t1.affine)  # same grid by default

    def centroid(scan):
        index = np.array(np.nonzero(scan.mask), float).mean(axis=1)
        return (scan.affine @ np.append(index, 1.0))[:3]

    assert np.abs(centroid(t1) - centroid(t2)).max() < 2.0  # mm: the tumour is where it is
    shifted = generate_mri(seed_streams(5)["mri"], m=0.0, post_shift_mm=(0.0, 3.0, -2.0))
    np.testing.assert_allclose(shifted["t1_post"].affine[:3, 3] - t1.affine[:3, 3], [0.0, 3.0, -2.0])


def test_tumour_mask_marks_the_bright_tumour(scans):
    for key in ("t1_pre", "t2_pre"):
        scan = scans[key]
        mask = scan.mask.astype(bool)
        assert mask.sum() > 100
        shell = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask, iterations=1)
        inside, around = scan.data[mask].mean(), scan.data[shell].mean()
        assert inside > 1.3 * around, (key, inside, around)


def test_post_volume_ratio_decreases_with_response():
    ratios, t2_signal = [], []
    for m in (-1.5, -0.5, 0.5, 1.5, 2.5):
        scans_m = generate_mri(seed_streams(5)["mri"], m=m)
        pre, post = scans_m["t1_pre"].mask.sum(), scans_m["t1_post"].mask.sum()
        ratios.append(post / pre)
        t2 = scans_m["t2_post"]
        if t2.mask.sum() > 20:
            t2_signal.append(t2.data[t2.mask.astype(bool)].mean())
    print("\npost/pre tumour volume:", np.round(ratios, 3))
    assert all(a > b for a, b in zip(ratios, ratios[1:]))
    assert ratios[0] > 1.0 and ratios[-1] < 0.05
    np.testing.assert_allclose(ratios[2], volume_ratio(0.5), rtol=0.15)
    assert len(t2_signal) >= 3 and all(a > b for a, b in zip(t2_signal, t2_signal[1:]))  # T2 falls with response


# ---------------------------------------------------------------------------- slide phantom
def test_slide_is_deterministic():
    seq = seed_streams(9)["slide"]
    first = render_slide(plan_slide(seq, 0.0, 0.0, 0.0, SLIDE))
    np.testing.assert_array_equal(first, render_slide(plan_slide(seed_streams(9)["slide"], 0.0, 0.0, 0.0, SLIDE)))
    assert not np.array_equal(first, render_slide(plan_slide(seed_streams(10)["slide"], 0.0, 0.0, 0.0, SLIDE)))
    assert first.shape == SLIDE + (3,) and first.dtype == np.uint8
    background = first[:8, :8].reshape(-1, 3)
    assert background.min() > 200  # white glass in a corner
    start = time.perf_counter()
    plan = plan_slide(seed_streams(9)["slide"], 0.0, 0.0, 0.0, "small")
    render_slide(plan)
    print(f"\nsmall slide 3072×2048 plan + render: {time.perf_counter() - start:.2f} s")


def test_fine_texture_vanishes_in_box_means():
    plan = plan_slide(seed_streams(4)["slide"], 0.0, 0.0, 1.0, SLIDE)
    textured = render_slide(plan)
    plain = render_slide(dataclasses.replace(plan, checker=0))
    changed = textured != plain
    assert changed.mean() > 0.02  # the texture is there at 20×
    # every 2×2 block mean is that of the untextured image (except the rare clipped pixel)
    assert (_box_mean(textured) != _box_mean(plain)).mean() < 1e-4
    assert _checker_energy(textured) > 0.02 * checker_amplitude(1.0)
    assert abs(_checker_energy(_box_mean(textured) / 4.0)) < 0.05
    assert checker_amplitude(-1.0) < checker_amplitude(0.0) < checker_amplitude(1.0)


def test_lymphocyte_density_rises_with_s():
    counts, dark = [], []
    for s in (-1.5, 0.0, 1.5):
        plan = plan_slide(seed_streams(2)["slide"], s, 0.0, 0.0, SLIDE)
        image = render_slide(plan)
        tissue = np.kron(plan.tissue > 0.5, np.ones((COARSE, COARSE), bool))
        counts.append(len(plan.lymphocytes))
        dark.append(float((image[..., 0][tissue] < 45).mean()))  # lymphocytes: the darkest haematoxylin
    print("\nlymphocytes:", counts, "dark pixel fraction:", np.round(dark, 4))
    assert counts[0] < counts[1] < counts[2] and counts[2] > 3 * counts[0]
    assert dark[0] < dark[1] < dark[2]
    radii = plan.lymphocytes.rx
    assert radii.min() >= 3.0 and radii.max() <= 4.0


def test_nests_grow_with_c():
    fractions, lengths = [], []
    for c in (-1.5, 0.0, 1.5):
        plan = plan_slide(seed_streams(2)["slide"], 0.0, c, 0.0, SLIDE)
        tissue = plan.tissue > 0.5
        nest = (plan.nest > 0) & tissue
        fractions.append(nest.sum() / tissue.sum())
        _, n_blobs = ndimage.label(nest)
        lengths.append(nest.sum() / max(n_blobs, 1))
    print("\nnest fraction:", np.round(fractions, 3), "mean nest area (coarse px):", np.round(lengths, 1))
    assert fractions[0] < fractions[1] < fractions[2]
    assert lengths[0] < lengths[2]


# ---------------------------------------------------------------------------- files on disk
@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_cohort

    out = tmp_path_factory.mktemp("cohort")
    start = time.perf_counter()
    table = make_cohort(out, n=4, seed=7, size="small")
    print(f"\ntiny cohort n=4 small: {time.perf_counter() - start:.1f} s")
    return table


def test_tiny_cohort_loads_and_validates(tiny_cohort):
    from napari_harm3.core.io.case_checks import validate_cohort
    from napari_harm3.core.io.cohort import load_cohort

    cohort = load_cohort(tiny_cohort)
    assert cohort.case_ids == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    assert validate_cohort(tiny_cohort) == []
    for index, case in enumerate(cohort.cases):
        assert set(case.mri) == set(case.masks) == set(SEQUENCE_KEYS)
        truth = draw_latents(case_seed(7, index))
        assert case.synthetic["seed"] == case_seed(7, index)
        assert case.synthetic["m"] == pytest.approx(truth.m, abs=1e-6)
        assert (case.labels.pcr, case.labels.survival_months, case.labels.event) == (
            truth.pcr, truth.survival_months, truth.event)
    np.testing.assert_array_equal(cohort.pcr, [c.labels.pcr for c in cohort.cases])


def test_written_volumes_match_the_generator(tiny_cohort):
    from napari_harm3.core.io.cohort import load_cohort
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume

    case = load_cohort(tiny_cohort).cases[0]
    scans = generate_mri(seed_streams(case.synthetic["seed"])["mri"], case.synthetic["m"])
    for key in ("t1_pre", "t2_post"):
        volume = read_volume(case.mri[key])
        np.testing.assert_array_equal(volume.data, scans[key].data)
        np.testing.assert_allclose(volume.affine, scans[key].affine, atol=1e-4)
        np.testing.assert_array_equal(read_mask(case.masks[key]).data, scans[key].mask)


def test_written_slide_has_texture_at_20x_only(tiny_cohort):
    from napari_harm3.core.io.cohort import load_cohort
    from napari_harm3.core.io.wsi import open_slide

    case = load_cohort(tiny_cohort).cases[0]
    with open_slide(case.slide) as slide:
        assert slide.dimensions == (3072, 2048)
        assert slide.mpp == pytest.approx(0.5) and slide.objective_power == pytest.approx(20)
        level0 = slide.read_region((0, 0), 0, slide.level_dimensions[0])
        level1 = slide.read_region((0, 0), 1, slide.level_dimensions[1])
    amplitude = checker_amplitude(case.synthetic["f"])
    print(f"\nchecker energy: level 0 {_checker_energy(level0):.3f}, level 1 {_checker_energy(level1):.4f} (δ={amplitude})")
    assert _checker_energy(level0) > 0.01 * amplitude  # survives JPEG at level 0
    assert abs(_checker_energy(level1)) < 0.05


def test_make_case_reproduces_a_cohort_case(tiny_cohort, tmp_path):
    from napari_harm3.core.io.cohort import load_cohort
    from napari_harm3.core.io.wsi import open_slide
    from napari_harm3.core.synth.cohort import make_case

    original = load_cohort(tiny_cohort).cases[1]
    copy = make_case(tmp_path / "again", original.synthetic["seed"], case_id=original.case_id)
    assert copy.labels == original.labels and copy.synthetic == original.synthetic
    assert (tmp_path / "again" / "mri" / "t1_pre.nii.gz").read_bytes() == original.mri["t1_pre"].read_bytes()
    with open_slide(copy.slide) as a, open_slide(original.slide) as b:
        np.testing.assert_array_equal(a.read_region((0, 0), 0, a.dimensions), b.read_region((0, 0), 0, b.dimensions))
    from napari_harm3.core.errors import Harm3Error

    with pytest.raises(Harm3Error, match="not empty"):
        make_case(tmp_path / "again", 1)


def test_demo_case_is_cached(tmp_path, monkeypatch):
    """The demo's cache logic, with the demo parameters shrunk to the small preset."""
    from napari_harm3.core.synth import demo

    monkeypatch.setattr(demo, "demo_parameters", lambda: {"case_id": "DEMO-T", "seed": 3, "size": "small", "slide_size": [512, 768]})
    monkeypatch.setenv("HARM3_CACHE", str(tmp_path))
    manifest = demo.demo_case()
    assert manifest.is_file() and manifest.parent.name == f"demo-{demo.demo_version()}"
    assert manifest.parent.parent == tmp_path
    stamp = manifest.stat().st_mtime_ns
    assert demo.demo_case() == manifest and manifest.stat().st_mtime_ns == stamp  # not regenerated
    assert [p.name for p in tmp_path.iterdir()] == [manifest.parent.name]  # no scratch left behind

    import yaml

    from napari_harm3.core.resources import resource

    shipped = yaml.safe_load(resource(*demo.DEMO_PARAMETERS).read_text())  # the real demo's parameters
    assert shipped["size"] == "demo" and isinstance(shipped["seed"], int)


def test_a_relative_output_folder_gives_a_readable_case(tmp_path, monkeypatch):
    """``harm3 synth --out c`` (relative) once wrote manifest paths relative to its scratch folder."""
    from napari_harm3.core.cli.main import main
    from napari_harm3.core.io.case_checks import validate_cohort

    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--n", "1", "--seed", "5", "--out", "rel"]) == 0
    text = (tmp_path / "rel" / "SYN-0001" / "case.yaml").read_text()
    assert "partial" not in text and "t1_pre: mri/t1_pre.nii.gz" in text
    assert validate_cohort(tmp_path / "rel") == []
