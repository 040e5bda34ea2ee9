"""Feature extraction: same features as the plain per-patch loop, strips, resume, skip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import real_file
from napari_harm3.core.errors import Cancelled
from napari_harm3.core.wsi.encoders import create_encoder
from napari_harm3.core.wsi.extraction import PatchReader, extract_features, patch_runs
from napari_harm3.core.wsi.feature_files import SlideFiles, load_clam_features
from napari_harm3.core.wsi.patching import patch_slide
from napari_harm3.core.wsi.prepare import extract_slide
from napari_harm3.core.wsi.slide_source import open_wsi
from napari_harm3.core.wsi.tissue import TissueParams


@pytest.fixture(scope="module")
def phantom_slide(tmp_path_factory):
    """A small H&E phantom at 20× (0.5 µm/px) written as a pyramidal TIFF."""
    synth = pytest.importorskip("napari_harm3.core.synth.slide_phantom")
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff

    image = synth.generate_slide(np.random.SeedSequence(11), s=1.0, c=0.5, f=1.0, size=(1024, 1536)).image
    return write_pyramidal_tiff(tmp_path_factory.mktemp("slides") / "phantom-a.tif", image, mpp=0.5,
                                objective_power=20, tile_size=256, overwrite=True)


def plain_loop(slide, coords, plan, encoder, batch_size=8):
    """What CLAM does: one read_region per patch, resize, then the encoder on each batch."""
    rows = []
    for start in range(0, len(coords), batch_size):
        patches = []
        for x, y in coords[start:start + batch_size]:
            patch = slide.read_region((int(x), int(y)), plan.read_level, (plan.read_size, plan.read_size))
            if patch.shape[0] != plan.patch_size:
                patch = cv2.resize(patch, (plan.patch_size, plan.patch_size), interpolation=cv2.INTER_AREA)
            patches.append(patch)
        with torch.inference_mode():
            rows.append(encoder(torch.from_numpy(np.stack(patches))).numpy())
    return np.concatenate(rows)


def test_patch_runs_split_columns():
    coords = np.array([[0, 0], [0, 256], [0, 512], [0, 1024], [256, 1280], [256, 1536]])
    assert patch_runs(coords, 256) == [(0, 3), (3, 4), (4, 6)]
    assert patch_runs(coords, 256, max_run=2) == [(0, 2), (2, 3), (3, 4), (4, 6)]


def test_strip_reads_equal_single_reads(phantom_slide):
    patches = patch_slide(phantom_slide, 20, 256, TissueParams.from_preset("biopsy"))
    reader = PatchReader(lambda: open_wsi(phantom_slide), patches.plan, strips=True)
    run = next((a, b) for a, b in patch_runs(patches.coords, 256) if b - a >= 2)
    strip = reader.read(patches.coords[run[0]:run[1]])
    single = PatchReader(lambda: open_wsi(phantom_slide), patches.plan, strips=False)
    assert np.array_equal(strip, single.read(patches.coords[run[0]:run[1]]))


@pytest.mark.parametrize("case", ["phantom", "ndpi"])
def test_features_equal_the_plain_per_patch_loop(case, phantom_slide, shared_data):
    path = phantom_slide if case == "phantom" else real_file(shared_data, "wsi/hamamatsu-dapi.ndpi")
    patches = patch_slide(path, 20, 256, TissueParams.from_preset("biopsy"))
    coords = patches.coords[:14]
    encoder = create_encoder("texture_stats")
    ours = extract_features(lambda: open_wsi(path), coords, patches.plan, encoder, batch_size=4, workers=2)
    expected = plain_loop(open_wsi(path), coords, patches.plan, encoder)
    assert ours.shape == (len(coords), encoder.dim)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    if case == "ndpi":
        assert patches.plan.read_level == 1 and patches.plan.needs_resize  # 561 px at level 1 → 256


@pytest.mark.parametrize("case", ["phantom", "ndpi"])
def test_resnet_features_equal_the_plain_model_on_real_patches(case, phantom_slide, shared_data):
    """Ours runs the encoder prepared for inference (BatchNorm folded, channels-last); the
    per-patch loop runs the plain model, as CLAM does: same features up to float rounding."""
    path = phantom_slide if case == "phantom" else real_file(shared_data, "wsi/hamamatsu-dapi.ndpi")
    patches = patch_slide(path, 20, 256, TissueParams.from_preset("biopsy"))
    coords = patches.coords[:4]
    with pytest.warns(UserWarning, match="RANDOM-INITIALISED"):
        encoder = create_encoder("resnet50_trunc")
    ours = extract_features(lambda: open_wsi(path), coords, patches.plan, encoder, batch_size=3, workers=2)
    expected = plain_loop(open_wsi(path), coords, patches.plan, encoder, batch_size=3)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())  # left as it was
    assert ours.shape == (len(coords), 1024)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_a_large_batch_is_encoded_in_cpu_chunks():
    from napari_harm3.core.wsi.extraction import CPU_CHUNK, encode_batches

    seen = []

    def encoder(batch):
        seen.append(len(batch))
        return batch.float().mean(dim=(1, 2))  # (B, 3)

    batch = np.random.default_rng(1).integers(0, 256, (2 * CPU_CHUNK + 3, 4, 4, 3), dtype=np.uint8)
    got = []
    encode_batches(encoder, [(0, batch)], torch.device("cpu"), lambda first, rows: got.append(rows))
    assert seen == [CPU_CHUNK, CPU_CHUNK, 3]
    np.testing.assert_allclose(got[0], batch.astype(np.float32).mean(axis=(1, 2)), rtol=1e-6)


def test_interrupted_run_resumes_to_identical_output(phantom_slide, tmp_path):
    encoder = create_encoder("texture_stats")
    params = TissueParams.from_preset("biopsy")
    calls = []

    def cancel_after_two_batches(fraction, message):
        calls.append(fraction)
        if len(calls) == 3:  # the initial report, then two batches
            raise Cancelled("test")

    with pytest.raises(Cancelled):
        extract_slide(phantom_slide, tmp_path / "a", encoder, 20, 256, params=params, batch_size=4,
                      progress=cancel_after_two_batches)
    files = SlideFiles.of(tmp_path / "a", encoder.name, 20, 256, "phantom-a")
    assert files.partial.is_file() and not files.h5.exists() and not files.pt.exists()
    seen = []
    extract_slide(phantom_slide, tmp_path / "a", encoder, 20, 256, params=params, batch_size=4,
                  progress=lambda f, m: seen.append(m))
    assert seen[0].endswith(f"8/{seen[-1].split('/')[-1]}")  # resumed after 2 batches of 4
    assert files.done() and not files.partial.exists()
    extract_slide(phantom_slide, tmp_path / "b", encoder, 20, 256, params=params, batch_size=4)
    resumed, coords_a, _ = load_clam_features(files.h5)
    fresh, coords_b, _ = load_clam_features(SlideFiles.of(tmp_path / "b", encoder.name, 20, 256, "phantom-a").h5)
    assert np.array_equal(resumed, fresh) and np.array_equal(coords_a, coords_b)
    mtime = files.h5.stat().st_mtime_ns
    messages = []
    extract_slide(phantom_slide, tmp_path / "a", encoder, 20, 256, params=params,
                  progress=lambda f, m: messages.append(m))
    assert "done already" in messages[-1] and files.h5.stat().st_mtime_ns == mtime
