"""Whole-slide reading on real scanner files, with both backends, and bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import real_file
from napari_harm3.core.errors import Harm3Error, InputFileError, MissingMetadataError
from napari_harm3.core.io.wsi import is_slide_file, open_slide
from napari_harm3.core.io.wsi_backends import rgba_over_white

TCGA = "wsi/tcga-cr-7395-hnsc-jp2k.svs"
NDPI = "wsi/hamamatsu-dapi.ndpi"
DICOM = "wsi/cptac-brca-lowres-dicom.dcm"
BACKENDS = ("openslide", "tiffslide")


@pytest.fixture(scope="module")
def tcga(shared_data):
    return real_file(shared_data, TCGA)


@pytest.fixture(scope="module")
def ndpi(shared_data):
    return real_file(shared_data, NDPI)


@pytest.fixture(scope="module")
def dicom_wsi(shared_data):
    return real_file(shared_data, DICOM)


# --- metadata -----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_tcga_svs_opens_without_mpp_and_never_guesses(tcga, backend):
    with open_slide(tcga, backend=backend) as slide:
        assert slide.backend == backend and slide.vendor == "aperio"
        assert slide.level_dimensions[0] == (4443, 3567) and slide.level_count == 2
        assert slide.mpp is None and slide.mpp_x is None and slide.mpp_source is None
        assert slide.objective_power is None
        assert "thumbnail" in slide.associated_images
        with pytest.raises(MissingMetadataError, match="microns-per-pixel") as info:
            slide.require_mpp()
        assert "µm/px" in info.value.hints["viewer"] and "--mpp" in info.value.hints["cli"]
        user = slide.with_mpp(0.5)
        assert (user.mpp, user.mpp_x, user.mpp_y, user.mpp_source) == (0.5, 0.5, 0.5, "user")
        assert slide.mpp is None  # the original is unchanged


def test_user_mpp_overrides_metadata_and_is_validated(ndpi):
    with open_slide(ndpi, mpp=0.25) as slide:
        assert slide.mpp == 0.25 and slide.mpp_source == "user"
    with pytest.raises(Harm3Error, match="positive"):
        open_slide(ndpi, mpp=-1)
    with pytest.raises(Harm3Error, match="backend"):
        open_slide(ndpi, backend="bioformats")


@pytest.mark.parametrize("backend, levels", [("openslide", 7), ("tiffslide", 4)])
def test_ndpi_metadata_with_both_backends(ndpi, backend, levels):
    with open_slide(ndpi, backend=backend) as slide:
        assert slide.vendor == "hamamatsu"
        assert slide.level_count == levels and len(slide.level_downsamples) == levels
        assert slide.level_dimensions[0] == (3968, 4864)
        assert slide.mpp == pytest.approx(0.22818, abs=1e-5) and slide.mpp_source == "metadata"
        assert slide.objective_power == 40
        macro = slide.associated_images["macro"]
        assert macro.dtype == np.uint8 and macro.ndim == 3 and macro.shape[2] == 3
        assert dict(slide.properties) and all(isinstance(v, str) for v in slide.properties.values())


def test_dicom_wsi_both_backends_mpp_close_but_not_equal(dicom_wsi):
    with open_slide(dicom_wsi, backend="openslide") as a, open_slide(dicom_wsi, backend="tiffslide") as b:
        assert a.vendor == "dicom"
        assert a.dimensions == b.dimensions == (1680, 1547)
        assert a.mpp == pytest.approx(15.82, abs=0.01) and b.mpp == pytest.approx(15.82, abs=0.01)
        assert a.mpp != b.mpp  # the readers differ in the 4th digit; we report what each says
        region = ((400, 300), 0, (256, 256))
        assert np.array_equal(a.read_region(*region), b.read_region(*region))


def test_auto_backend_prefers_openslide(ndpi):
    with open_slide(ndpi) as slide:
        assert slide.backend == "openslide"


# --- pixels -------------------------------------------------------------------------------
def test_ndpi_level0_pixels_match_between_backends(ndpi):
    with open_slide(ndpi, backend="openslide") as a, open_slide(ndpi, backend="tiffslide") as b:
        ra = a.read_region((1000, 1200), 0, (512, 384))
        rb = b.read_region((1000, 1200), 0, (512, 384))
        assert ra.shape == rb.shape == (384, 512, 3) and ra.dtype == rb.dtype == np.uint8
        assert ra.std() > 0  # real content, not a blank read
        assert np.abs(ra.astype(int) - rb.astype(int)).max() <= 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("relative", [TCGA, NDPI, DICOM])
def test_outside_the_image_is_white(shared_data, relative, backend):
    path = real_file(shared_data, relative)
    with open_slide(path, backend=backend) as slide:
        width, height = slide.dimensions
        corner = slide.read_region((width - 32, height - 32), 0, (64, 64))
        assert (corner[32:, :] == 255).all() and (corner[:, 32:] == 255).all()
        # the in-image quarter equals a plain in-bounds read of the same pixels
        assert np.array_equal(corner[:32, :32], slide.read_region((width - 32, height - 32), 0, (32, 32)))
        before = slide.read_region((-100, -50), 0, (150, 100))
        assert (before[:50] == 255).all() and (before[:, :100] == 255).all()
        assert (slide.read_region((width + 10, 0), 0, (20, 20)) == 255).all()


def test_dark_slide_outside_is_white_not_black(ndpi):
    """The DAPI slide is almost black: white outside proves the compositing, not the content."""
    for backend in BACKENDS:
        with open_slide(ndpi, backend=backend) as slide:
            region = slide.read_region((-64, 1000), 0, (128, 64))
            assert (region[:, :64] == 255).all()
            assert region[:, 64:].mean() < 60


def test_rgba_over_white_composites_straight_alpha():
    rgba = np.array([[[0, 0, 0, 0], [10, 20, 30, 255], [0, 0, 0, 128], [200, 100, 0, 51]]], np.uint8)
    rgb = rgba_over_white(rgba)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # fully transparent → white, never black
    assert rgb[0, 1].tolist() == [10, 20, 30]
    assert rgb[0, 2].tolist() == [127, 127, 127]  # half black over white
    assert rgb[0, 3].tolist() == [244, 224, 204]  # 0.2 * c + 0.8 * 255


@pytest.mark.parametrize("backend", BACKENDS)
def test_pyramid_levels_are_lazy_and_slice_like_numpy(ndpi, backend):
    with open_slide(ndpi, backend=backend) as slide:
        levels = slide.pyramid()
        assert len(levels) == slide.level_count
        for level, array in zip(range(slide.level_count), levels):
            width, height = slide.level_dimensions[level]
            assert array.shape == (height, width, 3) and array.dtype == np.uint8 and array.ndim == 3
        level1 = levels[1]
        block = level1[100:356, 200:456]
        assert np.array_equal(block, slide.read_level(1, (200, 100), (256, 256)))
        assert np.array_equal(level1[100:356:4, 200:456:2], block[::4, ::2])
        assert np.array_equal(level1[100, 200:210], block[0, :10])
        assert np.array_equal(level1[100:110, 200, 1], block[:10, 0, 1])
        assert np.array_equal(level1[..., 0][100:102, 200:202], block[:2, :2, 0])
        smallest = np.asarray(levels[-1])
        assert smallest.shape == levels[-1].shape
        with pytest.raises(IndexError):
            level1[level1.shape[0]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_overview_levels_held_in_memory_answer_as_the_slide_does(ndpi, backend):
    """A case open reads the small levels once (off the GUI thread, issue 15): slices of a held
    level are the slide's own pixels, and only levels up to HOLD_PIXELS are held."""
    from napari_harm3.core.io.wsi_pyramid import HOLD_PIXELS, hold_overview

    with open_slide(ndpi, backend=backend) as slide:
        levels = slide.pyramid()
        small = [lv for lv in levels if lv.shape[0] * lv.shape[1] <= HOLD_PIXELS]
        assert small and len(small) < len(levels)  # level 0 is not held
        assert hold_overview(levels) == len(small)
        assert all(lv.held for lv in small) and not any(lv.held for lv in levels if lv not in small)
        for lv in small:
            h, w, _ = lv.shape
            region = lv[h // 4: h // 2, w // 3: w // 2 + 7]
            reference = slide.read_level(lv.level, (w // 3, h // 4), (w // 2 + 7 - w // 3, h // 2 - h // 4))
            assert np.array_equal(region, reference)
            assert np.array_equal(lv[5, 3:9, 2], slide.read_level(lv.level, (3, 5), (6, 1))[0, :, 2])
            with pytest.raises(ValueError):
                lv[:2, :2][0, 0, 0] = 1  # held pixels are read-only: napari cannot change them


def test_best_level_follows_openslide(ndpi):
    import openslide

    reference = openslide.OpenSlide(str(ndpi))
    with open_slide(ndpi, backend="openslide") as slide:
        for downsample in (0.5, 1, 1.9, 2, 3.99, 4, 10, 64, 1000):
            assert slide.get_best_level_for_downsample(downsample) == reference.get_best_level_for_downsample(downsample)
    reference.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_thumbnail_fits_and_keeps_aspect(tcga, backend):
    with open_slide(tcga, backend=backend) as slide:
        thumb = slide.thumbnail(300)
        assert thumb.dtype == np.uint8 and max(thumb.shape[:2]) == 300
        assert thumb.shape[1] / thumb.shape[0] == pytest.approx(4443 / 3567, rel=0.01)
        assert thumb.std() > 5


# --- recognising files --------------------------------------------------------------------
def test_is_slide_file(shared_data, tmp_path):
    for relative in (TCGA, NDPI, DICOM):
        assert is_slide_file(real_file(shared_data, relative))
    mri_dir = real_file(shared_data, "mri/sts001_dicom/T1")
    assert not is_slide_file(sorted(p for p in mri_dir.iterdir() if p.is_file())[0])
    assert not is_slide_file(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    text = tmp_path / "notes.txt"
    text.write_text("not a slide")
    assert not is_slide_file(text)
    assert not is_slide_file(tmp_path / "missing.svs")
    assert not is_slide_file(tmp_path)
    assert not is_slide_file(None)


# --- bad input ----------------------------------------------------------------------------
def _truncated(source, tmp_path, name, keep):
    target = tmp_path / name
    target.write_bytes(source.read_bytes()[:keep])
    return target


def _expect_input_error(path, match, backend="auto"):
    with pytest.raises(InputFileError, match=match) as info:
        open_slide(path, backend=backend)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("backend", ("auto", *BACKENDS))
def test_truncated_svs_is_a_clear_error(tcga, tmp_path, backend):
    size = tcga.stat().st_size
    for keep in (3000, size // 2, size - 100_000):
        path = _truncated(tcga, tmp_path, f"cut{keep}.svs", keep)
        _expect_input_error(path, "truncated", backend)


def test_truncated_ndpi_is_a_clear_error(ndpi, tmp_path):
    _expect_input_error(_truncated(ndpi, tmp_path, "cut.ndpi", ndpi.stat().st_size // 2), "truncated")


def test_other_file_kinds_renamed_svs(shared_data, tmp_path):
    nifti = tmp_path / "scan.svs"
    shutil.copy(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"), nifti)
    assert "NIfTI" in _expect_input_error(nifti, "not a whole-slide image")
    text = tmp_path / "notes.svs"
    text.write_text("patient notes\n")
    assert "text file" in _expect_input_error(text, "not a whole-slide image")
    mri_dir = real_file(shared_data, "mri/sts001_dicom/T1")
    mri = sorted(p for p in mri_dir.iterdir() if p.is_file())[0]
    assert "MRI" in _expect_input_error(mri, "not a whole-slide image")


def test_empty_missing_and_folder(tmp_path):
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    _expect_input_error(empty, "empty file")
    _expect_input_error(tmp_path / "missing.ndpi", "file not found")
    _expect_input_error(tmp_path, "folder")


@pytest.mark.parametrize("backend", ("auto", *BACKENDS))
def test_plain_untiled_tiff_is_not_a_whole_slide_image(tmp_path, backend):
    import tifffile

    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, np.full((300, 400, 3), 128, np.uint8))
    assert not is_slide_file(path)
    _expect_input_error(path, "not a whole-slide image|cannot read it as a whole-slide image", backend)
