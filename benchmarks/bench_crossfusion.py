"""CrossFusion inference time and peak memory against bag size (paper-default config).

On the CPU each size runs in its own process so that its peak memory is its own: N10 = 1k, 10k, 35k
patches at 10×, with N5 = N10/4 and N20 = 4·N10, D_b = 1024, embed 512. On the CPU the peak
is the process's resident set (read from /proc while it runs, so a size stopped by
``--timeout`` still reports the peak it reached); on a GPU (``--device cuda``) the time is
synchronised, the first call is a warm-up on a small bag, the figure is the median of
``--repeats`` calls, and the peak is ``torch.cuda.max_memory_allocated`` (all sizes in one
process, the peak counter reset for each; it includes the model and the inputs). ``--dtypes fp32,bf16``
also times bf16 autocast.

    python benchmarks/bench_crossfusion.py [--sizes 1000,10000,35000] [--threads 1] [--attention scores]
    python benchmarks/bench_crossfusion.py --device cuda --dtypes fp32,bf16 [--json OUT.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MODELS: dict = {}


def one(n10: int, threads: int, attention: str | None, device: str = "cpu", dtype: str = "fp32",
        repeats: int = 1) -> dict:
    import torch

    from napari_harm3.core.models.crossfusion import create_model

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    key = (str(dev), threads)
    if key not in _MODELS:  # one model per process (a GPU run measures every size in one process)
        torch.manual_seed(0)
        _MODELS[key] = create_model("crossfusion").to(dev)  # D_b 1024, embed 512, 4 heads
    model = _MODELS[key]
    torch.manual_seed(0)
    x5, x10, x20 = (torch.randn(1, n, 1024).to(dev) for n in (max(1, n10 // 4), n10, 4 * n10))
    precision = (torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if dtype == "bf16"
                 else contextlib.nullcontext())

    def run(a, b, c):
        with torch.inference_mode(), precision:
            out = model(a, b, c, attention=attention)
        if cuda:
            torch.cuda.synchronize(dev)
        return out

    if cuda:  # warm-up on a small bag (kernels, allocator), then a clean peak
        w = min(n10, 1000)
        run(x5[:, :max(1, w // 4)], x10[:, :w], x20[:, :4 * w])
        torch.cuda.reset_peak_memory_stats(dev)
    gpu_before = torch.cuda.memory_allocated(dev) if cuda else 0
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = run(x5, x10, x20)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        peak_gpu, before_gpu = torch.cuda.max_memory_allocated(dev), gpu_before
    result = {"n5": x5.shape[1], "n10": n10, "n20": x20.shape[1], "seconds": statistics.median(times),
              "seconds_all": times, "peak_rss_gib": peak / 2**20, "rss_before_gib": base / 2**20,
              "risk": float(out.risk.float().cpu()), "device": str(dev), "dtype": dtype,
              "threads": torch.get_num_threads(), "attention": attention or "none"}
    if cuda:
        result["peak_gpu_gib"] = peak_gpu / 2**30
        result["gpu_before_gib"] = before_gpu / 2**30
        del x5, x10, x20, out
        torch.cuda.empty_cache()
        result["gpu"] = torch.cuda.get_device_name(dev)
    return result


def _hwm_gib(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a running process, GiB; None where /proc is unavailable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def measure(n10: int, args, dtype: str) -> dict:
    """Run one size in a fresh process (CPU: its own peak RSS), stopped after ``args.timeout`` s
    (the peak RSS it reached is still reported); on a GPU in this process (peak GPU memory is
    reset per measurement), failures reported as rows."""
    if args.device != "cpu":
        try:
            return one(n10, args.threads, None if args.attention == "none" else args.attention,
                       args.device, dtype, args.repeats)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: report and go on
            import torch

            torch.cuda.empty_cache()
            return {"n10": n10, "dtype": dtype, "failed": f"{type(exc).__name__}: {str(exc)[:200]}",
                    "peak_rss_gib": 0.0}
    cmd = [sys.executable, __file__, "--one", str(n10), "--threads", str(args.threads), "--attention",
           args.attention, "--device", args.device, "--dtypes", dtype, "--repeats", str(args.repeats)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    hwm = 0.0
    try:
        while child.poll() is None:
            hwm = max(hwm, _hwm_gib(child.pid) or 0.0)
            if args.timeout and time.perf_counter() - start > args.timeout:
                child.kill()
                child.wait()
                return {"n10": n10, "dtype": dtype, "timed_out": True, "elapsed": time.perf_counter() - start,
                        "peak_rss_gib": hwm}
            time.sleep(0.2)
        stdout, stderr = child.communicate()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode:
        lines = stderr.strip().splitlines() or ["(no message)"]
        return {"n10": n10, "dtype": dtype, "failed": lines[-1], "peak_rss_gib": hwm}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_gib"] = max(result["peak_rss_gib"], hwm)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,35000")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--attention", choices=["none", "scores"], default="none")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtypes", default="fp32", help="fp32 and/or bf16 (autocast), comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per size (default 1 on CPU, 3 on GPU)")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per size before it is stopped (0: none)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.device == "cpu" else 3
    attention = None if args.attention == "none" else args.attention
    if args.one is not None:
        print(json.dumps(one(args.one, args.threads, attention, args.device, args.dtypes, args.repeats)))
        return 0
    gpu = args.device.startswith("cuda")
    where = f"on {args.device}" if gpu else f"on CPU, {args.threads or 'default'} thread(s)"
    if args.device != "cpu":
        where += ", all sizes in this process"
    print(f"CrossFusion inference {where}, attention={args.attention}, D_b 1024, embed 512", flush=True)
    print(f"{'N5':>7} {'N10':>7} {'N20':>8} {'dtype':>5} {'seconds':>9} {'peak RSS GiB':>13}"
          + (f" {'peak GPU GiB':>13}" if gpu else ""), flush=True)
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        for dtype in args.dtypes.split(","):
            r = measure(n, args, dtype)
            rows.append(r)
            if r.get("timed_out"):
                print(f"{'':>7} {n:>7} {'':>8} {dtype:>5}  stopped after {r['elapsed']:.0f} s (--timeout); "
                      f"peak RSS so far {r['peak_rss_gib']:.2f} GiB", flush=True)
            elif r.get("failed"):
                print(f"{'':>7} {n:>7} {'':>8} {dtype:>5}  failed: {r['failed']}", flush=True)
            else:
                print(f"{r['n5']:>7} {r['n10']:>7} {r['n20']:>8} {dtype:>5} {r['seconds']:>9.3f} "
                      f"{r['peak_rss_gib']:>13.2f}" + (f" {r.get('peak_gpu_gib', float('nan')):>13.2f}" if gpu else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
