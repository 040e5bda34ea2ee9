"""Extraction throughput (patches/s): our pipeline vs the plain per-patch CLAM loop, same run.

Peer ("CLAM loop"): for each batch, one ``read_region`` per patch, per-patch tensor transform
(scale, resize, normalise, as CLAM's dataset does), stack, encoder. Ours: background reader
threads (strip reads at level 0), batch preprocessing, the encoder prepared for inference
(BatchNorm folded, channels-last: ``encoder_inference``) overlapped with reading; the CLAM
loop runs the plain model, as CLAM does; "ours, plain model" is our pipeline running the plain
model (as before ``encoder_inference``). ``--compile`` adds rows for ours with the encoder
compiled by ``torch.compile`` (its one-off compile time is printed, not counted). Also the
encoder alone on in-memory tensors, plain and prepared (wall time and CPU time, which other
jobs on the machine do not inflate). The machine is shared (2 cores, other engineers' jobs):
read ratios, not absolute figures.

    .venv/bin/python benchmarks/bench_extraction.py [--n 64] [--n-resnet 16] [--repeats 3] [--compile]
                                                    [--reader-workers 2]

On a GPU (``--device cuda``; issue target: our extractor within 80 % of the encoder's own
throughput on in-memory tensors) the protocol is a sweep over one larger phantom slide (the
demo-size phantom repeated ``--repeat`` times, JPEG, read by OpenSlide), resnet50_trunc
(random init; weights do not change the speed):

- encoder alone: uint8 batches already on the GPU, the pipeline's preprocessing and fp16
  autocast (``encoder(batch)`` as ``encode_batches`` calls it), warm-up, synchronised timing;
- ours: ``extract_features(..., device, workers=W)`` for every ``--workers`` × ``--batch-sizes``;
- CLAM's loop as CLAM runs it on a GPU: a ``torch.utils.data.DataLoader`` (per-patch
  ``read_region`` + per-patch transform in ``--clam-workers`` processes, pinned memory) then
  ``.to(cuda)``, in fp32 (as CLAM) and with the same fp16 autocast as ours; and the plain serial
  loop (``clam_loop`` on the GPU) on the first ``--clam-serial-patches`` patches.

The encoder alone is measured both as the plain model (what CLAM runs) and as the copy the
pipeline runs (``inference_encoder``); the target compares ours with the faster. ``--compile``
adds ours and the encoder alone compiled at the largest batch and most workers.
Features of ours and the fp16 DataLoader loop are compared (fp16 tolerance). ``--dry`` makes
every size tiny so the whole protocol runs on a CPU in seconds (a check of the code paths).

    python benchmarks/bench_extraction.py --device cuda [--json OUT.json]
    .venv/bin/python benchmarks/bench_extraction.py --dry            # same protocol, tiny, CPU
"""

from __future__ import annotations

import argparse
import json
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

from napari_harm3.core.wsi.encoder_inference import inference_encoder  # noqa: E402
from napari_harm3.core.wsi.encoders import create_encoder  # noqa: E402
from napari_harm3.core.wsi.extraction import CPU_CHUNK, extract_features  # noqa: E402
from napari_harm3.core.wsi.patching import patch_slide  # noqa: E402
from napari_harm3.core.wsi.slide_source import open_wsi  # noqa: E402
from napari_harm3.core.wsi.tissue import TissueParams  # noqa: E402

WSI = ROOT.parent / "shared" / "data" / "real" / "wsi"


def clam_transform(patch, plan, spec, mean, std):
    """CLAM's per-patch transform: (resize to the patch size,) ToTensor, resize to the input, Normalize."""
    import cv2

    if patch.shape[0] != plan.patch_size:
        patch = cv2.resize(patch, (plan.patch_size, plan.patch_size), interpolation=cv2.INTER_AREA)
    t = torch.from_numpy(patch).permute(2, 0, 1).float() / 255.0  # ToTensor
    if spec.input_size and t.shape[-1] != spec.input_size:
        t = F.interpolate(t[None], size=(spec.input_size,) * 2, mode="bilinear",
                          align_corners=False, antialias=True)[0]
    return (t - mean) / std  # Normalize


def clam_loop(path, coords, plan, encoder, batch_size, device=None, amp=False):
    """The plain loop: read each patch, transform it alone, batch, (move to ``device``,) encode."""
    import contextlib

    slide = open_wsi(path)
    spec = encoder.spec
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    on_gpu = device is not None and device.type != "cpu"
    precision = _autocast(device, encoder) if (on_gpu and amp) else contextlib.nullcontext()
    out = []
    with torch.inference_mode(), precision:
        for start in range(0, len(coords), batch_size):
            tensors = []
            for x, y in coords[start:start + batch_size]:
                patch = slide.read_region((int(x), int(y)), plan.read_level, (plan.read_size, plan.read_size))
                tensors.append(clam_transform(patch, plan, spec, mean, std))
            batch = torch.stack(tensors)
            if on_gpu:
                batch = batch.to(device, non_blocking=True)
            out.append(encoder.model(batch).float().cpu().numpy())
    return np.concatenate(out)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alone_rates(fn, x, repeats=3):
    """[(wall p/s, CPU p/s)] of ``fn(x)`` on one in-memory batch, after a warm-up."""
    rates = []
    with torch.inference_mode():
        fn(x)
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            fn(x)
            rates.append((len(x) / (time.perf_counter() - wall), len(x) / (time.process_time() - cpu)))
    return rates


def as_pipeline_runs(encoder):
    """``fn(uint8 batch)`` that encodes as the pipeline does (``encode_batches``: CPU chunks)."""
    from napari_harm3.core.wsi.extraction import encode_batches

    return lambda x: encode_batches(encoder, [(0, x.numpy())], torch.device("cpu"), lambda first, rows: None)


def spread(values) -> str:
    import statistics

    return f"{statistics.median(values):7.2f} [{min(values):.2f}-{max(values):.2f}]"


def phantom_slide(folder):
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff
    from napari_harm3.core.synth.slide_phantom import generate_slide

    image = generate_slide(np.random.SeedSequence(5), s=1.0, c=0.5, f=1.0, size="small").image
    return write_pyramidal_tiff(Path(folder) / "phantom.tif", image, mpp=0.5, objective_power=20, overwrite=True)


# --- the device sweep (--device cuda, or --dry on a CPU) ---------------------------------------
SWEEP_DEFAULTS = dict(workers="4,8,12", batch_sizes="64,128,256", repeat="3x4", clam_workers=8,
                      clam_serial_patches=1024, max_patches=0, size="demo")
DRY_DEFAULTS = dict(workers="1,2", batch_sizes="2,4", repeat="1x2", clam_workers=2,
                    clam_serial_patches=4, max_patches=8, size="small")


def _sync(device):
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device, encoder):
    """The pipeline's precision (``encode_batches``): fp16 autocast for learned encoders on CUDA."""
    import contextlib

    if device is not None and device.type == "cuda" and getattr(encoder.spec, "needs_weights", True):
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def sweep_slide(folder, repeat: str, size: str):
    """The phantom (20×, 0.5 µm/px) tiled ROWS×COLS times on one JPEG pyramid, written tile by tile."""
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff
    from napari_harm3.core.synth.slide_phantom import generate_slide

    rows, cols = (int(v) for v in repeat.lower().split("x"))
    start = time.perf_counter()
    image = generate_slide(np.random.SeedSequence(5), s=1.0, c=0.5, f=1.0, size=size).image  # (h, w, 3)
    h, w = image.shape[:2]
    assert h % 256 == 0 and w % 256 == 0, "phantom sides must be multiples of the tile size"
    generated = time.perf_counter() - start

    def tile_source(y0, x0, th, tw):  # tiles never straddle a copy's edge (sides are multiples of 256)
        y, x = y0 % h, x0 % w
        return image[y:y + th, x:x + tw]

    start = time.perf_counter()
    path = write_pyramidal_tiff(Path(folder) / "phantom_sweep.svs", shape=(rows * h, cols * w),
                                tile_source=tile_source, mpp=0.5, objective_power=20, tile_size=256,
                                compression="jpeg", quality=90, overwrite=True)
    written = time.perf_counter() - start
    print(f"slide: phantom {h}x{w} px x {rows}x{cols} copies = {rows * h} x {cols * w} px, JPEG q90, "
          f"{path.stat().st_size / 2**20:.0f} MiB (render {generated:.1f} s, write {written:.1f} s)", flush=True)
    return path


def encoder_alone(encoder, device, batch_size, min_seconds=1.5, min_iters=5, side=256):
    """patches/s of ``encoder(uint8 batch)`` on batches already on ``device`` (pipeline precision)."""
    x = torch.randint(0, 256, (batch_size, side, side, 3), dtype=torch.uint8, device=device)
    with torch.inference_mode(), _autocast(device, encoder):
        for _ in range(3):  # warm-up: kernels, allocator, cuDNN
            encoder(x).float()
        _sync(device)
        n, start = 0, time.perf_counter()
        while n < min_iters or time.perf_counter() - start < min_seconds:
            encoder(x).float()
            n += 1
        _sync(device)
        seconds = time.perf_counter() - start
    return n * batch_size / seconds


class ClamBag(torch.utils.data.Dataset):
    """CLAM's ``Whole_Slide_Bag_FP``: one ``read_region`` + the per-patch transform per item;
    the slide is opened lazily, once per DataLoader worker process."""

    def __init__(self, path, coords, plan, spec):
        self.path, self.coords, self.plan, self.spec = str(path), np.asarray(coords), plan, spec
        self.mean = torch.tensor(spec.mean).view(3, 1, 1)
        self.std = torch.tensor(spec.std).view(3, 1, 1)
        self.slide = None

    def __len__(self):
        return len(self.coords)

    def __getitem__(self, index):
        if self.slide is None:
            self.slide = open_wsi(self.path)
        x, y = self.coords[index]
        plan = self.plan
        patch = self.slide.read_region((int(x), int(y)), plan.read_level, (plan.read_size, plan.read_size))
        return clam_transform(patch, plan, self.spec, self.mean, self.std)


def clam_dataloader(path, coords, plan, encoder, batch_size, device, workers, amp):
    """CLAM's extract_features_fp loop: DataLoader (workers, pinned memory) → .to(device) → model."""
    import contextlib

    loader = torch.utils.data.DataLoader(ClamBag(path, coords, plan, encoder.spec), batch_size=batch_size,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    precision = _autocast(device, encoder) if amp else contextlib.nullcontext()
    out = []
    with torch.inference_mode(), precision:
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            out.append(encoder.model(batch).float().cpu().numpy())
    return np.concatenate(out)


def agreement(a, b) -> tuple:
    """(max |a − b| / max |b|, smallest row cosine similarity)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return rel, float(cos.min())


def _attempt(label, fn):
    """``fn()``, or None with the error printed (one failed measurement must not lose the others)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - e.g. a DataLoader worker killed (small /dev/shm)
        import traceback

        print(f"  !!! {label} failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        traceback.print_exc(limit=-4)
        return None


def device_sweep(args) -> int:
    import os

    base = DRY_DEFAULTS if args.dry else SWEEP_DEFAULTS
    opt = {k: (getattr(args, k, None) if getattr(args, k, None) not in (None, "", 0) else v) for k, v in base.items()}
    workers = [int(v) for v in str(opt["workers"]).split(",")]
    sizes = [int(v) for v in str(opt["batch_sizes"]).split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    print(f"extraction sweep on {device} ({gpu}); torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}{'; DRY (tiny sizes)' if args.dry else ''}",
          flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = create_encoder("resnet50_trunc").to(device).eval()
    mixed = device.type == "cuda"
    precision = "fp16" if mixed else "fp32"
    result = {"device": str(device), "gpu": gpu, "torch": torch.__version__, "encoder": encoder.name,
              "precision": "fp16 autocast" if mixed else "fp32", "dry": bool(args.dry), "options": opt}
    alone, alone_plain, alone_compiled, ours, ours_compiled, clam = {}, {}, {}, {}, {}, {}

    def save():
        """Write what is measured so far (a later failure or timeout keeps it)."""
        result["encoder_alone"] = {str(k): v for k, v in alone.items()}  # prepared (what ours runs)
        result["encoder_alone_plain"] = {str(k): v for k, v in alone_plain.items()}
        result["encoder_alone_compiled"] = {str(k): v for k, v in alone_compiled.items()}
        result["ours"] = {f"b{bs}_w{w}": v for (bs, w), v in ours.items()}
        result["ours_compiled"] = {f"b{bs}_w{w}": v for (bs, w), v in ours_compiled.items()}
        result["clam"] = {"_".join(str(p) for p in k): v for k, v in clam.items()}
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))

    with tempfile.TemporaryDirectory() as folder:
        path = sweep_slide(folder, opt["repeat"], opt["size"])
        start = time.perf_counter()
        patches = patch_slide(path, 20, 256, TissueParams.from_preset("biopsy", a_t=0.1))
        coords = patches.coords[:opt["max_patches"] or None]
        n = len(coords)
        print(f"patching: {len(patches.coords)} patches of 256 px at 20x ({time.perf_counter() - start:.1f} s); "
              f"using {n}", flush=True)
        result["patches"] = n

        # 1. the encoder alone on uint8 batches already on the device: the plain model (CLAM's) and
        # the copy the pipeline runs (inference_encoder: BatchNorm folded, channels-last)
        prepared = inference_encoder(encoder, device)
        for bs in sizes:
            alone_plain[bs] = encoder_alone(encoder, device, bs, min_seconds=0.2 if args.dry else 1.5)
            alone[bs] = encoder_alone(prepared, device, bs, min_seconds=0.2 if args.dry else 1.5)
            print(f"  encoder alone, batch {bs:4d}: plain {alone_plain[bs]:9.1f}, prepared {alone[bs]:9.1f} "
                  "patches/s", flush=True)
        save()

        # 2. ours: extract_features over workers x batch sizes
        reference = None
        factory = lambda: open_wsi(path)  # noqa: E731
        for bs in sizes:
            extract_features(factory, coords[:2 * bs], patches.plan, encoder, bs, device=device,
                             workers=max(workers))  # warm-up at this batch size
            for w in workers:
                _sync(device)
                t, feats = timed(lambda: extract_features(factory, coords, patches.plan, encoder, bs,
                                                          device=device, workers=w))
                ours[(bs, w)] = n / t
                if reference is None:
                    reference = feats
                print(f"  ours, batch {bs:4d}, {w:2d} workers: {n / t:9.1f} patches/s "
                      f"({100 * n / t / max(alone[bs], alone_plain[bs]):5.1f} % of the encoder alone)", flush=True)
            save()

        # optional: ours and the encoder alone compiled (torch.compile; compile time printed, not counted)
        if args.compile:
            bs, w = max(sizes), max(workers)
            start = time.perf_counter()
            compiled = inference_encoder(encoder, device, compile=True)
            encoder_alone(compiled, device, bs, min_seconds=0.0, min_iters=1)  # compiles at this shape
            print(f"  compiled the encoder in {time.perf_counter() - start:.1f} s", flush=True)
            alone_compiled[bs] = encoder_alone(compiled, device, bs, min_seconds=0.2 if args.dry else 1.5)
            extract_features(factory, coords[:2 * bs], patches.plan, encoder, bs, device=device, workers=w,
                             compile=True)  # warm-up
            t, _ = timed(lambda: extract_features(factory, coords, patches.plan, encoder, bs, device=device,
                                                  workers=w, compile=True))
            ours_compiled[(bs, w)] = n / t
            print(f"  compiled: encoder alone {alone_compiled[bs]:9.1f}, ours (batch {bs}, {w} workers) "
                  f"{n / t:9.1f} patches/s", flush=True)
            save()

        # 3. CLAM's loop: DataLoader workers (fp16 like ours, and fp32 like CLAM) + the serial loop
        clam_feats = feats32 = None
        for bs in sizes:
            got = _attempt(f"CLAM DataLoader batch {bs}", lambda: timed(lambda: clam_dataloader(
                path, coords, patches.plan, encoder, bs, device, opt["clam_workers"], amp=True)))
            if got is not None:
                clam[("dataloader", precision, bs)] = n / got[0]
                clam_feats = clam_feats if clam_feats is not None else got[1]
                print(f"  CLAM DataLoader ({opt['clam_workers']} workers), batch {bs:4d}, {precision}: "
                      f"{n / got[0]:9.1f} patches/s", flush=True)
            save()
        if mixed:
            bs = max(sizes)
            got = _attempt(f"CLAM DataLoader fp32 batch {bs}", lambda: timed(lambda: clam_dataloader(
                path, coords, patches.plan, encoder, bs, device, opt["clam_workers"], amp=False)))
            if got is not None:
                clam[("dataloader", "fp32", bs)] = n / got[0]
                feats32 = got[1]
                print(f"  CLAM DataLoader ({opt['clam_workers']} workers), batch {bs:4d}, fp32: "
                      f"{n / got[0]:9.1f} patches/s", flush=True)
        else:
            feats32 = clam_feats
        m = min(n, opt["clam_serial_patches"])
        bs = max(sizes)
        got = _attempt("CLAM serial loop", lambda: timed(lambda: clam_loop(
            path, coords[:m], patches.plan, encoder, bs, device=device, amp=True)))
        if got is not None:
            clam[("serial", precision, bs)] = m / got[0]
            print(f"  CLAM serial loop, batch {bs:4d}, {m} patches: {m / got[0]:9.1f} patches/s", flush=True)
            if clam_feats is None:  # compare with the serial loop's features instead
                clam_feats = got[1]
                reference = reference[:m]
        save()

    # features: ours vs CLAM's loop at the same precision, and vs fp32
    tol = 2e-2 if mixed else 1e-3
    agree = False
    if clam_feats is not None:
        rel, cos = agreement(reference, clam_feats)
        finite = bool(np.isfinite(reference).all() and np.isfinite(clam_feats).all())
        agree = finite and rel <= tol and cos >= 0.999
        result["agreement"] = {"rel_max_err_same_precision": rel, "min_cosine_same_precision": cos,
                               "tolerance": tol, "finite": finite, "ok": bool(agree), "patches": len(clam_feats)}
        if feats32 is not None:
            rel32, cos32 = agreement(reference[:len(feats32)], feats32)
            result["agreement"].update(rel_max_err_vs_fp32=rel32, min_cosine_vs_fp32=cos32)

    # the table
    def ratio(a, b, fmt="{:8.2f}x"):
        return fmt.format(a / b) if a and b else f"{'-':>{len(fmt.format(1.0))}}"

    print(f"\nresnet50_trunc (random init), {n} patches of 256 px at 20x, {result['precision']}, {device} ({gpu})")
    print("encoder alone = the faster of the plain model and the prepared copy (BN folded, channels-last) "
          "on uint8 batches already on the device")
    print(f"{'batch':>5} {'workers':>7} {'ours p/s':>9} {'enc plain':>10} {'enc prep.':>10} {'ours/enc':>8} "
          f"{'CLAM DL p/s':>11} {'ours/CLAM':>9}")
    rows = [(bs, w, v, "") for (bs, w), v in ours.items()] + \
        [(bs, w, v, " compiled") for (bs, w), v in ours_compiled.items()]
    for bs, w, v, note in rows:
        enc = max(alone[bs], alone_plain[bs], alone_compiled.get(bs, 0.0) if note else 0.0)
        peer = clam.get(("dataloader", precision, bs))
        print(f"{bs:5d} {w:7d} {v:9.1f} {alone_plain[bs]:10.1f} {alone[bs]:10.1f} {100 * v / enc:7.1f}% "
              f"{peer if peer else float('nan'):11.1f} {ratio(v, peer)}{note}")
    for bs, v in alone_compiled.items():
        print(f"(encoder alone compiled, batch {bs}: {v:.1f} p/s)")
    every = {**{(bs, w, False): v for (bs, w), v in ours.items()},
             **{(bs, w, True): v for (bs, w), v in ours_compiled.items()}}
    best_key = max(every, key=every.get)
    best = every[best_key]
    best_alone = max(list(alone.values()) + list(alone_plain.values()) + list(alone_compiled.values()))
    peer_best = max((v for k, v in clam.items() if k[0] == "dataloader"), default=None)
    serial = next((v for k, v in clam.items() if k[0] == "serial"), None)
    print(f"best ours {best:.1f} p/s (batch {best_key[0]}, {best_key[1]} workers{', compiled' if best_key[2] else ''}) = "
          f"{100 * best / best_alone:.1f} % of the best encoder-alone {best_alone:.1f} p/s (target >= 80 %); "
          f"{ratio(best, peer_best, '{:.2f}x')} the best CLAM DataLoader ({peer_best or float('nan'):.1f} p/s), "
          f"{ratio(best, serial, '{:.2f}x')} the serial loop ({serial or float('nan'):.1f} p/s)")
    a = result.get("agreement")
    if a:
        print(f"features, ours vs CLAM's loop at the same precision ({a['patches']} patches): max rel err "
              f"{a['rel_max_err_same_precision']:.2e}, min cosine {a['min_cosine_same_precision']:.6f} (tol {tol:g}"
              f"{'' if a['finite'] else '; NOT FINITE'}) -> {'OK' if a['ok'] else 'DIFFER'}"
              + (f"; vs fp32: max rel err {a['rel_max_err_vs_fp32']:.2e}, min cosine {a['min_cosine_vs_fp32']:.6f}"
                 if "rel_max_err_vs_fp32" in a else ""))
    else:
        print("features: not compared (no CLAM loop finished)")
    result["best"] = {"ours": best, "batch": best_key[0], "workers": best_key[1], "compiled": best_key[2],
                      "encoder_alone": best_alone, "fraction_of_encoder": best / best_alone,
                      "encoder_alone_plain": max(alone_plain.values()),
                      "fraction_of_plain_encoder": best / max(alone_plain.values()),
                      "vs_clam_dataloader": best / peer_best if peer_best else None,
                      "vs_clam_serial": best / serial if serial else None}
    save()
    return 0 if agree else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="patches per run for texture_stats")
    parser.add_argument("--n-resnet", type=int, default=16, help="patches per run for resnet50_trunc")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default 1 on the CPU protocol: the machine is shared; "
                             "torch's default with --device)")
    parser.add_argument("--device", default="cpu", help="cpu (default protocol) or cuda (GPU sweep)")
    parser.add_argument("--dry", action="store_true", help="the --device sweep with tiny sizes (runs on a CPU)")
    parser.add_argument("--workers", default=None, help="sweep: reader threads, comma-separated (4,8,12)")
    parser.add_argument("--batch-sizes", default=None, help="sweep: batch sizes, comma-separated (64,128,256)")
    parser.add_argument("--repeat", default=None, help="sweep: phantom copies ROWSxCOLS on the slide (3x4)")
    parser.add_argument("--max-patches", type=int, default=0, help="sweep: use at most this many patches (0: all)")
    parser.add_argument("--clam-workers", type=int, default=None, help="sweep: DataLoader workers of the CLAM loop (8)")
    parser.add_argument("--clam-serial-patches", type=int, default=None,
                        help="sweep: patches for the serial per-patch loop (1024)")
    parser.add_argument("--json", default=None, help="sweep: also write the results to this JSON file")
    parser.add_argument("--compile", action="store_true", help="also ours with torch.compile (CPU protocol; --device sweep: at the largest batch)")
    parser.add_argument("--reader-workers", type=int, default=2, help="CPU protocol: our reader threads (2)")
    parser.add_argument("--repeats", type=int, default=3, help="CPU protocol: runs of each path, alternating (3)")
    args = parser.parse_args()
    if args.device != "cpu" or args.dry:
        return device_sweep(args)
    torch.set_num_threads(args.threads or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoders = {"texture_stats": create_encoder("texture_stats"),
                    "resnet50_trunc+random-init": create_encoder("resnet50_trunc")}
    # "ours, plain model": the pipeline as it ran before encoder_inference (an A/B in the same run)
    variants = {"ours, plain model": None, "ours": False}
    if args.compile:
        variants["ours+compile"] = True
    prepared = {}  # (encoder, compile) -> prepared copy, made (and compiled) before any timing
    for name, encoder in encoders.items():
        for compile_ in sorted({v for v in variants.values() if v is not None}):
            if compile_ and name == "texture_stats":
                continue
            start = time.perf_counter()
            prepared[name, compile_] = inference_encoder(encoder, compile=compile_)
            with torch.inference_mode():  # compiles at the shape the pipeline will feed it
                shape = (min(args.batch_size, CPU_CHUNK), 256, 256, 3)
                prepared[name, compile_](torch.zeros(shape, dtype=torch.uint8))
            print(f"prepared {name}{' (compiled)' if compile_ else ''} in {time.perf_counter() - start:.1f} s",
                  flush=True)
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
                paths = [v for v, compile_ in variants.items() if not (compile_ and name == "texture_stats")]
                paths = [v for v in paths if not (variants[v] is None and name == "texture_stats")]
                plain_twin = type(encoder)(encoder.spec, encoder.model, encoder.weights_sha256).eval()
                plain_twin.prepared_for_inference = True  # so extract_features runs the plain model as is
                rates = {v: [] for v in ["CLAM loop"] + paths}
                for _ in range(args.repeats):  # the peer and ours alternate, so load changes hit both
                    t_peer, peer = timed(lambda: clam_loop(path, coords, patches.plan, encoder, args.batch_size))
                    rates["CLAM loop"].append(len(coords) / t_peer)
                    for variant in paths:
                        model = plain_twin if variants[variant] is None else encoder
                        t_ours, ours = timed(lambda: extract_features(
                            lambda: open_wsi(path), coords, patches.plan, model, args.batch_size,
                            workers=args.reader_workers, compile=bool(variants[variant])))
                        rates[variant].append(len(coords) / t_ours)
                        scale = float(np.abs(peer).max()) or 1.0
                        assert np.allclose(ours, peer, rtol=1e-3, atol=1e-4 * scale), "features differ"
                for variant in paths:
                    rows.append((label, name, variant, len(coords), rates["CLAM loop"], rates[variant]))
    print(f"\npatches/s and ratio ours/CLAM loop (paired by repeat), median [range] of {args.repeats}:")
    print(f"{'slide':28s} {'encoder':28s} {'path':17s} {'n':>4s} {'CLAM loop p/s':>20s} {'ours p/s':>20s} "
          f"{'ratio':>20s}")
    for label, name, variant, n, peer, ours in rows:
        ratios = [a / b for a, b in zip(ours, peer)]
        print(f"{label:28s} {name:28s} {variant:17s} {n:4d} {spread(peer):>20s} {spread(ours):>20s} "
              f"{spread(ratios):>20s}")
    print(f"\nencoder alone on in-memory uint8 tensors (256 px, batch {args.batch_size}; the prepared ones "
          f"as encode_batches runs them, {CPU_CHUNK} at a time), patches/s, median [range] of 3:")
    print(f"  {'encoder':28s} {'model':22s} {'wall':>20s} {'CPU time':>20s}")
    x = torch.randint(0, 256, (args.batch_size, 256, 256, 3), dtype=torch.uint8)
    for name, encoder in encoders.items():
        with torch.inference_mode():
            nchw = encoder.preprocess(x).contiguous()  # the layout CLAM's stacked tensors have
        models = {"plain, NCHW (CLAM)": (encoder.model, nchw), "plain, uint8 NHWC": (encoder, x)}
        models.update({("prepared+compiled" if compile_ else "prepared"): (as_pipeline_runs(model), x)
                       for (key, compile_), model in prepared.items() if key == name and model is not encoder})
        for kind, (fn, batch) in models.items():
            rates = alone_rates(fn, batch)
            print(f"  {name:28s} {kind:22s} {spread([w for w, _ in rates]):>20s} {spread([c for _, c in rates]):>20s}")
    print("(2 shared CPU cores, no GPU; features of both paths checked equal; the CLAM loop runs the plain "
          "model on NCHW tensors, ours the prepared one on the uint8 batch)")


if __name__ == "__main__":
    sys.exit(main())
