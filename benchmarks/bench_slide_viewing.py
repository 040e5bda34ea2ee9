"""Slide-viewing benchmark (issue "The viewer"): first frame, pan latency, memory.

Writes once (cached under benchmarks/output/, git-ignored) a synthetic 100,000 × 80,000 px
JPEG pyramid with :func:`write_pyramidal_tiff` (streamed tiles: a few procedural tissue
tiles repeated on a pseudo-random layout with background), and a small 8,192 × 6,144 slide
from the same source. Then, in the same run:

1. time to first frame in a fresh process: open + read what a 1920×1080 viewport shows,
   (a) whole slide at the level napari would pick, (b) fully zoomed in at level 0;
2. 512×512 read latency at level 0 along a random-walk pan path (≥ 500 reads) for our
   pyramid access (``slide.pyramid()[0][rows, cols]``, both backends) against plain
   ``openslide.OpenSlide.read_region``, plain tiffslide, and two dask designs
   (dask over tiffslide's zarr store; dask ``map_blocks`` over ``read_region``);
3. peak RSS of a fresh process viewing the big vs the small slide.

Usage: ``.venv/bin/python benchmarks/bench_slide_viewing.py [--reads 600]``.
Timings on a shared machine are noisy; the figures are what one run measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff  # noqa: E402
from napari_harm3.core.io.wsi import open_slide  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "output"
BIG = (80_000, 100_000)  # (height, width)
SMALL = (6_144, 8_192)
TILE = 512
VIEWPORT = (1920, 1080)


# --- synthetic slide ----------------------------------------------------------------------
def _tissue_tiles(count=12, size=256, seed=0) -> list[np.ndarray]:
    """H&E-like procedural tiles: pink stroma, purple nuclei, a little noise; one blank."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    tiles = [np.full((size, size, 3), 242, np.uint8)]  # background
    for _ in range(count - 1):
        base = np.array([225, 160, 195], np.float32) + rng.normal(0, 8, 3)
        img = np.broadcast_to(base, (size, size, 3)).copy()
        img += 12 * np.sin(x / rng.uniform(6, 20) + rng.uniform(0, 6))[..., None]
        for _ in range(rng.integers(30, 70)):
            cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(3, 8)
            mask = ((y - cy) ** 2 + (x - cx) ** 2) < r * r
            img[mask] = np.array([95, 60, 150]) + rng.normal(0, 10, 3)
        img += rng.normal(0, 6, img.shape)
        tiles.append(np.clip(img, 0, 255).astype(np.uint8))
    return tiles


def make_tile_source(seed=0):
    tiles = _tissue_tiles(seed=seed)

    def tile_source(y0, x0, h, w):
        ty, tx = y0 // 256, x0 // 256
        key = (ty * 7919 + tx * 104729 + (ty // 16) * 31 + (tx // 16) * 17) % 97
        tissue = ((ty // 24) + (tx // 24)) % 5 != 0  # large blank areas, like a real slide
        tile = tiles[1 + key % (len(tiles) - 1)] if tissue else tiles[0]
        return tile[:h, :w]

    return tile_source


def ensure_slide(shape) -> Path:
    path = OUTPUT / f"synthetic_{shape[1]}x{shape[0]}.svs"
    if path.exists():
        return path
    print(f"writing {path.name} (once; cached) …", flush=True)
    start = time.perf_counter()
    last = [0.0]

    def progress(fraction, message):
        if fraction - last[0] >= 0.1 or fraction == 1.0:
            last[0] = fraction
            print(f"  {fraction:4.0%} {time.perf_counter() - start:6.0f} s", flush=True)

    write_pyramidal_tiff(path, shape=shape, tile_source=make_tile_source(), mpp=0.25, objective_power=40,
                         tile_size=256, compression="jpeg", quality=90, progress=progress)
    print(f"  wrote {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - start:.0f} s", flush=True)
    return path


# --- measurements -------------------------------------------------------------------------
def random_walk(width, height, reads, seed=1) -> list[tuple[int, int]]:
    """Top-left corners of 512×512 reads panning around level 0 (steps up to ±300 px)."""
    rng = np.random.default_rng(seed)
    x, y = width // 2, height // 2
    path = []
    for _ in range(reads):
        x = int(np.clip(x + rng.integers(-300, 301), 0, width - TILE))
        y = int(np.clip(y + rng.integers(-300, 301), 0, height - TILE))
        path.append((x, y))
    return path


def _latencies(read, path) -> np.ndarray:
    for x, y in path[:20]:  # warm-up: library import paths, first tiles
        read(x, y)
    out = np.empty(len(path))
    for i, (x, y) in enumerate(path):
        start = time.perf_counter()
        region = read(x, y)
        np.asarray(region)
        out[i] = time.perf_counter() - start
    return out * 1e3


def readers(path: Path) -> dict:
    """name → read(x, y) returning the 512×512 level-0 region, for each design compared."""
    import dask.array as da
    import openslide
    import tiffslide

    ours = open_slide(path, backend="openslide").pyramid()[0]
    ours_ts = open_slide(path, backend="tiffslide").pyramid()[0]
    osr = openslide.OpenSlide(str(path))
    ts = tiffslide.TiffSlide(str(path))
    zarr_dask = da.from_zarr(ts.zarr_group["0"])
    height, width = ours.shape[:2]

    def block(block_info=None):
        (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
        return np.asarray(osr.read_region((x0, y0), 0, (x1 - x0, y1 - y0)))[..., :3]

    mapped = da.map_blocks(block, chunks=((TILE,) * (height // TILE) + ((height % TILE,) if height % TILE else ()),
                                          (TILE,) * (width // TILE) + ((width % TILE,) if width % TILE else ()),
                                          (3,)), dtype=np.uint8)
    return {
        "ours: pyramid[0][r, c] (OpenSlide)": lambda x, y: ours[y : y + TILE, x : x + TILE],
        "ours: pyramid[0][r, c] (tiffslide)": lambda x, y: ours_ts[y : y + TILE, x : x + TILE],
        "openslide.OpenSlide.read_region": lambda x, y: osr.read_region((x, y), 0, (TILE, TILE)),
        "tiffslide.read_region(as_array)": lambda x, y: ts.read_region((x, y), 0, (TILE, TILE), as_array=True),
        "dask over tiffslide zarr store": lambda x, y: zarr_dask[y : y + TILE, x : x + TILE].compute(scheduler="sync"),
        "dask map_blocks over read_region": lambda x, y: mapped[y : y + TILE, x : x + TILE].compute(scheduler="sync"),
    }


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_view(path: Path, reads: int) -> dict:
    """Run in a fresh process: first frames, then a pan through our pyramid; memory."""
    import openslide  # noqa: F401  - imports are not the viewer's cost
    import tiffslide  # noqa: F401

    rss_after_imports = _rss_mib()
    start = time.perf_counter()
    slide = open_slide(path)
    levels = slide.pyramid()
    width, height = slide.dimensions
    level = slide.get_best_level_for_downsample(max(width / VIEWPORT[0], height / VIEWPORT[1]))
    lh, lw = levels[level].shape[:2]
    frame = levels[level][0 : min(lh, VIEWPORT[1] * 2), 0 : min(lw, VIEWPORT[0] * 2)]
    first_full = time.perf_counter() - start
    slide.close()
    start = time.perf_counter()
    slide = open_slide(path)
    level0 = slide.pyramid()[0]
    cy, cx = height // 2, width // 2
    zoomed = level0[cy : cy + VIEWPORT[1], cx : cx + VIEWPORT[0]]
    first_zoomed = time.perf_counter() - start
    for x, y in random_walk(width, height, reads):
        level0[y : y + TILE, x : x + TILE]
    return {
        "first_frame_full_s": first_full, "full_level": level, "full_level_shape": list(frame.shape),
        "first_frame_level0_s": first_zoomed, "level0_shape": list(zoomed.shape),
        "rss_after_imports_mib": rss_after_imports, "peak_rss_mib": _rss_mib(),
    }


def _in_child(path: Path, reads: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", str(path), "--reads", str(reads)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=600)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_view(args.child, args.reads)))
        return 0

    OUTPUT.mkdir(parents=True, exist_ok=True)
    big, small = ensure_slide(BIG), ensure_slide(SMALL)
    with open_slide(big) as slide:
        print(f"\n{big.name}: {slide.dimensions[0]}×{slide.dimensions[1]} px, {slide.level_count} levels, "
              f"{big.stat().st_size / 2**30:.2f} GiB, mpp {slide.mpp} ({slide.backend})")
    print(f"cpu cores: {os.cpu_count()} (shared with other users: timings are noisy)\n")

    view_big, view_small = _in_child(big, args.reads), _in_child(small, args.reads)
    print("time to first frame (fresh process; open + read the 1920×1080 viewport)")
    for name, view in (("big", view_big), ("small", view_small)):
        print(f"  {name:5s} whole slide at level {view['full_level']} {tuple(view['full_level_shape'])}: "
              f"{view['first_frame_full_s'] * 1e3:7.1f} ms | level 0 {tuple(view['level0_shape'])}: "
              f"{view['first_frame_level0_s'] * 1e3:7.1f} ms")

    with open_slide(big) as slide:
        walk = random_walk(*slide.dimensions, args.reads)
    results = {name: _latencies(read, walk) for name, read in readers(big).items()}
    peer = results["openslide.OpenSlide.read_region"]
    print(f"\n512×512 level-0 reads along a random-walk pan ({len(walk)} reads), ms")
    print(f"  {'design':38s} {'mean':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s}  p95 ours/peer")
    for name, ms in results.items():
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        ratio = p95 / np.percentile(peer, 95)
        print(f"  {name:38s} {ms.mean():7.2f} {p50:7.2f} {p95:7.2f} {p99:7.2f}  {ratio:5.2f}")

    print("\npeak RSS of a fresh process (imports, first frames, pan of 512×512 reads)")
    for name, view in (("big", view_big), ("small", view_small)):
        print(f"  {name:5s} after imports {view['rss_after_imports_mib']:7.1f} MiB, peak {view['peak_rss_mib']:7.1f} MiB "
              f"(+{view['peak_rss_mib'] - view['rss_after_imports_mib']:.1f})")
    ratio = view_big["peak_rss_mib"] / view_small["peak_rss_mib"]
    print(f"  big/small peak ratio {ratio:.2f} for a {BIG[0] * BIG[1] / (SMALL[0] * SMALL[1]):.0f}× larger slide")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
