"""napari glue for slides: which paths are claimed, the layer data, and the viewer."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import real_file
from napari_harm3._reader_wsi import get_slide_reader, read_slides, slide_layer_data
from napari_harm3.core.errors import InputFileError
from napari_harm3.core.io.wsi import open_slide

TCGA = "wsi/tcga-cr-7395-hnsc-jp2k.svs"
NDPI = "wsi/hamamatsu-dapi.ndpi"
DICOM = "wsi/cptac-brca-lowres-dicom.dcm"


def test_reader_claims_slides_and_declines_foreign_paths(shared_data, tmp_path):
    for relative in (TCGA, NDPI, DICOM):
        assert get_slide_reader(str(real_file(shared_data, relative))) is read_slides
    mri_dir = real_file(shared_data, "mri/sts001_dicom/T1")
    assert get_slide_reader(str(sorted(p for p in mri_dir.iterdir() if p.is_file())[0])) is None
    assert get_slide_reader(str(mri_dir)) is None
    assert get_slide_reader(str(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))) is None
    (tmp_path / "notes.txt").write_text("hello")
    assert get_slide_reader(str(tmp_path / "notes.txt")) is None
    assert get_slide_reader(str(tmp_path / "missing.tif")) is None
    assert get_slide_reader(None) is None and get_slide_reader([]) is None
    # a scanner-only extension is claimed even when broken, so the user learns why it fails
    (tmp_path / "broken.svs").write_text("not really")
    assert get_slide_reader(str(tmp_path / "broken.svs")) is read_slides


def test_layer_data_with_mpp(shared_data):
    with open_slide(real_file(shared_data, NDPI)) as slide:
        data, kwargs, kind = slide_layer_data(slide)
        assert kind == "image" and kwargs["rgb"] and kwargs["multiscale"]
        assert len(data) == slide.level_count and data[0].shape == (4864, 3968, 3)
        assert kwargs["scale"] == pytest.approx((0.22818, 0.22818), abs=1e-5)
        assert kwargs["units"] == ("µm", "µm") and kwargs["name"] == "hamamatsu-dapi"
        meta = kwargs["metadata"]
        assert meta["mpp_source"] == "metadata" and meta["objective_power"] == 40
        assert meta["associated_images"] == ["macro"] and meta["backend"] == "openslide"
        assert meta["level_dimensions"][0] == (3968, 4864) and "mpp_missing" not in meta


def test_layer_data_without_mpp_stays_in_pixels(shared_data):
    with open_slide(real_file(shared_data, TCGA)) as slide:
        _, kwargs, _ = slide_layer_data(slide)
        assert kwargs["scale"] == (1.0, 1.0) and kwargs["units"] == ("pixel", "pixel")
        assert kwargs["metadata"]["mpp_missing"] is True and kwargs["metadata"]["mpp"] is None
        _, user_kwargs, _ = slide_layer_data(slide.with_mpp(0.5))
        assert user_kwargs["scale"] == (0.5, 0.5) and user_kwargs["metadata"]["mpp_source"] == "user"


@pytest.mark.gui
def test_viewer_opens_slides_warns_without_mpp_and_survives_bad_files(make_napari_viewer, shared_data, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer(show=True)
    [ndpi_layer] = viewer.open(str(real_file(shared_data, NDPI)), plugin="napari-harm3")
    assert ndpi_layer.multiscale and ndpi_layer.rgb
    assert ndpi_layer.scale == pytest.approx([0.22818, 0.22818], abs=1e-5)
    assert [str(u) for u in ndpi_layer.units] == ["micrometer", "micrometer"]

    before = len(notification_manager.records)
    [tcga_layer] = viewer.open(str(real_file(shared_data, TCGA)), plugin="napari-harm3")
    assert [str(u) for u in tcga_layer.units] == ["pixel", "pixel"]
    assert tcga_layer.metadata["mpp_missing"] is True
    warnings = [n.message for n in notification_manager.records[before:] if "microns-per-pixel" in n.message]
    assert warnings and "tcga-cr-7395-hnsc-jp2k.svs" in warnings[0] and "µm/px" in warnings[0]

    broken = tmp_path / "broken.svs"
    broken.write_bytes(real_file(shared_data, TCGA).read_bytes()[:50_000])
    with pytest.raises(InputFileError, match="broken.svs"):
        viewer.open(str(broken), plugin="napari-harm3")
    assert len(viewer.layers) == 2

    # (removing a layer here crashes Mesa under Xvfb inside vispy's glDrawArrays; not needed)
    viewer.reset_view()  # the H&E slide is on top of the dark fluorescence one
    shot = viewer.screenshot(canvas_only=True)
    assert np.asarray(shot)[..., :3].std() > 5  # the pyramid was sliced and drawn
