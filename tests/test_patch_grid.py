"""Patch coordinates equal CLAM's, element for element and in order.

``clam_reference_*`` below follow CLAM's documented algorithm literally (mahmoodlab/CLAM,
``WholeSlideImage.segmentTissue`` / ``process_contour`` / ``isInContours`` and
``util_classes.isInContourV1/V2/V3_Easy/V3_Hard``): OpenCV contours with the RETR_CCOMP
hierarchy, contour and hole filtering in Python loops, and one ``cv2.pointPolygonTest`` call
per candidate patch. Our vectorised pipeline must give the same list.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import real_file
from napari_harm3.core.errors import Harm3Error, MissingMetadataError
from napari_harm3.core.wsi.patch_grid import candidate_grid, patch_coordinates, polygon_test
from napari_harm3.core.wsi.patching import patch_slide
from napari_harm3.core.wsi.slide_source import open_wsi
from napari_harm3.core.wsi.tissue import TissueParams, level_scale, segmentation_level

CLAM_FUNCTIONS = ("four_pt", "four_pt_hard", "center", "basic")


# --- a literal, per-patch reference ---------------------------------------------------------
def clam_reference_tissue(rgb, scale, p: TissueParams):
    """CLAM's segmentTissue, step by step (loops, no shortcuts)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    med = cv2.medianBlur(hsv[:, :, 1], p.mthresh)
    if p.use_otsu:
        _, binary = cv2.threshold(med, 0, p.sthresh_up, cv2.THRESH_OTSU + cv2.THRESH_BINARY)
    else:
        _, binary = cv2.threshold(med, p.sthresh, p.sthresh_up, cv2.THRESH_BINARY)
    if p.close > 0:
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((p.close, p.close), np.uint8))
    unit = int(p.ref_patch_size ** 2 / (scale[0] * scale[1]))
    a_t, a_h = p.a_t * unit, p.a_h * unit
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return [], []
    parent = np.squeeze(hierarchy, axis=0)[:, 3]
    tissue, holes = [], []
    for i in range(len(contours)):
        if parent[i] != -1:
            continue
        children = [j for j in range(len(contours)) if parent[j] == i]
        area = cv2.contourArea(contours[i]) - sum(cv2.contourArea(contours[j]) for j in children)
        if area == 0 or not area > a_t:
            continue
        tissue.append(contours[i])
        ranked = sorted([contours[j] for j in children], key=cv2.contourArea, reverse=True)[:p.max_n_holes]
        holes.append([h for h in ranked if cv2.contourArea(h) > a_h])
    scaled = [np.array(c * np.array(scale), dtype="int32") for c in tissue]
    scaled_holes = [[np.array(h * np.array(scale), dtype="int32") for h in hs] for hs in holes]
    return scaled, scaled_holes


def clam_reference_inside(contour, x, y, size, rule):
    """isInContourV1 / V2 / V3_Easy / V3_Hard for one candidate, plus the paper's corner rule."""
    def test(px, py):
        return cv2.pointPolygonTest(contour, (float(px), float(py)), False)

    if rule == "basic":
        return test(x, y) >= 0
    centre = (x + size // 2, y + size // 2)
    if rule == "center":
        return test(*centre) >= 0
    shift = int(size // 2 * 0.5)
    points = [(centre[0] - shift, centre[1] - shift), (centre[0] + shift, centre[1] + shift),
              (centre[0] + shift, centre[1] - shift), (centre[0] - shift, centre[1] + shift)] if shift > 0 else [centre]
    results = [test(*pt) >= 0 for pt in points]
    return any(results) if rule == "four_pt" else all(results)


def clam_reference_coords(contours, holes, size, rule, level0_dim=None):
    """process_contours: per contour, per candidate (x outer, y inner), per-patch tests."""
    out = []
    for contour, contour_holes in zip(contours, holes):
        x0, y0, w, h = cv2.boundingRect(contour)
        kept = []
        for x in range(x0, x0 + w, size):
            for y in range(y0, y0 + h, size):
                if rule == "corner_any":
                    corners = [(x, y), (x + size, y), (x, y + size), (x + size, y + size)]
                    ok = any(cv2.pointPolygonTest(contour, (float(cx), float(cy)), False) >= 0
                             and not any(cv2.pointPolygonTest(hole, (float(cx), float(cy)), False) > 0
                                         for hole in contour_holes) for cx, cy in corners)
                else:
                    ok = clam_reference_inside(contour, x, y, size, rule) and not any(
                        cv2.pointPolygonTest(hole, (x + size / 2, y + size / 2), False) > 0 for hole in contour_holes)
                if ok:
                    kept.append((x, y))
        if len(kept) > 1:
            out.extend(kept)
    return np.array(out, dtype=np.int64).reshape(-1, 2)


# --- synthetic tissue ------------------------------------------------------------------------
def synthetic_tissue_image(seed=0, height=1200, width=1600):
    """Pink blobs with holes, thin bridges and specks on white (RGB uint8)."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 245, np.uint8)
    pink = (200, 120, 170)
    for _ in range(6):
        centre = (int(rng.integers(150, width - 150)), int(rng.integers(150, height - 150)))
        axes = (int(rng.integers(60, 260)), int(rng.integers(50, 200)))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, pink, -1)
        for _ in range(int(rng.integers(0, 4))):  # holes (lumina, tears)
            hole = (centre[0] + int(rng.integers(-40, 40)), centre[1] + int(rng.integers(-30, 30)))
            cv2.circle(image, hole, int(rng.integers(8, 40)), (245, 245, 245), -1)
    for _ in range(30):  # specks below the area threshold
        cv2.circle(image, (int(rng.integers(0, width)), int(rng.integers(0, height))), 3, pink, -1)
    return image


def write_synthetic_slide(path, image, mpp=0.5):
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff

    return write_pyramidal_tiff(path, image, mpp=mpp, tile_size=256, compression="lzw", overwrite=True)


# --- tests -----------------------------------------------------------------------------------
def test_polygon_test_equals_opencv_on_edges_vertices_and_half_pixels():
    rng = np.random.default_rng(1)
    mask = np.zeros((80, 80), np.uint8)
    for _ in range(8):
        cv2.circle(mask, tuple(int(v) for v in rng.integers(5, 75, 2)), int(rng.integers(3, 20)), 255, -1)
    contours, _ = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    points = np.stack(np.meshgrid(np.arange(-1, 82, 0.5), np.arange(-1, 82, 1.0)), -1).reshape(-1, 2)
    for contour in contours:
        expected = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) for x, y in points]
        assert np.array_equal(polygon_test(points, contour), np.array(expected, dtype=np.int8))


def test_candidates_run_x_outer_y_inner():
    square = np.array([[[10, 20]], [[10, 619]], [[609, 619]], [[609, 20]]], np.int32)
    grid = candidate_grid(square, 256, 256)
    assert grid[:3].tolist() == [[10, 20], [10, 276], [10, 532]]
    assert grid[3].tolist() == [266, 20]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rule", CLAM_FUNCTIONS + ("corner_any",))
def test_synthetic_coords_equal_clam_reference(seed, rule):
    from napari_harm3.core.wsi.tissue import segment_tissue_image

    image = synthetic_tissue_image(seed)
    params = TissueParams.from_preset("biopsy", a_t=0.5, a_h=0.01)
    scale = (4.0, 4.0)  # as if this were the 1/4 level of a 6400×4800 slide
    tissue = segment_tissue_image(image, scale, params)
    ref_contours, ref_holes = clam_reference_tissue(image, scale, params)
    assert len(tissue.contours) == len(ref_contours) > 0
    assert sum(map(len, tissue.holes)) == sum(map(len, ref_holes)) > 0
    for ours, ref in zip(tissue.contours, ref_contours):
        assert np.array_equal(ours, ref)
    for size in (256, 223):  # odd size: CLAM's hole test then probes half pixels
        ours = patch_coordinates(tissue.contours, tissue.holes, size, contour_fn=rule)
        expected = clam_reference_coords(ref_contours, ref_holes, size, rule)
        assert len(expected) > 0
        assert np.array_equal(ours, expected)


REAL_CASES = [
    ("hamamatsu-dapi.ndpi", 20, None, "tcga"),  # 561 level-0 px, read at level 1
    ("hamamatsu-dapi.ndpi", None, None, "biopsy"),
    ("tcga-cr-7395-hnsc-jp2k.svs", 20, 0.25, "tcga"),
    ("tcga-cr-7395-hnsc-jp2k.svs", 10, 0.25, "biopsy"),
    ("cptac-brca-lowres-dicom.dcm", None, None, "biopsy"),
]


@pytest.mark.parametrize("name,mag,mpp,preset", REAL_CASES)
def test_real_slide_coords_equal_clam_reference(shared_data, name, mag, mpp, preset):
    path = real_file(shared_data, f"wsi/{name}")
    params = TissueParams.from_preset(preset)
    slide = open_wsi(path, mpp=mpp)
    level = segmentation_level(slide, params)
    rgb = slide.read_region((0, 0), level, slide.level_dimensions[level])
    ref_contours, ref_holes = clam_reference_tissue(rgb, level_scale(slide.level_dimensions, level), params)
    for rule in CLAM_FUNCTIONS + ("corner_any",):
        patches = patch_slide(path, mag, 256, params, rule, mpp=mpp)
        expected = clam_reference_coords(ref_contours, ref_holes, patches.plan.patch_size_level0, rule)
        assert len(patches) > 0
        assert np.array_equal(patches.coords, expected), rule


def test_segmentation_level_is_openslides_best_for_64(shared_data):
    slide = open_wsi(real_file(shared_data, "wsi/hamamatsu-dapi.ndpi"))
    assert slide.backend == "openslide" and len(slide.level_dimensions) == 7
    assert segmentation_level(slide) == 6


def test_slide_without_mpp_asks_for_it_and_works_with_it(shared_data):
    path = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    with pytest.raises(MissingMetadataError, match="neither microns per pixel") as info:
        patch_slide(path, 20, 256)
    assert "--mpp" in info.value.hints["cli"] and "µm/px" in info.value.hints["viewer"]
    patches = patch_slide(path, 20, 256, TissueParams.from_preset("tcga"), mpp=0.25)
    assert patches.plan.patch_size_level0 == 512 and patches.plan.read_level == 1 and len(patches) > 0


def test_magnification_above_the_scan_is_refused(shared_data):
    with pytest.raises(Harm3Error, match="upsampling"):
        patch_slide(real_file(shared_data, "wsi/cptac-brca-lowres-dicom.dcm"), 5, 256)


def test_unknown_contour_function_is_an_error():
    with pytest.raises(Harm3Error, match="contour function"):
        patch_coordinates([np.zeros((4, 1, 2), np.int32)], [[]], 256, contour_fn="everything")


def test_synthetic_tiff_slide_at_10x_matches_reference(tmp_path):
    image = synthetic_tissue_image(3, 1536, 2048)
    path = write_synthetic_slide(tmp_path / "synthetic.tif", image, mpp=0.5)  # 20x
    params = TissueParams.from_preset("biopsy", a_t=0.05, a_h=0.01)
    patches = patch_slide(path, 10, 128, params, "four_pt")
    assert patches.plan.patch_size_level0 == 256
    slide = open_wsi(path)
    level = segmentation_level(slide, params)
    rgb = slide.read_region((0, 0), level, slide.level_dimensions[level])
    contours, holes = clam_reference_tissue(rgb, level_scale(slide.level_dimensions, level), params)
    assert np.array_equal(patches.coords, clam_reference_coords(contours, holes, 256, "four_pt"))
    assert len(patches) > 5
