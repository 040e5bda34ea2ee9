"""Worklist benchmark (issue 13): cold open, switching to a prefetched case, memory over switches.

A 30-case synthetic cohort (``make_cohort(..., size="demo")``: 40×224×224 T1, 12288×8192 slide;
written once under benchmarks/output/, git-ignored) is opened in the viewer's Worklist tab
(a real napari window: run under Xvfb, ``xvfb-run -a``). Two fresh processes, same run:

- **prefetch** (the default): the first case is opened cold; then 50 switches with Next along
  the table (back with Previous at the ends), each after the next case's prefetch finished (the
  user looks at a case for a few seconds; the prefetch of a demo case takes about one);
- **peer: no prefetch**: the same 50 switches, each a cold read of the case.

A switch is timed from the call (``next_case`` / ``previous_case``) to the case shown in the
viewers and Qt's events processed (the draw queued by the layers). Memory: the process's RSS
(``/proc/self/statm``, after ``gc.collect()``) after 5 and after 50 switches, and its peak.

The event loop's worst stall in each open / switch (a 10 ms QTimer, as in bench_viewer_latency)
is printed beside the times.

Targets: cold open < 4 s, switch < 1 s p95, RSS after 50 within 1.2× of after 5.

Usage: ``xvfb-run -a .venv/bin/python benchmarks/bench_worklist.py [--switches 50]``.
Timings on a shared machine are noisy; the figures are what one run measured.
"""

from __future__ import annotations

import argparse
import gc
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
sys.path.insert(0, str(ROOT / "benchmarks"))

OUTPUT = ROOT / "benchmarks" / "output"
COHORT = OUTPUT / "worklist-cohort"
N_CASES = 30


def ensure_cohort(folder: Path = COHORT) -> Path:
    from napari_harm3.core.synth.cohort import make_cohort

    if not (folder / "cohort.csv").is_file():
        print(f"writing a {N_CASES}-case demo-size cohort into {folder} (once)…", flush=True)
        make_cohort(folder, N_CASES, seed=11, size="demo", workers=2)
    return folder


def rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _wait_prefetch(worklist, app, timeout_s: float = 60.0) -> None:
    held = worklist.prefetcher.held
    start = time.perf_counter()
    while held is not None and not worklist.prefetcher.ready(held) and time.perf_counter() - start < timeout_s:
        app.processEvents()
        time.sleep(0.005)


def child(mode: str, cohort: Path, switches: int) -> dict:
    from napari_harm3._qt.app import open_case_window, preload_torch

    preload_torch()  # as the viewer's launcher does: torch before napari's OpenGL context
    from qtpy.QtWidgets import QApplication

    from napari_harm3._qt.demo_steps import wait_for

    from bench_viewer_latency import StallProbe  # the same 10 ms event-loop probe

    viewer, panel = open_case_window(None, show=True)
    app = QApplication.instance()
    probe = StallProbe()
    sampler = None
    if os.environ.get("HARM3_BENCH_STALLS"):  # --stalls: where the worst stalls were spent
        from stall_sampler import StackSampler

        sampler = StackSampler()
    stalls: list = []
    worklist = panel.worklist
    worklist.set_prefetch(mode == "prefetch")
    assert worklist.open_cohort(cohort / "cohort.csv")
    ids = worklist.proxy.case_ids()

    def timed(action) -> float:
        start = time.perf_counter()
        action()
        index, args = wait_for([worklist.case_shown, worklist.case_failed], 120)
        app.processEvents()
        elapsed = time.perf_counter() - start
        if index != 0:
            raise RuntimeError(f"case not shown: {args}")
        stalls.append(max(probe.gaps_ms(start, time.perf_counter()), default=0.0))
        if sampler is not None:
            for a, b in probe.stalls(start, time.perf_counter()):
                print(f"stall of {(b - a) * 1000:.0f} ms at +{a - start:.2f} s:\n{sampler.explain(a, b)}",
                      file=sys.stderr, flush=True)
        return elapsed

    cold = timed(lambda: worklist.open_case_id(ids[0]))
    print(f"{mode} cold open: {cold:.3f} s", file=sys.stderr, flush=True)
    times, rss, step = [], {}, 1
    for n in range(1, switches + 1):
        if mode == "prefetch":
            _wait_prefetch(worklist, app)
        position = ids.index(worklist.current)
        if not 0 <= position + step < len(ids):
            step = -step
        times.append(timed(worklist.next_case if step > 0 else worklist.previous_case))
        print(f"{mode} switch {n}: {times[-1]:.3f} s", file=sys.stderr, flush=True)
        if n in (5, switches):
            rss[n] = rss_mb()
            print(f"{mode} RSS after {n} switches: {rss[n]:.0f} MB", file=sys.stderr, flush=True)
    prefetched = worklist.prefetcher.started
    worklist.close()
    panel.workflow.close()
    panel.close_viewers()
    viewer.close()
    return {"mode": mode, "cold_open_s": cold, "switch_s": times, "cold_stall_ms": stalls[0],
            "switch_stall_ms": stalls[1:], "rss_mb": rss, "peak_mb": peak_mb(),
            "prefetch_reads": prefetched, "cases": len(ids)}


def _percentiles(values) -> tuple:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=50)
    parser.add_argument("--cohort", type=Path, default=None)
    parser.add_argument("--stalls", action="store_true",
                        help="print where the GUI thread spent each stall over 100 ms (stderr of the children)")
    parser.add_argument("--child", choices=("prefetch", "noprefetch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    cohort = args.cohort or ensure_cohort()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, cohort, args.switches)), flush=True)
        return 0
    results = {}
    for mode in ("prefetch", "noprefetch"):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--cohort", str(cohort),
                               "--switches", str(args.switches)], capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT),
                                   **({"HARM3_BENCH_STALLS": "1"} if args.stalls else {})})
        if args.stalls:
            print(proc.stderr[-60000:])
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            return 1
        results[mode] = json.loads(line[len("RESULT "):])
    load = os.getloadavg()
    print(f"bench_worklist: {results['prefetch']['cases']}-case demo-size cohort, {args.switches} switches; "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{'mode':<22}{'cold open':>11}{'switch p50':>12}{'switch p95':>12}{'RSS@5':>9}{'RSS@' + str(args.switches):>9}"
          f"{'ratio':>7}{'peak':>8}")
    figures = {}
    for mode, r in results.items():
        p50, p95 = _percentiles(r["switch_s"])
        after5, after_n = r["rss_mb"]["5"], r["rss_mb"][str(args.switches)]
        figures[mode] = (r["cold_open_s"], p50, p95, after5, after_n)
        label = "prefetch" if mode == "prefetch" else "peer: no prefetch"
        print(f"{label:<22}{r['cold_open_s']:>10.2f}s{p50:>11.3f}s{p95:>11.3f}s{after5:>7.0f}MB{after_n:>7.0f}MB"
              f"{after_n / after5:>7.2f}{r['peak_mb']:>6.0f}MB")
    for mode, r in results.items():
        worst = r["switch_stall_ms"]
        print(f"{mode}: worst event-loop stall: cold open {r['cold_stall_ms']:.0f} ms; per switch p50 "
              f"{np.percentile(worst, 50):.0f} / p95 {np.percentile(worst, 95):.0f} / max {max(worst):.0f} ms")
    cold, p50, p95, a5, an = figures["prefetch"]
    peer_p95 = figures["noprefetch"][2]
    print(f"switch p95, no prefetch / prefetch: {peer_p95 / p95:.1f}x")
    print(f"targets: cold open < 4 s: {'met' if cold < 4 else 'NOT met'} ({cold:.2f} s); switch p95 < 1 s: "
          f"{'met' if p95 < 1 else 'NOT met'} ({p95:.3f} s); RSS after {args.switches} <= 1.2x after 5: "
          f"{'met' if an <= 1.2 * a5 else 'NOT met'} ({an / a5:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
