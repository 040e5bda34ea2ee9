"""Extraction throughput (patches/s): our pipeline vs the plain per-patch CLAM loop, same run.

Peer ("CLAM loop"): for each batch, one ``read_region`` per patch, per-patch tensor transform
(scale, resize, normalise, as CLAM's dataset does), stack, encoder. Ours: background reader
threads (strip reads at level 0), batch preprocessing, encoder overlapped with reading.
Also the encoder alone on in-memory tensors, for reference. The machine is shared (2 cores,
other engineers' jobs): read ratios, not absolute figures.

    .venv/bin/python benchmarks/bench_extraction.py [--n 64] [--n-resnet 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from napari_harm3.core.wsi.encoders import create_encoder  # noqa: E402
from napari_harm3.core.wsi.extraction import extract_features  # noqa: E402
from napari_harm3.core.wsi.patching import patch_slide  # noqa: E402
from napari_harm3.core.wsi.slide_source import open_wsi  # noqa: E402
from napari_harm3.core.wsi.tissue import TissueParams  # noqa: E402

WSI = ROOT.parent / "shared" / "data" / "real" / "wsi"


def clam_loop(path, coords, plan, encoder, batch_size):
    """The plain loop: read each patch, transform it alone, batch, encode."""
    import cv2

    slide = open_wsi(path)
    spec = encoder.spec
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(coords), batch_size):
            tensors = []
            for x, y in coords[start:start + batch_size]:
                patch = slide.read_region((int(x), int(y)), plan.read_level, (plan.read_size, plan.read_size))
                if patch.shape[0] != plan.patch_size:
                    patch = cv2.resize(patch, (plan.patch_size, plan.patch_size), interpolation=cv2.INTER_AREA)
                t = torch.from_numpy(patch).permute(2, 0, 1).float() / 255.0  # ToTensor
                if spec.input_size and t.shape[-1] != spec.input_size:
                    t = F.interpolate(t[None], size=(spec.input_size,) * 2, mode="bilinear",
                                      align_corners=False, antialias=True)[0]
                tensors.append((t - mean) / std)  # Normalize
            out.append(encoder.model(torch.stack(tensors)).float().numpy())
    return np.concatenate(out)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def phantom_slide(folder):
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff
    from napari_harm3.core.synth.slide_phantom import generate_slide

    image = generate_slide(np.random.SeedSequence(5), s=1.0, c=0.5, f=1.0, size="small").image
    return write_pyramidal_tiff(Path(folder) / "phantom.tif", image, mpp=0.5, objective_power=20, overwrite=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="patches per run for texture_stats")
    parser.add_argument("--n-resnet", type=int, default=16, help="patches per run for resnet50_trunc")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoders = {"texture_stats": create_encoder("texture_stats"),
                    "resnet50_trunc+random-init": create_encoder("resnet50_trunc")}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        slides = [("phantom 20x (level 0)", phantom_slide(folder), 20)]
        if (WSI / "hamamatsu-dapi.ndpi").is_file():
            slides.append(("NDPI 20x (level 1, resize)", WSI / "hamamatsu-dapi.ndpi", 20))
        for label, path, mag in slides:
            patches = patch_slide(path, mag, 256, TissueParams.from_preset("biopsy", a_t=0.1))
            for name, encoder in encoders.items():
                n = args.n if name == "texture_stats" else args.n_resnet
                coords = patches.coords[:n]
                with torch.inference_mode():  # warm both code paths before timing
                    encoder(torch.zeros((2, 256, 256, 3), dtype=torch.uint8))
                t_peer, peer = timed(lambda: clam_loop(path, coords, patches.plan, encoder, args.batch_size))
                t_ours, ours = timed(lambda: extract_features(lambda: open_wsi(path), coords, patches.plan, encoder,
                                                              args.batch_size, workers=2))
                assert np.allclose(ours, peer, rtol=1e-3, atol=1e-4), "features differ"
                rows.append((label, name, len(coords), len(coords) / t_peer, len(coords) / t_ours))
    print(f"{'slide':28s} {'encoder':28s} {'n':>4s} {'CLAM loop p/s':>14s} {'ours p/s':>9s} {'ratio':>6s}")
    for label, name, n, peer, ours in rows:
        print(f"{label:28s} {name:28s} {n:4d} {peer:14.1f} {ours:9.1f} {ours / peer:5.2f}x")
    print("\nencoder alone on in-memory uint8 tensors (256 px, batch %d):" % args.batch_size)
    for name, encoder in encoders.items():
        x = torch.randint(0, 256, (args.batch_size, 256, 256, 3), dtype=torch.uint8)
        with torch.inference_mode():
            encoder(x[:2])
            t, _ = timed(lambda: encoder(x))
        print(f"  {name:28s} {args.batch_size / t:8.1f} patches/s")
    print("(2 shared CPU cores, no GPU; features of both paths checked equal)")


if __name__ == "__main__":
    main()
