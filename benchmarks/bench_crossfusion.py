"""CrossFusion inference time and peak memory against bag size (CPU, paper-default config).

Each size runs in its own process so that its peak resident memory (ru_maxrss) is its own:
N10 = 1k, 10k, 35k patches at 10×, with N5 = N10/4 and N20 = 4·N10, D_b = 1024, embed 512.

    python benchmarks/bench_crossfusion.py [--sizes 1000,10000,35000] [--threads 1] [--attention scores]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n10: int, threads: int, attention: str | None) -> dict:
    import torch

    from napari_harm3.core.models.crossfusion import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model("crossfusion")  # D_b 1024, embed 512, 4 heads
    x5, x10, x20 = (torch.randn(1, n, 1024) for n in (max(1, n10 // 4), n10, 4 * n10))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(x5, x10, x20, attention=attention)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n5": x5.shape[1], "n10": n10, "n20": x20.shape[1], "seconds": seconds,
            "peak_rss_gib": peak / 2**20, "rss_before_gib": base / 2**20, "risk": float(out.risk)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,35000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention", choices=["none", "scores"], default="none")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    attention = None if args.attention == "none" else args.attention
    if args.one is not None:
        print(json.dumps(one(args.one, args.threads, attention)))
        return 0
    print(f"CrossFusion inference on CPU, {args.threads} thread(s), attention={args.attention}")
    print(f"{'N5':>7} {'N10':>7} {'N20':>8} {'seconds':>9} {'peak RSS GiB':>13}")
    for n in (int(v) for v in args.sizes.split(",")):
        result = subprocess.run([sys.executable, __file__, "--one", str(n), "--threads", str(args.threads),
                                 "--attention", args.attention], capture_output=True, text=True)
        if result.returncode:
            print(f"{'':>7} {n:>7}  failed: {result.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{r['n5']:>7} {r['n10']:>7} {r['n20']:>8} {r['seconds']:>9.2f} {r['peak_rss_gib']:>13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
