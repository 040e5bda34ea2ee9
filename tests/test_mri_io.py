"""MRI volume reading on real scanner files: DICOM series (TCIA STS_001 T1/T2), NIfTI, the
files that pydicom ships; geometry (LPS affine, slice order), bad input, and ``harm3 info``."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import shutil

import numpy as np
import pydicom
import pytest
from conftest import real_file
from pydicom.data import get_testdata_file
from scipy import ndimage

from napari_harm3.core.cli import info
from napari_harm3.core.cli.main import main as harm3_main
from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.io import dicom_series
from napari_harm3.core.io.masks import read_rtstruct
from napari_harm3.core.io.mri import (
    Volume,
    is_mri_path,
    list_dicom_series,
    read_dicom_series,
    read_nifti,
    read_volume,
    write_nifti,
)
from napari_harm3.core.mri.windowing import background_threshold

T1_DESCRIPTION = "AXIAL SE T1 - RESEARCH"
T2_DESCRIPTION = "AXIAL SE T2 FAT SAT - RESEARCH"


@pytest.fixture(scope="module")
def t1(shared_data) -> Volume:
    return read_volume(real_file(shared_data, "mri/sts001_dicom/T1"))


@pytest.fixture(scope="module")
def t2(shared_data) -> Volume:
    return read_volume(real_file(shared_data, "mri/sts001_dicom/T2"))


# ------------------------------------------------------------------ DICOM series


def test_t1_and_t2_read_with_their_own_grids(t1, t2):
    assert t1.shape == (40, 512, 512) and t1.data.dtype == np.uint16
    assert t2.shape == (40, 384, 384) and t2.data.dtype == np.uint16
    assert t1.spacing[1:] == pytest.approx((0.390625, 0.390625), abs=1e-6)
    assert t2.spacing[1:] == pytest.approx((0.5234375, 0.5234375), abs=1e-6)
    # the README's "4 mm slices" is SliceThickness; the slices are 5.2 mm apart (1.2 mm gaps)
    assert t1.metadata["slice_thickness"] == pytest.approx(4.0)
    assert t1.spacing[0] == pytest.approx(5.2, abs=1e-3) and t2.spacing[0] == pytest.approx(5.2, abs=1e-3)
    assert t1.frame_of_reference_uid == t2.frame_of_reference_uid is not None
    assert t1.series_uid != t2.series_uid
    assert (t1.description, t2.description) == (T1_DESCRIPTION, T2_DESCRIPTION)
    assert t1.name == T1_DESCRIPTION
    assert t1.metadata["modality"] == "MR" and t1.metadata["manufacturer"] == "SIEMENS"
    # axial: slice index runs to superior, rows to posterior, columns to the patient's left
    assert t1.orientation_codes() == "SPL" and t2.orientation_codes() == "SPL"


def test_each_slice_sits_at_its_files_image_position(t1, shared_data):
    """Sorting and affine: slice k holds exactly the pixels of the file whose
    ImagePositionPatient is the world position of voxel (k, 0, 0)."""
    folder = real_file(shared_data, "mri/sts001_dicom/T1")
    corner_world = t1.index_to_world(np.column_stack([np.arange(40), np.zeros(40), np.zeros(40)]))
    for path in sorted(folder.glob("*.dcm"))[::7]:
        ds = pydicom.dcmread(path)
        position_zyx = np.array([float(v) for v in ds.ImagePositionPatient])[::-1]
        distances = np.linalg.norm(corner_world - position_zyx, axis=1)
        k = int(np.argmin(distances))
        assert distances[k] < 1e-3
        np.testing.assert_array_equal(t1.data[k], ds.pixel_array)
        # the last row/column voxel: IOP row direction x column spacing, etc.
        row_dir = np.array([float(v) for v in ds.ImageOrientationPatient[:3]])
        far = position_zyx + (row_dir * 511 * float(ds.PixelSpacing[1]))[::-1]
        np.testing.assert_allclose(t1.index_to_world([[k, 0, 511]])[0], far, atol=1e-3)
    round_trip = t1.world_to_index(t1.index_to_world([[3, 100, 200]]))
    np.testing.assert_allclose(round_trip, [[3, 100, 200]], atol=1e-9)


def _t1_sample_grid(t1, stride=4):
    kk, jj, ii = np.meshgrid(
        np.arange(t1.shape[0]), np.arange(0, t1.shape[1], stride), np.arange(0, t1.shape[2], stride), indexing="ij"
    )
    world = t1.index_to_world(np.stack([kk, jj, ii], -1).reshape(-1, 3).astype(float))
    return (kk, jj, ii), world


def _resample(volume, world, shape, order=1):
    """Values of ``volume`` at world points (z, y, x), through its affine."""
    index = volume.world_to_index(world).T
    return ndimage.map_coordinates(np.asarray(volume.data, np.float32), index, order=order, cval=0).reshape(shape)


def _body(image):
    mask = image > 0.5 * background_threshold(image.ravel())
    mask = ndimage.binary_opening(mask)
    return np.stack([ndimage.binary_fill_holes(s) for s in mask])


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_t2_resampled_through_the_affines_overlays_t1(t1, t2, shared_data):
    """T2 (other grid) brought onto the T1 grid through the two affines: bodies agree, the
    T2 tumour contours land on the T1 ones, and the bright T2 tumour lies inside T1's GTV.
    A mirrored placement fails the same checks (the test can fail)."""
    (kk, jj, ii), world = _t1_sample_grid(t1)
    t1_image = t1.data[kk, jj, ii].astype(np.float32)
    t2_on_t1 = _resample(t2, world, kk.shape)
    assert _dice(_body(t1_image), _body(t2_on_t1)) > 0.85

    gtv_t1 = read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct"), reference=t1)
    gtv_t2 = read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T2_rtstruct"), reference=t2)
    mass_t1 = gtv_t1.data[kk, jj, ii] == 1
    assert gtv_t1.label_names[1] == gtv_t2.label_names[1] == "GTV_Mass"

    def checks(points):
        mass_t2 = _resample(gtv_t2, points, kk.shape, order=0) == 1
        t2_values = _resample(t2, points, kk.shape)
        contrast = t2_values[mass_t1].mean() / t2_values[~mass_t1 & (t2_values > 0)].mean()
        return _dice(mass_t1, mass_t2), contrast

    dice, contrast = checks(world)
    assert dice > 0.95  # measured 0.99
    assert contrast > 3  # T2 fat-sat: the mass is much brighter than the rest (measured 6.9)
    mirrored = world.copy()
    mirrored[:, 2] = 2 * world[:, 2].mean() - world[:, 2]
    dice_mirrored, contrast_mirrored = checks(mirrored)
    assert dice_mirrored < 0.5 and contrast_mirrored < 2


def test_listing_reads_headers_and_pixels_are_decoded_once(shared_data, monkeypatch):
    """Performance by construction: listing never decodes pixels; reading decodes each slice once."""
    folder = real_file(shared_data, "mri/sts001_dicom/T1")
    full_reads = []
    real_dcmread = pydicom.dcmread

    def counting_dcmread(path, *args, **kwargs):
        if not kwargs.get("stop_before_pixels"):
            full_reads.append(str(path))
        return real_dcmread(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting_dcmread)
    series = list_dicom_series(folder)
    assert full_reads == []
    assert [(s.description, s.n_files, s.kind) for s in series] == [(T1_DESCRIPTION, 40, "volume")]
    read_dicom_series(folder)
    assert sorted(full_reads) == sorted(str(p) for p in folder.glob("*.dcm"))


def test_several_series_in_one_folder(shared_data, tmp_path):
    for name in ("T1", "T2"):
        for source in real_file(shared_data, f"mri/sts001_dicom/{name}").glob("*.dcm"):
            (tmp_path / f"{name}-{source.name}").symlink_to(source)
    series = list_dicom_series(tmp_path)
    assert sorted(s.description for s in series) == [T1_DESCRIPTION, T2_DESCRIPTION]
    assert all(s.n_files == 40 and s.modality == "MR" for s in series)
    with pytest.raises(InputFileError) as error:
        read_dicom_series(tmp_path)
    message = str(error.value)
    assert "2 image series" in message and "\n" not in message
    for s in series:
        assert s.uid in message and s.description in message
    t2_info = next(s for s in series if s.description == T2_DESCRIPTION)
    assert read_dicom_series(tmp_path, series_uid=t2_info.uid).shape == (40, 384, 384)
    with pytest.raises(InputFileError, match="has no series 1.2.3"):
        read_dicom_series(tmp_path, series_uid="1.2.3")


def test_a_missing_slice_is_an_error(shared_data, tmp_path):
    files = sorted(real_file(shared_data, "mri/sts001_dicom/T1").glob("*.dcm"))
    for source in files[:20] + files[21:]:
        (tmp_path / source.name).symlink_to(source)
    with pytest.raises(InputFileError, match="uneven slice spacing"):
        read_dicom_series(tmp_path)


# ------------------------------------------------------------------ pydicom's own test files


def test_pydicom_mr_small_single_slice():
    path = get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    volume = read_volume(path)  # its folder holds the same instance in 8 other encodings
    assert volume.shape == (1, 64, 64)
    np.testing.assert_array_equal(volume.data[0], ds.pixel_array)
    assert volume.spacing[1:] == pytest.approx([float(v) for v in ds.PixelSpacing][::-1])
    np.testing.assert_allclose(volume.affine[:3, 3], [float(v) for v in ds.ImagePositionPatient][::-1])


def test_pydicom_ct_small_rescale_is_applied():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    volume = read_volume(path)
    assert volume.data.dtype == np.float32 and volume.metadata["rescaled"]
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(volume.data[0], expected)
    assert volume.data.min() < 0  # Hounsfield units, not stored values


# ------------------------------------------------------------------ NIfTI


def test_nifti_t1_reads_in_lps_zyx(shared_data):
    volume = read_nifti(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    assert volume.shape == (59, 158, 174) and volume.data.dtype == np.float32
    assert volume.spacing == pytest.approx((3.269955, 0.976562, 0.976562), abs=1e-5)
    assert volume.name == "t1" and volume.metadata["header_orientation"] == "LPS"
    assert volume.orientation_codes() == "SPL"  # same axes as the DICOM T1
    import nibabel as nib

    image = nib.load(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    ras = image.affine @ [10, 20, 30, 1]  # nibabel voxel (i, j, k) = ours (k, j, i) = (30, 20, 10)
    ours = volume.index_to_world([[30, 20, 10]])[0]
    np.testing.assert_allclose(ours, [ras[2], -ras[1], -ras[0]], atol=1e-4)
    assert volume.data[30, 20, 10] == np.asarray(image.dataobj)[10, 20, 30]


def test_write_then_read_nifti_round_trips(t1, tmp_path):
    part = Volume(  # a block of the real T1 with its real (oblique) affine keeps the test quick
        data=np.ascontiguousarray(t1.data[10:18, 150:350, 100:300]),
        affine=t1.affine,
        name=t1.name,
        source=t1.source,
        description=t1.description,
    )
    for name in ("t1.nii.gz", "t1.nii"):
        written = write_nifti(part, tmp_path / name)
        back = read_nifti(written)
        np.testing.assert_array_equal(back.data, part.data)
        assert back.data.dtype == part.data.dtype
        np.testing.assert_allclose(back.affine, part.affine, atol=1e-4)  # the sform is stored as float32
        assert back.description == part.description
    with pytest.raises(Harm3Error, match="exists"):
        write_nifti(t1, tmp_path / "t1.nii.gz")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial files left


def test_round_trip_keeps_an_oblique_sheared_affine(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.eye(4)
    affine[:3, :3] = np.diag([2.5, 0.7, 0.9]) + rng.normal(0, 0.2, (3, 3))
    affine[:3, 3] = [-40.0, 12.5, 88.0]
    volume = Volume(data=rng.integers(0, 500, (5, 6, 7)).astype(np.int16), affine=affine, name="x", source="synthetic")
    back = read_nifti(write_nifti(volume, tmp_path / "oblique.nii.gz"))
    np.testing.assert_array_equal(back.data, volume.data)
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)


# ------------------------------------------------------------------ bad input


def _raises_one_readable_line(path, *fragments):
    with pytest.raises(InputFileError) as error:
        read_volume(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_bad_inputs_raise_readable_errors(shared_data, tmp_path):
    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(nifti.read_bytes()[: nifti.stat().st_size // 2])
    _raises_one_readable_line(truncated, "truncated")

    text = tmp_path / "notes.nii"
    text.write_text("this is not an image\n" * 20)
    _raises_one_readable_line(text, "not a readable NIfTI")

    empty = tmp_path / "empty"
    empty.mkdir()
    _raises_one_readable_line(empty, "is empty")

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("hello")
    (foreign / "b.dcm").write_bytes(b"\0" * 300)
    _raises_one_readable_line(foreign, "holds no DICOM files")

    _raises_one_readable_line(tmp_path / "absent.nii.gz", "no such file")


def test_dicom_without_pixel_data(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PixelData
    target = tmp_path / "no_pixels.dcm"
    ds.save_as(target, enforce_file_format=True)
    assert is_mri_path(target)  # its header says MR image …
    _raises_one_readable_line(target, "no pixel data")  # … reading says what is wrong


def test_whole_slide_dicom_and_other_files_are_not_mri(shared_data, t1):
    wsi = real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm")
    assert not is_mri_path(wsi)
    with pytest.raises(InputFileError, match="whole-slide"):
        dicom_series.read_dicom_files([wsi], source=str(wsi))
    assert not is_mri_path(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct"))
    assert not is_mri_path(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"))
    _raises_one_readable_line(wsi, "whole-slide")
    _raises_one_readable_line(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"), "RTSTRUCT", "open it as a mask")
    assert not is_mri_path(real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs"))
    assert not is_mri_path("/no/such/path.dcm")
    assert is_mri_path(real_file(shared_data, "mri/sts001_dicom/T1"))
    assert is_mri_path(real_file(shared_data, "mri/sts001_dicom/T2/1-07.dcm"))
    assert is_mri_path(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))


# ------------------------------------------------------------------ harm3 info


def _info(paths) -> str:
    """Run the ``info`` command through its own parser (independent of other commands)."""
    parser = argparse.ArgumentParser()
    info.register(parser.add_subparsers())
    args = parser.parse_args(["info", *map(str, paths)])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    return buffer.getvalue()


def test_cli_info_summarises_volumes_masks_and_folders(shared_data):
    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    mask = real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz")
    rtstruct = real_file(shared_data, "mri/sts001_dicom/T2_rtstruct/1-1.dcm")
    study = real_file(shared_data, "mri/sts001_dicom")
    out = _info([nifti, mask, rtstruct, study])
    assert "59 × 158 × 174" in out and "3.27 × 0.977 × 0.977 mm" in out and "SPL" in out
    assert "label 1 'mask': 365.31 mL" in out
    assert "'GTV_Mass': 364.9" in out and "'GTV_Edema': 579.2" in out
    assert "4 DICOM series" in out and T1_DESCRIPTION in out and "40 files in T2/" in out


def test_cli_info_bad_path_exits_2(tmp_path, capsys):
    """Through the real ``harm3`` entry point: one error line, exit status 2."""
    assert harm3_main(["info", str(tmp_path / "absent.nii")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harm3: error: ") and "no such file" in err and err.count("\n") == 1
    truncated = tmp_path / "half.nii.gz"
    truncated.write_bytes(gzip.compress(b"\0" * 4000)[:30])
    assert harm3_main(["info", str(truncated)]) == 2
    assert "harm3: error:" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert harm3_main(["info", str(empty)]) == 2


def test_cli_info_slide_uses_the_slide_reader(shared_data):
    pytest.importorskip("napari_harm3.core.io.wsi")
    out = _info([real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm")])
    assert "whole-slide image" in out and "1680×1547" in out and "15.8" in out


def test_copy_of_series_reads_like_the_original(shared_data, tmp_path, t2):
    """Files copied (not linked) to a new folder read identically — no dependence on names."""
    for index, source in enumerate(sorted(real_file(shared_data, "mri/sts001_dicom/T2").glob("*.dcm"))):
        shutil.copy(source, tmp_path / f"slice_{(index * 7919) % 40:02d}.dcm")  # scrambled names
    copy = read_volume(tmp_path)
    np.testing.assert_array_equal(copy.data, t2.data)
    np.testing.assert_allclose(copy.affine, t2.affine)
