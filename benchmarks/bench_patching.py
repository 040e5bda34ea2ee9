"""Patching time per slide: our vectorised grid vs the literal per-patch CLAM loop (same run).

Both start from the same tissue contours (segmentation is shared and timed separately); the
coordinate lists are checked equal. Prints a table. The machine is shared: figures vary.

    .venv/bin/python benchmarks/bench_patching.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_harm3.core.wsi.patch_grid import patch_coordinates  # noqa: E402
from napari_harm3.core.wsi.patching import patch_slide  # noqa: E402
from napari_harm3.core.wsi.tissue import TissueParams, segment_tissue_image  # noqa: E402

WSI = ROOT.parent / "shared" / "data" / "real" / "wsi"


def clam_loop(contours, holes, size):
    """CLAM's process_contour/isInContours with isInContourV3_Easy: one pointPolygonTest per point."""
    out = []
    shift = int(size // 2 * 0.5)
    for contour, contour_holes in zip(contours, holes):
        x0, y0, w, h = cv2.boundingRect(contour)
        kept = []
        for x in range(x0, x0 + w, size):
            for y in range(y0, y0 + h, size):
                cx, cy = x + size // 2, y + size // 2
                points = ((cx - shift, cy - shift), (cx + shift, cy + shift), (cx + shift, cy - shift), (cx - shift, cy + shift))
                if not any(cv2.pointPolygonTest(contour, (float(px), float(py)), False) >= 0 for px, py in points):
                    continue
                if any(cv2.pointPolygonTest(hole, (x + size / 2, y + size / 2), False) > 0 for hole in contour_holes):
                    continue
                kept.append((x, y))
        if len(kept) > 1:
            out.extend(kept)
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def synthetic_large(scale=32.0):
    """A 1600×1200 drawn tissue image standing for the 1/32 level of a 51,200×38,400 slide."""
    rng = np.random.default_rng(0)
    image = np.full((1200, 1600, 3), 245, np.uint8)
    for _ in range(8):
        centre = (int(rng.integers(200, 1400)), int(rng.integers(200, 1000)))
        cv2.ellipse(image, centre, (int(rng.integers(100, 300)), int(rng.integers(80, 220))),
                    float(rng.uniform(0, 180)), 0, 360, (200, 120, 170), -1)
        for _ in range(4):
            cv2.circle(image, (centre[0] + int(rng.integers(-60, 60)), centre[1] + int(rng.integers(-40, 40))),
                       int(rng.integers(10, 40)), (245, 245, 245), -1)
    return segment_tissue_image(image, (scale, scale), TissueParams.from_preset("tcga"))


def best_of(fn, repeats=3):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    cases = []
    for name, mag, mpp in (("hamamatsu-dapi.ndpi", None, None), ("tcga-cr-7395-hnsc-jp2k.svs", 20, 0.25),
                           ("cptac-brca-lowres-dicom.dcm", None, None)):
        if (WSI / name).is_file():
            t_seg, patches = best_of(lambda: patch_slide(WSI / name, mag, 256, TissueParams.from_preset("biopsy"), mpp=mpp), 1)
            cases.append((name, patches.tissue, patches.plan.patch_size_level0, t_seg))
    for size in (256, 512):
        cases.append((f"synthetic 51k×38k, {size}px", synthetic_large(), size, float("nan")))
    print(f"{'slide':36s} {'candidates':>10s} {'patches':>8s} {'ours ms':>9s} {'CLAM loop ms':>13s} {'speed-up':>9s}")
    for name, tissue, size, _ in cases:
        t_ours, ours = best_of(lambda: patch_coordinates(tissue.contours, tissue.holes, size))
        t_ref, ref = best_of(lambda: clam_loop(tissue.contours, tissue.holes, size), 1)
        assert np.array_equal(ours, ref), name
        n_cand = sum(len(range(0, cv2.boundingRect(c)[2], size)) * len(range(0, cv2.boundingRect(c)[3], size))
                     for c in tissue.contours)
        print(f"{name:36s} {n_cand:10d} {len(ours):8d} {t_ours * 1e3:9.1f} {t_ref * 1e3:13.1f} {t_ref / t_ours:8.1f}x")
    print("(grid only, same contours; coordinate lists equal; shared 2-core machine)")


if __name__ == "__main__":
    main()
