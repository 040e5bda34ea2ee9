"""napari reader glue for MRI volumes and masks: which paths each reader takes, the LayerData
it returns, and (under Xvfb) that a bad file raises a clear error while the viewer keeps
working."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

from napari_harm3._reader_mri import get_mask_reader, get_mri_reader
from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.mri import read_volume

T1_DESCRIPTION = "AXIAL SE T1 - RESEARCH"
T2_DESCRIPTION = "AXIAL SE T2 FAT SAT - RESEARCH"


def test_readers_take_only_their_paths(shared_data, tmp_path):
    t1_folder = real_file(shared_data, "mri/sts001_dicom/T1")
    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    mask = real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz")
    rtstruct_folder = real_file(shared_data, "mri/sts001_dicom/T1_rtstruct")
    wsi = real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm")
    svs = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    text = tmp_path / "notes.txt"
    text.write_text("hello")

    for path in (t1_folder, t1_folder / "1-05.dcm", nifti, str(nifti), [str(nifti)]):
        assert callable(get_mri_reader(path)), path
    for path in (wsi, svs, rtstruct_folder, rtstruct_folder / "1-1.dcm", text, tmp_path / "absent", [str(nifti)] * 2, None):
        assert get_mri_reader(path) is None, path

    for path in (mask, rtstruct_folder, rtstruct_folder / "1-1.dcm"):
        assert callable(get_mask_reader(path)), path
    for path in (nifti, t1_folder, wsi, svs, text, tmp_path / "absent"):  # t1.nii.gz is float: an image
        assert get_mask_reader(path) is None, path


def test_dicom_folder_gives_one_windowed_image_layer(shared_data):
    folder = real_file(shared_data, "mri/sts001_dicom/T1")
    layers = get_mri_reader(str(folder))(str(folder))
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.shape == (40, 512, 512)
    assert kwargs["name"] == T1_DESCRIPTION and kwargs["colormap"] == "gray"
    assert kwargs["affine"].shape == (4, 4) and kwargs["affine"][0, 0] == pytest.approx(5.1967, abs=1e-3)
    low, high = kwargs["contrast_limits"]
    assert 0 < low < high < data.max()
    metadata = kwargs["metadata"]
    assert metadata["volume_source"] == str(folder) and metadata["description"] == T1_DESCRIPTION
    assert metadata["series_uid"].startswith("1.3.6.1.4.1.14519")
    assert metadata["spacing"] == pytest.approx((5.2, 0.390625, 0.390625), abs=1e-4)


def test_folder_with_two_series_gives_two_layers(shared_data, tmp_path):
    for name in ("T1", "T2"):
        for source in real_file(shared_data, f"mri/sts001_dicom/{name}").glob("*.dcm"):
            (tmp_path / f"{name}-{source.name}").symlink_to(source)
    (tmp_path / "RS-T1.dcm").symlink_to(real_file(shared_data, "mri/sts001_dicom/T1_rtstruct/1-1.dcm"))
    layers = get_mri_reader(str(tmp_path))(str(tmp_path))
    images = [(d, kw) for d, kw, kind in layers if kind == "image"]
    assert sorted(kw["name"] for _, kw in images) == [T1_DESCRIPTION, T2_DESCRIPTION]
    assert sorted(d.shape for d, _ in images) == [(40, 384, 384), (40, 512, 512)]
    (mask, kwargs, kind), = [layer for layer in layers if layer[2] == "labels"]  # the RTSTRUCT, on T1
    assert mask.shape == (40, 512, 512) and kwargs["metadata"]["label_names"][1] == "GTV_Mass"


def test_study_folder_gives_images_and_their_masks(shared_data):
    study = real_file(shared_data, "mri/sts001_dicom")
    layers = get_mri_reader(str(study))(str(study))
    kinds = sorted((kind, kw["name"]) for _, kw, kind in layers)
    assert [k for k, _ in kinds] == ["image", "image", "labels", "labels"]
    by_series = {kw["metadata"]["series_uid"]: d.shape for d, kw, kind in layers if kind == "image"}
    for data, kwargs, kind in layers:
        if kind == "labels":  # each RTSTRUCT is drawn on its own image's grid, with its affine
            reference = kwargs["metadata"]["reference_series_uid"]
            assert data.shape == by_series[reference]
            assert kwargs["metadata"]["label_names"] == {1: "GTV_Mass", 2: "GTV_Edema"}


def test_mask_reader_layers(shared_data):
    mask = real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz")
    (data, kwargs, kind), = get_mask_reader(str(mask))(str(mask))
    assert kind == "labels" and data.dtype == np.uint8 and data.shape == (59, 158, 174)
    assert kwargs["metadata"]["label_names"] == {1: "mask"}
    assert kwargs["affine"][1, 1] == pytest.approx(0.976562, abs=1e-6)

    rtstruct = real_file(shared_data, "mri/sts001_dicom/T2_rtstruct/1-1.dcm")
    (data, kwargs, kind), = get_mask_reader(str(rtstruct))(str(rtstruct))
    assert kind == "labels" and data.shape == (40, 384, 384)
    assert kwargs["metadata"]["label_names"] == {1: "GTV_Mass", 2: "GTV_Edema"}
    assert "colormap" not in kwargs  # both ROIs are red in the file: napari's distinct colours stay


def test_reader_raises_input_file_error_on_bad_files(shared_data, tmp_path):
    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(nifti.read_bytes()[: nifti.stat().st_size // 2])
    reader = get_mri_reader(str(truncated))
    assert callable(reader)  # the checker is cheap; reading finds the damage
    with pytest.raises(InputFileError, match="truncated"):
        reader(str(truncated))


@pytest.mark.gui
def test_viewer_survives_a_bad_file_and_opens_good_ones(make_napari_viewer, shared_data, tmp_path):
    viewer = make_napari_viewer()
    nifti = real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")
    truncated = tmp_path / "broken_t1.nii.gz"
    truncated.write_bytes(nifti.read_bytes()[: nifti.stat().st_size // 2])

    with pytest.raises(Exception) as error:
        viewer.open(str(truncated), plugin="napari-harm3")
    chain, exc = [], error.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, InputFileError) for e in chain), chain
    assert "truncated" in str(error.value) or any("truncated" in str(e) for e in chain)
    assert len(viewer.layers) == 0

    folder = real_file(shared_data, "mri/sts001_dicom/T2")
    mask = real_file(shared_data, "mri/sts001_dicom/T2_rtstruct")
    viewer.open(str(folder), plugin="napari-harm3")
    viewer.open(str(mask), plugin="napari-harm3")
    image, labels = viewer.layers
    assert image.name == T2_DESCRIPTION and image.data.shape == (40, 384, 384)
    assert labels.__class__.__name__ == "Labels" and labels.metadata["label_names"][1] == "GTV_Mass"
    np.testing.assert_allclose(image.affine.affine_matrix, labels.affine.affine_matrix)
    # napari places voxels exactly where the core volume says (world mm, LPS as (z, y, x))
    volume = read_volume(folder)
    for voxel in ([0, 0, 0], [39, 383, 383], [20, 100, 300]):
        np.testing.assert_allclose(image.data_to_world(voxel), volume.index_to_world([voxel])[0], atol=1e-6)
