"""Reslicing for display: the real STS_001 T2 resampled onto the T1-pre grid.

(The viewer shows these two on their own voxels, as they are tilted only 2°; the figure is the
cost of a volume that is resliced — another plane, an oblique scan, a turned registration — at
real size.) Ours (``core.mri.reslice.reslice``: SimpleITK ``Resample``, linear, float32)
against scipy's ``ndimage.affine_transform`` (trilinear) on the same volumes in the same run,
best of ``--repeat``; plus the agreement of the two (median absolute difference inside the
body, in the image's units) and the exact reorientation of a coronal phantom (transpose +
flip) for scale.

    .venv/bin/python benchmarks/bench_reslice.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.reslice import place_reference, reorient, reslice
from napari_harm3.core.synth.orientation_phantom import orientation_phantom

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "mri" / "sts001_dicom"


def scipy_reslice(data, affine, grid):
    grid_to_data = np.linalg.inv(affine) @ grid.affine
    return ndimage.affine_transform(np.asarray(data, np.float32), grid_to_data[:3, :3], offset=grid_to_data[:3, 3],
                                    output_shape=grid.shape, output=np.float32, order=1, mode="constant",
                                    cval=0.0, prefilter=False)


def best_of(repeat, fn):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"no real data at {DATA}", file=sys.stderr)
        return 1
    t1, t2 = read_volume(DATA / "T1"), read_volume(DATA / "T2")
    _, grid = place_reference(t1.data, t1.affine, "T1-pre")
    ours_s, ours = best_of(args.repeat, lambda: reslice(t2.data, t2.affine, grid))
    peer_s, peer = best_of(args.repeat, lambda: scipy_reslice(t2.data, t2.affine, grid))
    body = (ours > np.percentile(ours, 60)) & (peer > 0)
    difference = float(np.median(np.abs(ours[body] - peer[body])))
    print(f"T2 {t2.shape} onto the T1-pre grid {grid.shape} ({np.prod(grid.shape) / 1e6:.1f} M voxels)")
    print(f"  ours (SimpleITK Resample, linear):         {ours_s:6.2f} s")
    print(f"  scipy affine_transform (trilinear):        {peer_s:6.2f} s   ours / peer = {ours_s / peer_s:.2f}")
    print(f"  median |ours - peer| in the body: {difference:.3f} (T2 values up to {float(t2.data.max()):.0f})")
    coronal = orientation_phantom("coronal", spacing=(1.0, 0.5, 0.5))
    flip_s, _ = best_of(args.repeat, lambda: reorient(coronal.data, coronal.affine))
    print(f"  exact reorientation of a coronal {coronal.shape} phantom: {flip_s:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
