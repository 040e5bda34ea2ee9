"""The one painter: patch scores → a raster over the slide (footprints, NaN, ranks, placement)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.explain.colormaps import overlay_colours, overlay_listed_colormap
from napari_harm3.core.explain.heatmap import OVERSAMPLE, paint_heatmap, tissue_coverage
from napari_harm3.core.explain.patch_scores import PatchScores


def scores(coords, values, footprint=512, key="10x"):
    return PatchScores(key=key, label=f"test {key}", coords=np.array(coords), scores=np.array(values, float),
                       footprint=footprint, magnification=10)


def value_at(raster, x, y):
    """The raster's value at level-0 pixel (x, y)."""
    ox, oy = raster.origin
    return raster.data[int((y - oy) // raster.downsample), int((x - ox) // raster.downsample)]


def test_each_patch_covers_its_whole_footprint_and_glass_is_nan():
    s = scores([[1000, 2000], [1512, 2000], [1000, 2512]], [0.9, 0.5, 0.1])
    raster = paint_heatmap(s, (4000, 3500))
    assert raster.downsample == 512 / OVERSAMPLE
    ranks = s.ranks()
    for (x, y), rank in zip(s.coords, ranks):
        for dx, dy in ((0, 0), (511, 0), (0, 511), (511, 511), (256, 300)):
            assert value_at(raster, x + dx, y + dy) == pytest.approx(rank)
    assert np.isnan(value_at(raster, 999 - 64, 2000)) and np.isnan(value_at(raster, 3000, 3000))
    assert np.isfinite(raster.data).sum() == 3 * OVERSAMPLE ** 2  # exactly three footprints, nothing else


def test_overlapping_grids_keep_the_higher_rank_and_off_grid_patches_are_close():
    # the dominant grid (offset 0) is exact; one patch on another contour's grid (offset 37)
    s = scores([[0, 0], [512, 0], [1024, 0], [37, 300]], [0.1, 0.2, 0.3, 0.9])
    raster = paint_heatmap(s, (2000, 1000))
    assert raster.origin == (0.0, 0.0)
    assert value_at(raster, 300, 400) == pytest.approx(1.0)  # overlap of patch 0 and the top patch: max
    assert value_at(raster, 300, 200) == pytest.approx(0.0)  # patch 0 alone
    error = raster.downsample / 2
    assert value_at(raster, 37 + error + 1, 300 + error + 1) == pytest.approx(1.0)
    assert value_at(raster, 37 + 511 - error - 1, 300 + 511 - error - 1) == pytest.approx(1.0)


def test_napari_placement_and_report_extent_agree_with_level0_geometry():
    s = scores([[64, 128]], [1.0], footprint=256)
    raster = paint_heatmap(s, (1000, 800))
    (sy, sx), (ty, tx) = raster.napari_placement(0.5)
    assert sy == sx == raster.downsample * 0.5
    # napari: raster pixel (r, c) centred at world translate + (r, c) · scale; level-0 pixel i at i · mpp
    r, c = 0, 0
    first = np.argwhere(np.isfinite(raster.data))[0]
    r, c = first
    centre_level0 = (np.array([ty, tx]) + np.array([r, c]) * sy) / 0.5
    assert np.all(centre_level0 >= np.array([128, 64]) - 0.5) and np.all(centre_level0 < np.array([128, 64]) + 256)
    # the report's extent: the same raster drawn over a thumbnail of 4 level-0 px per pixel
    left, right, bottom, top = raster.extent(4.0)
    assert right - left == pytest.approx(raster.data.shape[1] * raster.downsample / 4)
    sampled = raster.sample((200, 250), 4.0)
    assert np.isfinite(sampled[int(128 / 4) + 5, int(64 / 4) + 5]) and np.isnan(sampled[0, 0])


def test_tissue_coverage_counts_tissue_pixels_with_a_value():
    s = scores([[0, 0]], [1.0], footprint=400)
    raster = paint_heatmap(s, (800, 800))
    tissue = np.zeros((80, 80), bool)
    tissue[:40, :80] = True  # half of it under the patch (40 x 40 of 40 x 80)
    assert tissue_coverage(raster, tissue, 10.0) == pytest.approx(0.5)


def test_patch_scores_refuse_mismatched_lengths_and_find_patches():
    with pytest.raises(Harm3Error, match="2 scores for 3"):
        scores([[0, 0], [1, 1], [2, 2]], [0.1, 0.2])
    s = scores([[0, 0], [256, 0]], [0.2, 0.8], footprint=512)
    assert s.patch_at(300, 10) == 1 and s.patch_at(100, 10) == 0 and s.patch_at(900, 10) is None
    assert s.top(1).tolist() == [1]


def test_overlay_colours_are_transparent_below_the_threshold_and_at_nan():
    controls, colours = overlay_colours("inferno", 0.4)
    alpha = np.interp([0.0, 0.39, 0.41, 1.0], controls, colours[:, 3])
    assert alpha[0] == alpha[1] == 0 and alpha[2] == alpha[3] == 1
    cmap = overlay_listed_colormap("inferno", 0.4)
    assert cmap(np.nan)[3] == 0 and cmap(0.2)[3] == 0 and cmap(0.8)[3] == 1
