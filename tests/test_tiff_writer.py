"""Pyramidal TIFF writer: written files read back with OpenSlide and tiffslide."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3.core.errors import Cancelled, Harm3Error
from napari_harm3.core.io.tiff_writer import box_mean_2x2, level_shapes, write_pyramidal_tiff
from napari_harm3.core.io.wsi import open_slide
from napari_harm3.core.progress import CancelToken

BACKENDS = ("openslide", "tiffslide")


def _numpy_box_mean(block):
    h, w = block.shape[0] // 2 * 2, block.shape[1] // 2 * 2
    x = block[:h, :w].astype(np.int64)
    return ((x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2] + 2) // 4).astype(np.uint8)


def _smooth_image(height=1100, width=1500):
    """Gradients and soft blobs: content JPEG keeps within a few grey levels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 90) * np.cos(y / 70)
    g = 40 + 180 * (x / width)
    b = 220 - 160 * np.exp(-((x - 700) ** 2 + (y - 500) ** 2) / 2e5)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def test_box_mean_matches_definition_including_halves_and_odd_sizes():
    rng = np.random.default_rng(3)
    for shape in [(2, 2, 3), (7, 9, 3), (256, 256, 3), (255, 101, 3)]:
        block = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(box_mean_2x2(block), _numpy_box_mean(block))
    half = np.array([[[0] * 3, [0] * 3], [[0] * 3, [2] * 3]], np.uint8)
    assert box_mean_2x2(half)[0, 0].tolist() == [1, 1, 1]  # 0.5 rounds up


def test_level_shapes_halve_until_the_smaller_side_is_below_the_minimum():
    assert level_shapes(1100, 1500, 256) == [(1100, 1500), (550, 750), (275, 375), (137, 187)]
    assert level_shapes(200, 5000, 256) == [(200, 5000)]
    assert level_shapes(80_000, 100_000, 256)[-1] == (156, 195)


@pytest.fixture(scope="module")
def jpeg_slide(tmp_path_factory):
    image = _smooth_image()
    label = np.full((90, 120, 3), (30, 200, 40), np.uint8)
    macro = np.full((100, 300, 3), 90, np.uint8)
    path = write_pyramidal_tiff(
        tmp_path_factory.mktemp("w") / "smooth.svs", image, mpp=0.5, objective_power=20,
        associated={"label": label, "macro": macro},
    )
    return path, image


@pytest.mark.parametrize("backend", BACKENDS)
def test_jpeg_pyramid_reads_back_with_both_backends(jpeg_slide, backend):
    path, image = jpeg_slide
    with open_slide(path, backend=backend) as slide:
        assert slide.vendor == "aperio"
        assert slide.level_dimensions == ((1500, 1100), (750, 550), (375, 275), (187, 137))
        assert slide.level_downsamples[1] == pytest.approx(2.0)
        assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "metadata"
        assert slide.objective_power == 20
        level0 = slide.read_region((0, 0), 0, (1500, 1100)).astype(int)
        assert np.abs(level0 - image).mean() < 2.0 and np.abs(level0 - image).max() < 40
        level1 = slide.read_level(1, (0, 0), (750, 550)).astype(int)
        assert np.abs(level1 - _numpy_box_mean(image)).mean() < 2.0
        level3 = slide.read_level(3, (0, 0), (187, 137)).astype(int)
        expected3 = _numpy_box_mean(_numpy_box_mean(_numpy_box_mean(image)))
        assert np.abs(level3 - expected3).mean() < 2.5
        assert set(slide.associated_images) >= {"thumbnail", "label", "macro"}
        assert np.abs(slide.associated_images["label"].astype(int) - (30, 200, 40)).max() == 0
        assert slide.associated_images["macro"].shape == (100, 300, 3)
        thumb = slide.associated_images["thumbnail"]
        assert thumb.shape == (550, 750, 3)  # the largest level that fits in 1024 px


def test_lossless_levels_are_exact_box_means_and_period_two_texture_cancels(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(40, 216, (300, 400, 3), dtype=np.uint8)  # one value per 2×2 block
    image = np.repeat(np.repeat(base, 2, 0), 2, 1).astype(np.int16)
    checker = np.where((np.indices(image.shape[:2]).sum(0) % 2) == 0, 30, -30)[..., None]
    image = (image + checker).astype(np.uint8)  # period-2 texture on top
    path = write_pyramidal_tiff(tmp_path / "exact.tif", image, mpp=0.25, compression="lzw", min_level_size=64)
    with open_slide(path, backend="tiffslide") as ts, open_slide(path, backend="openslide") as osl:
        for slide in (ts, osl):
            assert np.array_equal(slide.read_region((0, 0), 0, (800, 600)), image)
            level1 = slide.read_level(1, (0, 0), (400, 300))
            assert np.array_equal(level1, base)  # the texture averaged out exactly
            assert np.array_equal(slide.read_level(2, (0, 0), (200, 150)), _numpy_box_mean(base))


def test_streamed_tiles_give_the_same_slide_and_never_request_more_than_a_tile(tmp_path):
    image = _smooth_image(700, 900)
    requests = []

    def tile_source(y0, x0, h, w):
        requests.append((y0, x0, h, w))
        return image[y0 : y0 + h, x0 : x0 + w]

    streamed = write_pyramidal_tiff(tmp_path / "s.tif", shape=(700, 900), tile_source=tile_source,
                                    mpp=1.0, compression="zlib", tile_size=128)
    direct = write_pyramidal_tiff(tmp_path / "d.tif", image, mpp=1.0, compression="zlib", tile_size=128)
    assert max(h for *_, h, _ in requests) <= 128 and max(w for *_, w in requests) <= 128
    assert len(requests) == len(set(requests)) == 6 * 8  # each tile once
    with open_slide(streamed) as a, open_slide(direct) as b:
        assert a.level_dimensions == b.level_dimensions
        for level, (w, h) in enumerate(a.level_dimensions):
            assert np.array_equal(a.read_level(level, (0, 0), (w, h)), b.read_level(level, (0, 0), (w, h)))


def test_without_mpp_the_readers_report_none(tmp_path):
    path = write_pyramidal_tiff(tmp_path / "nompp.svs", _smooth_image(300, 300), mpp=None)
    for backend in BACKENDS:
        with open_slide(path, backend=backend) as slide:
            assert slide.mpp is None and slide.objective_power is None


def test_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path):
    image = _smooth_image(300, 300)
    path = write_pyramidal_tiff(tmp_path / "a.svs", image, mpp=0.5)
    before = path.read_bytes()
    with pytest.raises(Harm3Error, match="exists"):
        write_pyramidal_tiff(path, image, mpp=0.5)
    assert path.read_bytes() == before
    write_pyramidal_tiff(path, image, mpp=0.25, overwrite=True)
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(0.25)

    def broken_source(y0, x0, h, w):
        if y0 > 0:
            raise OSError("scanner went away")
        return image[y0 : y0 + h, x0 : x0 + w]

    with pytest.raises(OSError, match="scanner"):
        write_pyramidal_tiff(tmp_path / "b.svs", shape=(300, 300), tile_source=broken_source, mpp=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svs"]


def test_progress_reaches_one_and_cancel_stops_the_write(tmp_path):
    image = _smooth_image(600, 600)
    seen = []
    write_pyramidal_tiff(tmp_path / "p.svs", image, mpp=0.5, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()

    def cancel_after_first_row(fraction, message):
        if fraction > 0.3:
            token.cancel()

    with pytest.raises(Cancelled):
        write_pyramidal_tiff(tmp_path / "c.svs", image, mpp=0.5, progress=token.wrap(cancel_after_first_row))
    assert not (tmp_path / "c.svs").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_bad_arguments_are_rejected(tmp_path):
    image = _smooth_image(64, 64)
    with pytest.raises(ValueError, match="uint8"):
        write_pyramidal_tiff(tmp_path / "x.svs", image.astype(np.float32), mpp=1)
    with pytest.raises(ValueError, match="multiple of 16"):
        write_pyramidal_tiff(tmp_path / "x.svs", image, mpp=1, tile_size=100)
    with pytest.raises(ValueError, match="Aperio layout"):
        write_pyramidal_tiff(tmp_path / "x.svs", image, mpp=1, associated={"overview": image})
    with pytest.raises(ValueError, match="positive"):
        write_pyramidal_tiff(tmp_path / "x.svs", image, mpp=0)
    with pytest.raises(ValueError, match="either image"):
        write_pyramidal_tiff(tmp_path / "x.svs", image, shape=(64, 64), tile_source=lambda *a: image, mpp=1)
    with pytest.raises(ValueError, match="expected uint8"):
        write_pyramidal_tiff(tmp_path / "x.svs", shape=(64, 64), tile_source=lambda *a: image[:10], mpp=1)
    with pytest.raises(ValueError, match="compression"):
        write_pyramidal_tiff(tmp_path / "x.svs", image, mpp=1, compression="webp")
    assert not list(tmp_path.iterdir())
