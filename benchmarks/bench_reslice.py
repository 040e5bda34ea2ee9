"""Reslicing for display: the real STS_001 T2 (slightly oblique) onto the T1-pre grid.

Ours (``core.mri.reslice.place_on``: scipy ``affine_transform``, trilinear, float32) against
SimpleITK's ``Resample`` (linear) on the same volumes in the same run, best of ``--repeat``;
plus the agreement of the two (median absolute difference inside the body, in the image's
units) and the exact reorientation of a coronal phantom (transpose + flip) for scale.

    .venv/bin/python benchmarks/bench_reslice.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.reslice import place_on, place_reference, reorient
from napari_harm3.core.synth.orientation_phantom import orientation_phantom

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "mri" / "sts001_dicom"


def _sitk_image(volume):
    image = sitk.GetImageFromArray(np.asarray(volume.data, dtype=np.float32))  # (z, y, x) array
    linear = volume.affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)                      # (dk, dj, di)
    direction_zyx = linear / spacing
    # ITK: (x, y, z) points, index (i, j, k)
    direction = direction_zyx[::-1, ::-1]
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    image.SetOrigin(tuple(float(v) for v in volume.affine[:3, 3][::-1]))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def _sitk_grid(grid):
    reference = sitk.Image([int(n) for n in grid.shape[::-1]], sitk.sitkFloat32)
    reference.SetSpacing(tuple(float(s) for s in grid.spacing[::-1]))
    reference.SetOrigin(tuple(float(v) for v in grid.affine[:3, 3][::-1]))
    return reference


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
    ours_s, ours = best_of(args.repeat, lambda: place_on(t2.data, t2.affine, grid).data)
    moving, reference = _sitk_image(t2), _sitk_grid(grid)
    peer_s, peer = best_of(args.repeat, lambda: sitk.GetArrayFromImage(
        sitk.Resample(moving, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)))
    body = (ours > np.percentile(ours, 60)) & (peer > 0)
    difference = float(np.median(np.abs(ours[body] - peer[body])))
    print(f"T2 {t2.shape} onto the T1-pre grid {grid.shape} ({np.prod(grid.shape) / 1e6:.1f} M voxels)")
    print(f"  ours (scipy affine_transform, trilinear): {ours_s:6.2f} s")
    print(f"  SimpleITK Resample (linear):              {peer_s:6.2f} s   ours / peer = {ours_s / peer_s:.2f}")
    print(f"  median |ours - peer| in the body: {difference:.3f} (T2 values up to {float(t2.data.max()):.0f})")
    coronal = orientation_phantom("coronal", spacing=(1.0, 0.5, 0.5))
    flip_s, _ = best_of(args.repeat, lambda: reorient(coronal.data, coronal.affine))
    print(f"  exact reorientation of a coronal {coronal.shape} phantom: {flip_s:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
