"""Tumour masks: RTSTRUCT rasterisation (real TCIA STS_001 contours), NIfTI label volumes,
and the NIfTI-vs-DICOM world position check of the RAS -> LPS conversion."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pydicom
import pytest
from conftest import real_file
from scipy import ndimage

from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.masks import (
    LabelVolume,
    fill_polygons_even_odd,
    looks_like_labels,
    rasterise_contours,
    read_label_volume,
    read_mask,
    read_rtstruct,
)
from napari_harm3.core.io.mri import Volume, read_nifti, read_volume


@pytest.fixture(scope="module")
def t1(shared_data) -> Volume:
    return read_volume(real_file(shared_data, "mri/sts001_dicom/T1"))


@pytest.fixture(scope="module")
def gtv_t1(shared_data, t1) -> LabelVolume:
    return read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"), reference=t1)


# ------------------------------------------------------------------ rasterising polygons


def test_even_odd_fill_keeps_holes_and_pixel_centres():
    square = lambda a, b: np.array([[a, a], [a, b], [b, b], [b, a]], float)  # noqa: E731  (row, col)
    outer_only = fill_polygons_even_odd([square(2.5, 17.5)], (20, 20))
    assert outer_only.sum() == 15 * 15  # centres 3..17 inside
    ring = fill_polygons_even_odd([square(2.5, 17.5), square(6.5, 11.5)], (20, 20))
    assert ring.sum() == 15 * 15 - 5 * 5
    assert not ring[7:12, 7:12].any() and ring[3, 3] and ring[17, 17]
    island = fill_polygons_even_odd([square(2.5, 17.5), square(6.5, 11.5), square(8.5, 9.5)], (20, 20))
    assert island.sum() == ring.sum() + 1 and island[9, 9]  # a contour in the hole fills again
    clipped = fill_polygons_even_odd([square(-5.5, 3.5)], (20, 20))
    assert clipped.sum() == 4 * 4  # contours past the edge are clipped, not wrapped
    circle = np.column_stack([50 + 30 * np.sin(t := np.linspace(0, 2 * np.pi, 400, endpoint=False)), 50 + 30 * np.cos(t)])
    assert fill_polygons_even_odd([circle], (100, 100)).sum() == pytest.approx(np.pi * 30**2, rel=0.01)


def test_contours_map_through_an_oblique_affine():
    """World (x, y, z) contour points reach the right voxels through a rotated, shifted grid."""
    angle = np.deg2rad(30)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([3.0, 0.5, 0.5])
    affine[:3, 3] = [-20.0, 5.0, 7.0]
    grid = Volume(data=np.zeros((10, 80, 80), np.uint8), affine=affine, name="grid", source="synthetic")
    # a 20 x 10 mm rectangle on slice 4, plus a 4 x 4 mm hole, given in world (x, y, z)
    def world_rect(j0, j1, i0, i1, k=4):
        corners = np.array([[k, j0, i0], [k, j0, i1], [k, j1, i1], [k, j1, i0]], float)
        return grid.index_to_world(corners)[:, ::-1]  # (z, y, x) -> DICOM (x, y, z)

    mask, outside = rasterise_contours([world_rect(10.5, 50.5, 20.5, 40.5), world_rect(25.5, 33.5, 25.5, 33.5)], grid)
    assert outside == 0
    assert mask[4].sum() == 40 * 20 - 8 * 8 and mask.sum() == mask[4].sum()
    assert not mask[4, 26:34, 26:34].any()
    off_grid, outside = rasterise_contours([world_rect(10.5, 50.5, 20.5, 40.5, k=25)], grid)
    assert outside == 1 and not off_grid.any()


# ------------------------------------------------------------------ real RTSTRUCTs


def test_rtstruct_on_t1(gtv_t1, t1):
    assert gtv_t1.label_names == {1: "GTV_Mass", 2: "GTV_Edema"}
    assert gtv_t1.shape == t1.shape and np.array_equal(gtv_t1.affine, t1.affine)
    assert gtv_t1.frame_of_reference_uid == t1.frame_of_reference_uid
    volumes = gtv_t1.metadata["roi_volumes_ml"]
    assert volumes["GTV_Mass"] == pytest.approx(364.8, abs=1.0)
    assert volumes["GTV_Edema"] == pytest.approx(579.8, abs=1.0)
    # the mass lies inside the oedema outline; painted last (smaller), it keeps all its voxels
    assert gtv_t1.volume_ml(1) == pytest.approx(volumes["GTV_Mass"])
    assert gtv_t1.volume_ml(2) == pytest.approx(volumes["GTV_Edema"] - volumes["GTV_Mass"], rel=0.02)
    # 20 Mass contours on 20 different slices (one contour each), none off the grid
    assert len(np.unique(np.nonzero(gtv_t1.data == 1)[0])) == 20
    assert gtv_t1.metadata["contours_outside_grid"] == 0


def test_t1_and_t2_rtstructs_agree_in_world_mm(gtv_t1, shared_data):
    """Two clinicians' files on two grids: same tumour position and volume in world mm."""
    gtv_t2 = read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T2_rtstruct"))  # finds T2 itself
    assert gtv_t2.shape == (40, 384, 384)
    distance = np.linalg.norm(gtv_t1.centroid_world(1) - gtv_t2.centroid_world(1))
    assert distance < 2.0  # measured 0.5 mm
    v1, v2 = gtv_t1.metadata["roi_volumes_ml"], gtv_t2.metadata["roi_volumes_ml"]
    assert v2["GTV_Mass"] == pytest.approx(v1["GTV_Mass"], rel=0.02)
    assert v2["GTV_Edema"] == pytest.approx(v1["GTV_Edema"], rel=0.02)


def test_reference_series_is_found_next_to_the_rtstruct(shared_data, t1):
    labels = read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct"))
    assert labels.metadata["reference_series_uid"] == t1.series_uid
    assert labels.shape == t1.shape
    assert read_mask(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm")).label_names[1] == "GTV_Mass"


def test_missing_reference_series_is_a_clear_error(shared_data, tmp_path):
    lonely = tmp_path / "case" / "rtstruct"
    lonely.mkdir(parents=True)
    shutil.copy(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"), lonely / "RS.dcm")
    with pytest.raises(InputFileError) as error:
        read_rtstruct(lonely / "RS.dcm")
    message = str(error.value)
    assert "was not found" in message and "reference" in message and "\n" not in message


def test_other_frame_of_reference_is_refused(shared_data, t1):
    other = dataclasses.replace(t1, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(InputFileError, match="frame of reference"):
        read_rtstruct(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct"), reference=other)


def test_nested_contours_in_a_real_file_make_a_hole(shared_data, t1, tmp_path):
    """End to end through a written RTSTRUCT: an outer and an inner contour of one ROI on one
    T1 slice give a ring (even-odd), while the other ROI is untouched."""
    ds = pydicom.dcmread(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"))
    k = 20

    def contour(j0, j1, i0, i1):
        corners = np.array([[k, j0, i0], [k, j0, i1], [k, j1, i1], [k, j1, i0]], float)
        item = pydicom.Dataset()
        item.ContourGeometricType = "CLOSED_PLANAR"
        item.NumberOfContourPoints = 4
        item.ContourData = [f"{v:.4f}" for v in t1.index_to_world(corners)[:, ::-1].ravel()]
        return item

    mass = next(r for r in ds.ROIContourSequence if int(r.ReferencedROINumber) == 1)
    mass.ContourSequence = pydicom.Sequence([contour(99.5, 199.5, 99.5, 199.5), contour(129.5, 169.5, 129.5, 169.5)])
    written = tmp_path / "RS_ring.dcm"
    ds.save_as(written)
    labels = read_rtstruct(written, reference=t1)
    ring = labels.data[k] == 1
    assert ring.sum() == 100 * 100 - 40 * 40 and not ring[130:170, 130:170].any()
    assert np.count_nonzero(labels.data == 1) == ring.sum()
    assert labels.metadata["roi_volumes_ml"]["GTV_Edema"] == pytest.approx(579.8, abs=1.0)


# ------------------------------------------------------------------ NIfTI label volumes


def test_nifti_tumour_mask_reads_as_labels(shared_data):
    mask = read_label_volume(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz"))
    assert isinstance(mask, LabelVolume) and mask.data.dtype == np.uint8
    assert mask.shape == (59, 158, 174) and mask.labels() == [1]
    assert mask.label_names == {1: "mask"}
    assert mask.volume_ml(1) == pytest.approx(365.31, abs=0.01)
    assert read_mask(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz")).labels() == [1]


def test_an_image_is_not_a_label_volume(shared_data):
    assert not looks_like_labels(read_nifti(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")).data)
    with pytest.raises(InputFileError, match="not a label volume"):
        read_label_volume(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    assert looks_like_labels(np.array([0.0, 1.0, 2.0])) and not looks_like_labels(np.array([0.0, 0.5]))
    assert not looks_like_labels(np.array([-1, 0, 1]))


STEP_MM = 3.0


def _on_world_grid(volume, origin, shape):
    index = np.indices(shape).reshape(3, -1).T * STEP_MM + origin
    values = ndimage.map_coordinates(np.asarray(volume.data, np.float32), volume.world_to_index(index).T, order=1, cval=0)
    return values.reshape(shape)


def _translation_between(fixed: Volume, moving: Volume) -> np.ndarray:
    """World offset d (z, y, x) mm such that ``moving`` placed at world + d best matches
    ``fixed``: FFT cross-correlation of both images sampled on 3-mm world grids."""
    grids = []
    for volume in (fixed, moving):
        low, high = volume.world_bounds()
        grids.append((low, tuple(int(n) for n in np.ceil((high - low) / STEP_MM) + 1)))
    shape = tuple(np.add(grids[0][1], grids[1][1]))
    padded = []
    for volume, (low, size) in zip((fixed, moving), grids):
        image = _on_world_grid(volume, low, size)
        canvas = np.zeros(shape, np.float32)
        canvas[tuple(slice(0, n) for n in size)] = image / image.std()
        padded.append(canvas)
    product = np.fft.rfftn(padded[0]) * np.conj(np.fft.rfftn(padded[1]))
    correlation = np.fft.irfftn(product, s=shape, axes=(0, 1, 2))
    shift = np.array(np.unravel_index(np.argmax(correlation), shape))
    shift = np.where(shift > np.array(shape) // 2, shift - np.array(shape), shift)
    return grids[0][0] + shift * STEP_MM - grids[1][0]


def test_nifti_mask_and_rtstruct_tumour_agree_in_world_position(shared_data, t1, gtv_t1):
    """The RAS -> LPS conversion, checked against the DICOM series of the same patient.

    The NIfTI (cropped, resampled, N4-corrected T1) has the same volume of tumour as the
    RTSTRUCT's GTV_Mass, but its header origin is not the scanner's: its world position is
    ~779 mm lower in z (and ~12-15 mm off in y and x) than the DICOM. So the check is: find
    that offset from the *images* alone (NIfTI T1 against DICOM T1), move the NIfTI mask by
    it, and the mask's centroid must land on the RTSTRUCT tumour (measured 4.2 mm away).
    A conversion that mirrored an axis would land tens of mm away (mirrored x: ~62 mm).
    """
    image = read_nifti(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    mask = read_label_volume(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz"))
    assert mask.volume_ml(1) == pytest.approx(gtv_t1.metadata["roi_volumes_ml"]["GTV_Mass"], rel=0.01)
    target = gtv_t1.centroid_world(1)
    offset = _translation_between(t1, image)
    assert abs(offset[0] - 779) < 10 and np.all(np.abs(offset[1:]) < 25)  # the header's displaced origin
    distance = np.linalg.norm(mask.centroid_world(1) + offset - target)
    assert distance < 7.0

    mirrored_image = dataclasses.replace(image, data=np.ascontiguousarray(image.data[:, :, ::-1]))
    mirrored_mask = dataclasses.replace(mask, data=np.ascontiguousarray(mask.data[:, :, ::-1]))
    mirrored_offset = _translation_between(t1, mirrored_image)
    assert np.linalg.norm(mirrored_mask.centroid_world(1) + mirrored_offset - target) > 20.0
