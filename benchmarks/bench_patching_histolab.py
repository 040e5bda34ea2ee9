"""Patching time per slide: ours (tissue segmentation + patch grid) vs histolab 0.7.0, same run.

Ours: ``patch_slide`` in this process (open the slide, CLAM's tissue segmentation with the
"biopsy" preset, the vectorised ``four_pt`` grid). histolab: a subprocess under
``.venv-histolab`` (histolab pins numpy<=1.24.4, scipy<1.10.1, scikit-image<0.19.4, so it cannot
share .venv; set-up in benchmarks/README.md) running ``benchmarks/_histolab_peer.py``:
``Slide`` + ``TissueMask`` (the whole tissue, not ``BiggestTissueBoxMask``) + ``GridTiler``, two
columns, both from opening the slide to the kept tile coordinates and neither writing a PNG:

- "coords": ``_grid_coordinates_generator``: the mask, its regions, per tile "> 80 % inside";
- "check": ``_tiles_generator`` with ``check_tissue=True``: the above, plus reading each tile
  and ``has_enough_tissue`` on it; that is how histolab decides which tiles ``extract`` saves.

Settings: the same tile on both sides, taken from our plan (256 px at ``plan.read_level``:
level 0 of the NDPI, DICOM and phantom, level 1 = 20× of the SVS, whose mpp 0.25 is given);
``tissue_percent`` 25, because our ``four_pt`` rule keeps a patch when one of four points a
quarter of the tile from its centre is in tissue, a low bar (histolab's default 80 would drop
many tiles we keep; the time barely depends on it, since every candidate tile is read either
way). Tissue rules differ, so tile counts differ. Ours: best of 3; histolab: best of
``--repeats`` (3; 1 for "check" on the phantom, which reads thousands of tiles). The phantom,
the demo-size slide phantom tiled 3×2 (24,576 × 24,576 px, 20×, 0.5 µm/px, JPEG q90), is
written to benchmarks/output/ on the first run (~15 s) and reused.

    .venv/bin/python benchmarks/bench_patching_histolab.py [--repeats 3] [--no-phantom]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_patching import best_of  # noqa: E402  (this folder is on sys.path when run as a script)
from napari_harm3.core.wsi.patching import patch_slide  # noqa: E402
from napari_harm3.core.wsi.tissue import TissueParams  # noqa: E402

WSI = ROOT.parent / "shared" / "data" / "real" / "wsi"
OUTPUT = ROOT / "benchmarks" / "output"
HISTOLAB_PYTHON = ROOT / ".venv-histolab" / "bin" / "python"
TISSUE_PERCENT = 25.0


def phantom_slide(rows=3, cols=2) -> Path:
    """The demo phantom (8,192 × 12,288 px) tiled rows × cols on one JPEG pyramid, written once."""
    path = OUTPUT / f"phantom_{rows}x{cols}.svs"
    if path.is_file():
        return path
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff
    from napari_harm3.core.synth.slide_phantom import generate_slide

    start = time.perf_counter()
    image = generate_slide(np.random.SeedSequence(5), s=1.0, c=0.5, f=1.0, size="demo").image
    h, w = image.shape[:2]  # multiples of 256: no tile straddles two copies

    def tile_source(y0, x0, th, tw):
        return image[y0 % h:y0 % h + th, x0 % w:x0 % w + tw]

    OUTPUT.mkdir(parents=True, exist_ok=True)
    write_pyramidal_tiff(path, shape=(rows * h, cols * w), tile_source=tile_source, mpp=0.5,
                         objective_power=20, tile_size=256, compression="jpeg", quality=90, overwrite=True)
    print(f"wrote {path.name} ({rows * h} x {cols * w} px) in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-phantom", action="store_true", help="real slides only")
    args = parser.parse_args()
    if not HISTOLAB_PYTHON.is_file():
        sys.exit(f"{HISTOLAB_PYTHON} missing: see benchmarks/README.md (histolab peer) to set it up")

    # (label, path, magnification, mpp) as bench_patching.py; DICOM: OpenSlide 4 opens it too
    slides = [("hamamatsu-dapi.ndpi", WSI / "hamamatsu-dapi.ndpi", None, None),
              ("tcga-cr-7395-hnsc-jp2k.svs", WSI / "tcga-cr-7395-hnsc-jp2k.svs", 20, 0.25),
              ("cptac-brca-lowres-dicom.dcm", WSI / "cptac-brca-lowres-dicom.dcm", None, None)]
    slides = [s for s in slides if s[1].is_file()]
    if not args.no_phantom:
        slides.append(("phantom 3x2 (demo)", phantom_slide(), 20, None))

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows, cases = [], []
    for label, path, mag, mpp in slides:
        params = TissueParams.from_preset("biopsy")
        t_ours, patches = best_of(lambda: patch_slide(path, mag, 256, params, mpp=mpp), args.repeats)
        plan = patches.plan
        rows.append((label, patches.level_dimensions[0], len(patches), t_ours, plan))
        big = len(patches) > 1000  # "check" reads every candidate tile: once is enough there
        cases.append({"path": str(path), "level": plan.read_level, "tile": plan.read_size,
                      "tissue_percent": TISSUE_PERCENT, "repeats": args.repeats,
                      "check_repeats": 1 if big else args.repeats})

    # one subprocess for all slides: its interpreter start-up and imports are not timed
    done = subprocess.run([str(HISTOLAB_PYTHON), str(ROOT / "benchmarks" / "_histolab_peer.py"),
                           json.dumps(cases)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"histolab peer failed:\n{done.stderr[-3000:]}")
    peer = {r["path"]: r for r in map(json.loads, done.stdout.splitlines())}
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\n{'slide':28s} {'level-0 size':>13s} {'tile':>9s} {'ours':>6s} {'ours ms':>8s} "
          f"{'hl coords':>9s} {'hl ms':>8s} {'hl check':>8s} {'hl ms':>8s} {'speed-up':>17s}")
    for (label, (w, h), n_ours, t_ours, plan), case in zip(rows, cases):
        r = peer[case["path"]]
        c, k = r["coords"], r["check"]
        print(f"{label:28s} {f'{w}x{h}':>13s} {f'L{plan.read_level} {plan.read_size}px':>9s} {n_ours:6d} "
              f"{t_ours * 1e3:8.0f} {c['tiles']:9d} {c['s'] * 1e3:8.0f} {k['tiles']:8d} {k['s'] * 1e3:8.0f} "
              f"{c['s'] / t_ours:7.1f}x {k['s'] / t_ours:7.1f}x")
    print("(speed-up: histolab coords / ours, histolab check / ours; 'ours' and 'hl' = tiles kept; "
          f"ours best of {args.repeats}, histolab best of {args.repeats}, 'check' on >1000-patch slides once)")
    print(f"load average (1/5/15 min) before: {' '.join(load_before)}, after: {' '.join(load_after)}; "
          "shared 2-core machine")


if __name__ == "__main__":
    main()
