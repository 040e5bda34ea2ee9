"""Benchmark HARM3-Fusion: time and peak memory of one prediction (cached slide features) and
of one training epoch.

    python benchmarks/bench_harm3.py                   # default config (24×128×128, d=512), CPU
    python benchmarks/bench_harm3.py --model harm3_fusion_tiny --device cpu --patients 16

Inputs are random tensors of the right shapes (timing does not depend on their values).
Peak memory: the process's peak resident set on CPU (each stage in a fresh process), or
``torch.cuda.max_memory_allocated`` on a GPU (``--device cuda``; times synchronised, one untimed
warm-up call or training step first).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _stage(args) -> dict:
    import torch

    from napari_harm3.core.device import pick_device
    from napari_harm3.core.explain.gradcam import mri_gradcam
    from napari_harm3.core.models.harm3_fusion import create_model
    from napari_harm3.core.train.harm3_train import TrainConfig, harm3_loss

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = create_model(args.model).to(device)
    cfg = model.config
    D, H, W = cfg.mri_size

    def batch(B):
        mri = torch.randn(B, 4, D, H, W, device=device)                          # (B, 4, D, H, W)
        slide = torch.randn(B, args.patches, cfg.slide_dim, device=device)       # (B, N, F) cached features
        return mri, slide

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = {"stage": args.stage, "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                                        if device.type == "cuda" else ""), "model": args.model,
           "params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    if args.stage == "predict":
        model.eval()
        mri, slide = batch(1)
        with torch.no_grad():
            model(mri, slide=slide)                                               # warm-up
            sync()
            t = time.perf_counter()
            model(mri, slide=slide)
            sync()
        out["seconds"] = time.perf_counter() - t
        mri_gradcam(model, mri, slide=slide)                                      # warm-up (imports grad-cam, cv2)
        sync()
        t = time.perf_counter()
        mri_gradcam(model, mri, slide=slide)
        sync()
        out["gradcam_seconds"] = time.perf_counter() - t
    else:
        tcfg = TrainConfig()
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        steps = max(1, -(-args.patients // tcfg.batch_size))

        def step(B):
            mri, slide = batch(B)
            labels = (torch.rand(B, device=device) > 0.5).float()
            loss, _ = harm3_loss(model(mri, slide=slide), labels, 1.5, tcfg, model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        if device.type == "cuda":  # warm-up step (kernels, cuDNN, allocator), not timed
            step(min(tcfg.batch_size, args.patients))
            sync()
        t = time.perf_counter()
        for k in range(steps):
            step(min(tcfg.batch_size, args.patients - k * tcfg.batch_size))
        sync()
        out["seconds"] = time.perf_counter() - t
        out["patients"] = args.patients
    if device.type == "cuda":
        out["peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="harm3_fusion")
    p.add_argument("--device", default="cpu")
    p.add_argument("--patches", type=int, default=2000, help="patches per slide (cached features)")
    p.add_argument("--patients", type=int, default=16, help="patients in the training epoch")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="also write the two rows to this JSON file")
    p.add_argument("--stage", choices=("predict", "epoch"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage:
        print(json.dumps(_stage(args)))
        return 0
    rows = []
    for stage in ("predict", "epoch"):
        cmd = [sys.executable, __file__, "--stage", stage] + [
            a for k, v in (("--model", args.model), ("--device", args.device), ("--patches", args.patches),
                           ("--patients", args.patients), ("--threads", args.threads)) for a in (k, str(v))]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"HARM3-Fusion benchmark — model {args.model} ({rows[0]['params_M']:.2f} M parameters), "
          f"device {rows[0]['device']}, {args.patches} patches per slide")
    print(f"{'what':<44}{'seconds':>10}{'peak MiB':>12}")
    print(f"{'one prediction (1 fold model, cached features)':<44}{rows[0]['seconds']:>10.3f}{rows[0]['peak_MiB']:>12.0f}")
    print(f"{'Grad-CAM, 4 volumes (1 fold model)':<44}{rows[0]['gradcam_seconds']:>10.3f}{'':>12}")
    print(f"{f'one training epoch ({args.patients} patients, batch 8)':<44}{rows[1]['seconds']:>10.3f}{rows[1]['peak_MiB']:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
