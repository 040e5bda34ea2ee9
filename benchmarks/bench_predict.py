"""Cohort throughput of ``harm3 predict`` (cases per minute): in this process, and on a local Dask
cluster of 1 and of 2 workers, same cohort, same run.

Each configuration runs the whole command in a fresh process (``python -m
napari_harm3.core.cli.main predict COHORT --out … --force --device cpu``), as a user would: the
figure includes Python and torch start-up, the cluster's start and each worker's model loading.
Two passes per configuration:

- **cold** — the slide features cache deleted first (``<cohort>/features`` for HARM3-Fusion,
  ``<case>/features`` for CrossFusion): every case extracts its slide features;
- **warm** — features cached (the usual rerun after ``--force`` or a new model).

The in-process run uses torch's default threads (all cores); Dask workers one thread each.
Also printed: the CPU seconds of the command and all its processes (``getrusage`` of the
children: less sensitive than wall time to other jobs on the machine), and the median per-case
time recorded in the CSV (``seconds``; it excludes start-up, except a worker's first case, which
includes its imports and model loading). The machine is shared: read the ratios, and the load
average printed before and after.

    .venv/bin/python benchmarks/bench_predict.py [--n 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "output"
CONFIGS = (("in-process", ["--workers", "0"]), ("dask, 1 worker", ["--workers", "1"]),
           ("dask, 2 workers", ["--workers", "2"]))


def harm3(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)


def make_cohort(n: int) -> Path:
    folder = OUTPUT / f"predict-cohort-{n}"
    if not (folder / "cohort.csv").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        done = harm3("synth", "--n", str(n), "--seed", "2024", "--out", str(folder))
        if done.returncode:
            sys.exit(done.stderr)
    return folder


def drop_features(cohort: Path) -> None:
    for folder in [cohort / "features", *cohort.glob("*/features")]:
        shutil.rmtree(folder, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(cohort: Path, options, out: Path) -> tuple:
    """(wall seconds of the command, its CPU seconds, median per-case seconds from the CSV)."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = harm3("predict", str(cohort), "--out", str(out), "--force", "--device", "cpu", *options)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode:
        sys.exit(f"harm3 predict failed ({done.returncode}):\n{done.stderr}")
    with open(out, newline="") as handle:
        seconds = [float(r["seconds"]) for r in csv.DictReader(handle)]
    return wall, cpu, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="cases in the synthetic cohort (default 10)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration and pass (best kept)")
    args = parser.parse_args()
    cohort = make_cohort(args.n)
    print(f"cohort: {args.n} synthetic cases ({cohort}); load average before: {os.getloadavg()}")
    print(f"{'configuration':18s} {'pass':5s} {'wall s':>8s} {'cases/min':>10s} {'CPU s':>7s} {'median s/case':>14s}")
    results = {}
    for name, options in CONFIGS:
        for phase in ("cold", "warm"):
            best = None
            for _ in range(args.repeats):
                if phase == "cold":
                    drop_features(cohort)
                measured = run_once(cohort, options, OUTPUT / "predictions-bench.csv")
                best = measured if best is None or measured[0] < best[0] else best
            results[name, phase] = best
            wall, cpu, per_case = best
            print(f"{name:18s} {phase:5s} {wall:8.1f} {args.n / wall * 60:10.1f} {cpu:7.1f} {per_case:14.2f}")
    for phase in ("cold", "warm"):
        one, two = results["dask, 1 worker", phase][0], results["dask, 2 workers", phase][0]
        serial = results["in-process", phase][0]
        print(f"{phase}: 2 workers / 1 worker throughput = {one / two:.2f}x; 2 workers / in-process = {serial / two:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
