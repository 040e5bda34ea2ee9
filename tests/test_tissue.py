"""Tissue segmentation: presets, overrides, holes, real slides, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import real_file
from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.wsi.slide_source import open_wsi
from napari_harm3.core.wsi.tissue import (PRESETS, TissueParams, segment_tissue, segment_tissue_image,
                                          tissue_overlay)


def ring_image(size=400):
    """A pink disc (radius 150) with a white hole (radius 50) on white."""
    image = np.full((size, size, 3), 250, np.uint8)
    cv2.circle(image, (size // 2, size // 2), 150, (190, 110, 160), -1)
    cv2.circle(image, (size // 2, size // 2), 50, (250, 250, 250), -1)
    return image


def test_presets_are_clams_and_overrides_win():
    assert PRESETS["tcga"] == dict(sthresh=8, mthresh=7, close=4, a_t=16, a_h=4, max_n_holes=8)
    assert PRESETS["biopsy"] == dict(sthresh=15, mthresh=11, close=2, a_t=1, a_h=1, max_n_holes=2)
    assert PRESETS["resection"] == dict(sthresh=15, mthresh=11, close=4, a_t=100, a_h=16, max_n_holes=8)
    params = TissueParams.from_preset("biopsy", a_t=3, close=None)
    assert (params.a_t, params.close, params.sthresh) == (3, 2, 15)
    assert TissueParams() == TissueParams(sthresh=8, mthresh=7, close=4, a_t=100, a_h=16, max_n_holes=8)


@pytest.mark.parametrize("bad", [dict(preset="frozen"), dict(mthresh=6), dict(colour="blue")])
def test_bad_parameters_are_errors(bad):
    preset = bad.pop("preset", None)
    with pytest.raises(Harm3Error):
        TissueParams.from_preset(preset, **bad)


def test_ring_gives_one_contour_with_its_hole_in_level0_pixels():
    params = TissueParams.from_preset("biopsy", a_t=0.01, a_h=0.001)
    tissue = segment_tissue_image(ring_image(), scale=(2.0, 2.0), params=params)
    assert len(tissue) == 1 and len(tissue.holes[0]) == 1
    x, y, w, h = cv2.boundingRect(tissue.contours[0])
    assert abs(w - 600) <= 8 and abs(x - 100) <= 6  # 2× the 300-px disc
    overlay = tissue_overlay(tissue) > 0
    yy, xx = np.mgrid[:400, :400]
    r = np.hypot(yy - 200, xx - 200)
    truth = (r <= 150) & (r > 50)
    assert (overlay & truth).sum() / (overlay | truth).sum() > 0.95


def test_area_threshold_in_512_patch_units_drops_small_tissue():
    # disc area ≈ 62,800 px at scale 1 → 0.24 patches of 512²; kept at a_t=0.2, dropped at 0.3
    image = ring_image()
    assert len(segment_tissue_image(image, params=TissueParams.from_preset("biopsy", a_t=0.2))) == 1
    assert len(segment_tissue_image(image, params=TissueParams.from_preset("biopsy", a_t=0.3))) == 0


def test_otsu_and_max_holes():
    image = ring_image()
    for k in range(3):
        cv2.circle(image, (120 + 80 * k, 300), 12, (250, 250, 250), -1)
    params = TissueParams.from_preset("biopsy", a_t=0.01, a_h=0.0001, max_n_holes=2, use_otsu=True)
    tissue = segment_tissue_image(image, params=params)
    assert len(tissue) == 1 and len(tissue.holes[0]) == 2
    areas = [cv2.contourArea(h) for h in tissue.holes[0]]
    assert areas[0] > 5000 and areas == sorted(areas, reverse=True)  # the big hole is kept first


@pytest.mark.parametrize("name", ["hamamatsu-dapi.ndpi", "tcga-cr-7395-hnsc-jp2k.svs", "cptac-brca-lowres-dicom.dcm"])
def test_real_slides_have_tissue(shared_data, name):
    tissue = segment_tissue(open_wsi(real_file(shared_data, f"wsi/{name}")), TissueParams.from_preset("biopsy"))
    assert len(tissue) >= 1
    fraction = (tissue_overlay(tissue) > 0).mean()
    # the NDPI is a fluorescence (DAPI) scan: its dark background is saturated, so all is "tissue"
    assert 0.02 < fraction <= (1.0 if name.endswith(".ndpi") else 0.98)


def test_bad_slides_give_one_line_errors(tmp_path):
    fake = tmp_path / "fake.svs"
    fake.write_text("not a slide")
    for path in (fake, tmp_path / "missing.svs"):
        with pytest.raises(InputFileError) as info:
            open_wsi(path)
        assert "\n" not in str(info.value) and str(path.name) in str(info.value)
