"""Planes, edge letters and reslicing (core, no Qt): a phantom with balls on the patient's left,
anterior and superior sides, acquired in every orientation variant (axial, axial stored flipped,
coronal, sagittal, oblique; NIfTI through its sform or its qform, DICOM through its LPS
geometry), must show each ball on the edge its letter names, in all three planes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from napari_harm3.core.io.dicom_write import DicomStudy, write_volume_dicom
from napari_harm3.core.io.mri import (
    Volume,
    lps_affine_to_nifti,
    read_nifti,
    read_volume,
)
from napari_harm3.core.mri.orientation import (
    PLANES,
    acquisition_plane,
    dims_order,
    direction_letters,
    edge_letters,
    plane_image,
    plane_letters,
    plane_of_order,
    plane_views,
    start_point,
)
from napari_harm3.core.mri.reslice import (
    AS_IS,
    FLIPPED,
    REORIENTED,
    RESLICED,
    axis_permutation,
    place_on,
    place_reference,
    reorient,
    reslice,
)
from napari_harm3.core.synth.orientation_phantom import (
    MARKERS,
    VARIANTS,
    orientation_phantom,
)

#: the markers a plane shows when it passes through the world origin
IN_PLANE = {"axial": ("L", "A"), "coronal": ("L", "S"), "sagittal": ("A", "S")}
OPPOSITE = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}


def marker_sides(image: np.ndarray, letters: dict, threshold: float) -> dict:
    """{marker letter: edge of the picture its ball lies towards}, balls told apart by size."""
    labels, n = ndimage.label(image > threshold)
    assert n == 2, f"expected two balls in the picture, found {n}"
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=[1, 2])
    centres = ndimage.center_of_mass(np.ones_like(labels), labels, [1, 2])
    middle = (np.asarray(image.shape) - 1) / 2
    out = {}
    for area, centre in zip(areas, centres):
        dy, dx = np.asarray(centre) - middle
        if abs(dy) > abs(dx):
            out[area] = "bottom" if dy > 0 else "top"
        else:
            out[area] = "right" if dx > 0 else "left"
    return out


def check_sides(image, plane, letters, threshold):
    sides = marker_sides(image, letters, threshold)
    big, small = sorted(IN_PLANE[plane], key=lambda m: -MARKERS[m][1])
    found = dict(zip((big, small), [sides[a] for a in sorted(sides, reverse=True)]))
    for marker, edge in found.items():
        assert letters[edge] == marker, (plane, marker, edge, letters)
        assert letters[OPPOSITE[edge]] != marker


def test_plane_letters_and_dims_order():
    assert plane_letters("axial") == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert plane_letters("coronal") == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert plane_letters("sagittal") == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    assert [dims_order(p) for p in PLANES] == [(0, 1, 2), (1, 0, 2), (2, 0, 1)]
    assert dims_order("coronal", 4) == (0, 2, 1, 3)
    assert [plane_of_order(dims_order(p, 4)) for p in PLANES] == list(PLANES)
    assert plane_of_order((0, 2, 1)) is None
    assert direction_letters((0.0, -0.4, 1.0)) == "LA" and direction_letters((0, 0.1, -1)) == "R"
    with pytest.raises(ValueError, match="unknown plane"):
        dims_order("transverse")


def test_edge_letters_of_a_raw_dicom_and_nifti_slice():
    """Letters from a file's own affine: a DICOM axial slice (rows to P, columns to L) and the
    same anatomy stored as NIfTI RAS (read into LPS: columns run to the patient's right)."""
    dicom_axial = orientation_phantom("axial").affine
    assert edge_letters(dicom_axial, (1, 2)) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    nifti_axial = orientation_phantom("axial flipped").affine
    assert edge_letters(nifti_axial, (1, 2)) == {"top": "P", "bottom": "A", "left": "L", "right": "R"}
    coronal = orientation_phantom("coronal").affine  # rows run inferior: superior on top
    assert edge_letters(coronal, (1, 2)) == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert [acquisition_plane(orientation_phantom(v).affine) for v in VARIANTS] == [
        "axial", "axial", "coronal", "sagittal", "oblique"]


def test_reorient_is_exact_and_reslice_keeps_world_positions():
    coronal = orientation_phantom("coronal")
    moved, affine = reorient(coronal.data, coronal.affine)
    assert axis_permutation(affine) == ((0, 1, 2), (1, 1, 1)) and np.all(np.diag(affine)[:3] > 0)
    rng = np.random.default_rng(1)
    for index in rng.integers(0, 40, (20, 3)):
        index = np.minimum(index, np.asarray(coronal.shape) - 1)
        world = coronal.affine @ [*index, 1.0]
        new_index = np.round(np.linalg.solve(affine, world)[:3]).astype(int)
        assert moved[tuple(new_index)] == coronal.data[tuple(index)]
    axial = orientation_phantom("axial")
    _, grid = place_reference(axial.data, axial.affine, "T1-pre")
    again = reslice(moved, affine, grid)  # trilinear does not care how the source is stored
    np.testing.assert_allclose(again, place_on(coronal.data, coronal.affine, grid).data, atol=1e-2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_markers_on_their_lettered_sides_in_every_plane(variant):
    reference = orientation_phantom("axial")
    placed_ref, grid = place_reference(reference.data, reference.affine, "T1-pre")
    assert placed_ref.how == AS_IS
    volume = orientation_phantom(variant)
    placed = place_on(volume.data, volume.affine, grid)
    expected = {"axial": AS_IS, "axial flipped": FLIPPED}.get(variant, RESLICED)
    assert placed.how == expected
    if placed.how == RESLICED:
        assert placed.onto == "T1-pre" and placed.data.shape == grid.shape
    for plane in PLANES:
        check_sides(plane_image(placed.data, placed.affine, plane, (0, 0, 0)), plane, plane_letters(plane), 500)


@pytest.mark.parametrize("variant", ["coronal", "oblique"])
def test_a_reference_in_another_plane_is_reoriented_or_resliced_onto_its_box(variant):
    volume = orientation_phantom(variant)
    placed, grid = place_reference(volume.data, volume.affine, "T1-pre")
    assert placed.how == (REORIENTED if variant == "coronal" else RESLICED)
    assert np.allclose(grid.affine[:3, :3], np.diag(np.diag(grid.affine)[:3])) and min(grid.spacing) > 0
    for plane in PLANES:
        check_sides(plane_image(placed.data, placed.affine, plane, (0, 0, 0)), plane, plane_letters(plane), 500)


def _nifti(volume: Volume, path, form: str, flip_i: bool):
    """``volume`` written as NIfTI with its orientation in the sform only or the qform only,
    optionally stored with the first file axis (i) reversed."""
    ras = lps_affine_to_nifti(volume.affine)
    data = np.asarray(volume.data).transpose(2, 1, 0)
    if flip_i:
        data = data[::-1]
        ras = ras @ np.array([[-1, 0, 0, data.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    image = nib.Nifti1Image(np.ascontiguousarray(data), None)
    if form == "sform":
        image.header.set_sform(ras, code=1)
        image.header.set_qform(None, code=0)
    else:
        image.header.set_qform(ras, code=1)
        image.header.set_sform(None, code=0)
    nib.save(image, str(path))
    return path


@pytest.mark.parametrize("form, flip_i, variant", [("sform", False, "sagittal"), ("qform", True, "axial"),
                                                    ("sform", True, "oblique"), ("qform", False, "coronal")])
def test_nifti_sform_and_qform_files_show_markers_on_their_sides(tmp_path, form, flip_i, variant):
    reference = orientation_phantom("axial")
    _, grid = place_reference(reference.data, reference.affine, "T1-pre")
    read = read_nifti(_nifti(orientation_phantom(variant), tmp_path / "phantom.nii.gz", form, flip_i))
    assert read.metadata[f"{form}_code"] == 1
    placed = place_on(read.data, read.affine, grid)
    for plane in PLANES:
        check_sides(plane_image(placed.data, placed.affine, plane, (0, 0, 0)), plane, plane_letters(plane), 500)


def test_dicom_coronal_series_shows_markers_on_their_sides(tmp_path):
    study = DicomStudy(study_uid="2.25.1234", patient_id="ORIENT-1")
    folder = write_volume_dicom(orientation_phantom("coronal", spacing=(4.0, 2.0, 2.0)), tmp_path / "cor", study,
                                series_description="coronal T2")
    read = read_volume(folder)
    assert acquisition_plane(read.affine) == "coronal"
    reference = orientation_phantom("axial")
    _, grid = place_reference(reference.data, reference.affine, "T1-pre")
    placed = place_on(read.data, read.affine, grid)
    assert placed.how == RESLICED
    for plane in PLANES:
        check_sides(plane_image(placed.data, placed.affine, plane, (0, 0, 0)), plane, plane_letters(plane), 500)


def test_a_slight_tilt_stays_on_its_own_voxels_a_larger_one_is_resliced():
    """Real scans are tilted a little (STS_001: 2°): shown as acquired, like a PACS; a volume
    turned 10° (a registration, an oblique acquisition) is resliced."""
    from napari_harm3.core.synth.motion import rotation_matrix

    reference = orientation_phantom("axial")
    _, grid = place_reference(reference.data, reference.affine, "T1-pre")
    for degrees, how in ((2.0, AS_IS), (10.0, RESLICED)):
        tilted = reference.affine.copy()
        tilted[:3, :3] = rotation_matrix((0.0, 1.0, 0.0), degrees) @ tilted[:3, :3]
        assert place_on(reference.data, tilted, grid).how == how


def test_case_volumes_for_display_reslice_other_planes_onto_the_reference():
    from napari_harm3.core.io.masks import LabelVolume
    from napari_harm3.core.mri.case_volumes import CaseVolumes, for_display

    t1, t2 = orientation_phantom("axial"), orientation_phantom("coronal", spacing=(4.0, 2.0, 2.0))
    mask = LabelVolume(data=(t2.data > 0).astype(np.uint8), affine=t2.affine, name="tumour", source="<test>",
                       label_names={1: "balls"})
    read = CaseVolumes(volumes={"t1_pre": t1, "t2_pre": t2}, masks={"t2_pre": mask})
    shown = for_display(read)
    assert shown.volumes["t1_pre"].data is t1.data  # the reference as read
    assert shown.volumes["t2_pre"].shape == t1.shape
    assert shown.volumes["t2_pre"].metadata["resliced_onto"] == "T1-pre"
    np.testing.assert_allclose(shown.volumes["t2_pre"].metadata["source_affine"], t2.affine)
    shown_mask = shown.masks["t2_pre"]
    assert shown_mask.shape == t1.shape and shown_mask.data.dtype == np.uint8 and shown_mask.label_names == {1: "balls"}
    assert set(np.unique(shown_mask.data)) == {0, 1}
    assert read.volumes["t2_pre"] is t2  # what the models read is untouched
    for plane in PLANES:
        check_sides(plane_image(shown.volumes["t2_pre"].data, t1.affine, plane, (0, 0, 0)), plane,
                    plane_letters(plane), 500)


def test_three_plane_layout_and_its_start_point():
    views = plane_views()
    assert list(views) == list(PLANES)
    for plane, view in views.items():
        assert view["dims_order"] == dims_order(plane) and view["letters"] == plane_letters(plane)
    assert views["coronal"]["orientation2d"] == ("up", "right")
    affine = np.diag([3.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-30.0, -40.0, -40.0)           # voxel centres z -30..27, y and x -40..38
    shape = (20, 40, 40)
    assert start_point(affine, shape, (0.0, 5.0, -7.0)) == (0.0, 5.0, -7.0)   # inside: where the grid reads
    assert start_point(affine, shape, (0.0, 5.0, 60.0)) == (-1.5, -1.0, -1.0)  # outside: the centre
    assert start_point(affine, shape, (5.0, 0.0, 0.0, 0.0))[0] == 0.0           # leading axes ignored
