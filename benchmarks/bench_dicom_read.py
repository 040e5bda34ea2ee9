"""DICOM read benchmark (issue 12): a 200-slice compressed series against the same series
uncompressed, in the same run.

Builds, in a temporary folder, a 200-slice series from the real STS_001 T1 series (its 40
slices repeated five times at new, evenly spaced positions along the slice normal, new
SOP/series UIDs), then compressed copies in each syntax the project decodes: JPEG Lossless
(.57, .70), JPEG-LS lossless and near-lossless, JPEG 2000 lossless, HTJ2K lossless, RLE,
deflate and 12-bit JPEG Extended (DCMTK, GDCM and imagecodecs make them). For each it times
``read_volume(folder)`` (listing + reading + decoding + stacking; best of ``--repeats``, files
already in the page cache), alternating with the uncompressed read so that a change of load
hits both, and prints wall and CPU seconds, ms per slice, the ratio to the uncompressed read
and the size on disk. On a loaded machine the CPU time (this process, all its threads) is the
steadier figure; on an idle one the two agree (every decoder here runs on one thread, but GDCM's
JPEG 2000 may use more). It also times decoding alone, one thread against two
(``ThreadPoolExecutor``) and two processes, to say whether parallel decoding pays.

Usage: ``.venv/bin/python benchmarks/bench_dicom_read.py [--repeats 3] [--syntaxes 70,80]``.
Needs dcmtk and libgdcm-tools (scripts/setup.sh). Timings on a shared machine are noisy; the
figures are what one run measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_harm3.core.io.dicom_pixels import decode_frames  # noqa: E402
from napari_harm3.core.io.mri import read_volume  # noqa: E402

SHARED = Path(os.environ.get("HARM3_SHARED_DATA", ROOT.parent / "shared" / "data"))
N_SLICES = 200


def _per_file(command):
    def make(source: Path, out: Path):
        for path in sorted(source.glob("*.dcm")):
            subprocess.run([*command, str(path), str(out / path.name)], check=True, capture_output=True)
    return make


def _htj2k(source: Path, out: Path):
    import imagecodecs

    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PixelData = encapsulate([imagecodecs.htj2k_encode(ds.pixel_array, reversible=True)])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = HTJ2KLossless
        ds.save_as(out / path.name, enforce_file_format=True)


SYNTAXES = {  # key → (label, maker)
    "57": ("JPEG Lossless .57 (dcmcjpeg +el)", _per_file(["dcmcjpeg", "+el"])),
    "70": ("JPEG Lossless SV1 .70 (dcmcjpeg +e1)", _per_file(["dcmcjpeg", "+e1"])),
    "80": ("JPEG-LS lossless .80 (dcmcjpls +el)", _per_file(["dcmcjpls", "+el"])),
    "81": ("JPEG-LS near-lossless .81 (dcmcjpls +en)", _per_file(["dcmcjpls", "+en"])),
    "90": ("JPEG 2000 lossless .90 (gdcmconv --j2k)", _per_file(["gdcmconv", "--j2k"])),
    "201": ("HTJ2K lossless .201 (imagecodecs)", _htj2k),
    "rle": ("RLE lossless (dcmcrle)", _per_file(["dcmcrle"])),
    "deflate": ("Deflated explicit VR (dcmconv +td)", _per_file(["dcmconv", "+td"])),
    "51": ("JPEG Extended 12-bit .51 (dcmcjpeg +ee)", _per_file(["dcmcjpeg", "+ee"])),
}


def build_series(out: Path) -> None:
    """200 uncompressed slices from the real T1: its slices repeated, placed one step apart."""
    source = SHARED / "real" / "mri" / "sts001_dicom" / "T1"
    if not source.is_dir():
        sys.exit(f"bench_dicom_read: the real T1 series is not at {source} (see shared/data/README.md)")
    slices = [pydicom.dcmread(p) for p in sorted(source.glob("*.dcm"))]
    volume = read_volume(source)
    step = volume.affine[:3, 0][::-1]  # (x, y, z) mm from one slice to the next
    origin = volume.affine[:3, 3][::-1]
    by_position = sorted(slices, key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], step)))
    series_uid = generate_uid()
    for n in range(N_SLICES):
        ds = by_position[n % len(by_position)].copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + n * step]
        ds.SliceLocation = f"{float(origin[2] + n * step[2]):.6f}"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(out / f"slice_{n:03d}.dcm", enforce_file_format=True)


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.dcm")) / 1e6


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _fastest(runs) -> tuple[float, float]:
    return min(w for w, _ in runs), min(c for _, c in runs)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _decode_file(path: str) -> np.ndarray:
    return decode_frames(pydicom.dcmread(path), path)


def decoding_parallel(folder: Path, repeats: int) -> tuple[float, float, float]:
    """Seconds to decode every slice (files already parsed for the thread runs): one thread,
    two threads, two processes (each parses its files too)."""
    files = [str(p) for p in sorted(folder.glob("*.dcm"))]
    datasets = [pydicom.dcmread(f) for f in files]

    def decode(item):
        return decode_frames(item[0], item[1])

    one = _best(lambda: [decode(i) for i in zip(datasets, files)], repeats)
    with ThreadPoolExecutor(2) as pool:
        two = _best(lambda: list(pool.map(decode, zip(datasets, files))), repeats)
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_decode_file, files[:4]))  # start the workers
        processes = _best(lambda: list(pool.map(_decode_file, files, chunksize=10)), repeats)
    return one, two, processes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--syntaxes", default=",".join(SYNTAXES), help=f"comma-separated among {','.join(SYNTAXES)}")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.syntaxes.split(",") if s.strip()]
    for tool in ("dcmcjpeg", "dcmcjpls", "dcmcrle", "dcmconv", "gdcmconv"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_dicom_read: {tool} not found (install dcmtk and libgdcm-tools: scripts/setup.sh)")
    warnings.simplefilter("ignore")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared: figures are noisy)")
    with tempfile.TemporaryDirectory(prefix="bench-dicom-") as tmp:
        tmp = Path(tmp)
        raw = tmp / "uncompressed"
        raw.mkdir()
        start = time.perf_counter()
        build_series(raw)
        folders = {"uncompressed": ("Explicit VR Little Endian (uncompressed)", raw)}
        for key in wanted:
            label, make = SYNTAXES[key]
            (tmp / key).mkdir()
            make(raw, tmp / key)
            folders[key] = (label, tmp / key)
        print(f"built {N_SLICES}-slice series in {len(folders)} encodings in {time.perf_counter() - start:.0f} s\n")
        reference = read_volume(raw)
        print(f"{'transfer syntax':44s} {'wall s':>7s} {'CPU s':>6s} {'ms/slice':>8s} {'uncompr.':>8s} "
              f"{'ratio':>6s} {'MB':>6s}  exact        (ms/slice and ratio: CPU time)")
        for key, (label, folder) in folders.items():
            if key == "uncompressed":
                continue
            # uncompressed and compressed read alternately, so a change of load hits both
            raw_runs, runs = [], []
            for _ in range(args.repeats):
                raw_runs.append(_timed(lambda: read_volume(raw)))
                runs.append(_timed(lambda: read_volume(folder)))
            (wall, cpu), (_, raw_cpu) = _fastest(runs), _fastest(raw_runs)
            volume = read_volume(folder)
            exact = "yes" if np.array_equal(volume.data, reference.data) else f"max err {np.abs(volume.data.astype(int) - reference.data).max()}"
            print(f"{label:44s} {wall:7.2f} {cpu:6.2f} {1000 * cpu / N_SLICES:8.2f} {raw_cpu:8.2f} {cpu / raw_cpu:6.2f} "
                  f"{_size_mb(folder):6.1f}  {exact}")
        print(f"(uncompressed: {_size_mb(raw):.1f} MB; load average now {os.getloadavg()[0]:.2f})")
        print("\ndecoding alone (s for 200 slices): 1 thread | 2 threads | 2 processes (parse + decode)")
        for key, (label, folder) in folders.items():
            if key == "uncompressed":
                continue
            one, two, processes = decoding_parallel(folder, args.repeats)
            print(f"{label:44s} {one:6.2f} | {two:6.2f} ({one / two:4.2f}×) | {processes:6.2f} ({one / processes:4.2f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
