"""Viewer latency: wall time and event-loop stalls of the plugin's window, phase by phase (issue 15).

    PYTHONPATH=$PWD QT_API=pyqt6 .venv/bin/python benchmarks/bench_viewer_latency.py [--profile DIR]

Runs itself under ``xvfb-run -a`` when there is no display. Opens the window ``harm3 demo`` opens
(napari viewer, case panel with its Models tab, linked MRI grid) and drives it as a user's clicks
would: open the demo patient, Predict pCR (first: models loaded, features read from the case's
cache or, with ``--fresh``, computed; then again), Predict survival, overlay threshold /
colormap / visibility changes, report export, then a copy of the patient opened as the next case
(the first case's layers refilled, as the worklist's next/previous does). A QTimer ticking every 10 ms records the gap between
its ticks: a gap well over 10 ms is time the GUI thread did not answer (a frozen window). Per phase
it prints the wall time, the worst gap and the 99th percentile; peers measured in the same run:
the core's own computation of the same step on the main thread without a viewer (``run.execute``,
``export_report``) and the fold models' forward pass alone.

``--stalls`` samples the GUI thread's Python stack every 2 ms (``stall_sampler.py``) and prints,
for every stall over 100 ms, the stack it was spent in.

``--profile DIR`` writes a cProfile of the GUI thread per phase (``DIR/<phase>.prof``) and prints
its top functions: that is where the stalls are.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
STALL_MS = 100.0


def _process_age_s() -> float:
    """Seconds since this Python process started (interpreter start, not this line)."""
    try:
        import psutil  # lazy: only for the figure "Python start → viewer"

        return time.time() - psutil.Process().create_time()
    except ImportError:
        return time.perf_counter() - START


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


class StallProbe:
    """A 10 ms QTimer recording when it fired; ``window(t0, t1)`` gives the gaps that ended in it."""

    def __init__(self, interval_ms: int = 10):
        from qtpy.QtCore import QTimer  # lazy: Qt only once the display is there

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start()

    def gaps_ms(self, t0: float, t1: float) -> list[float]:
        import numpy as np  # lazy: keeps the module's top Qt- and numpy-free for --help

        ticks = np.asarray(self.ticks)
        inside = ticks[(ticks >= t0) & (ticks <= t1)]
        before = ticks[ticks < t0]
        if before.size:
            inside = np.concatenate([[before[-1]], inside])
        if inside.size and inside[-1] < t1:  # a stall still running at t1 counts up to t1
            inside = np.concatenate([inside, [t1]])
        return list(np.diff(inside) * 1000.0)

    def stalls(self, t0: float, t1: float, over_ms: float = STALL_MS) -> list[tuple[float, float]]:
        """The gaps over ``over_ms`` that ended in ``(t0, t1)``, as (start, end) times."""
        ticks = [t for t in self.ticks if t < t0][-1:] + [t for t in self.ticks if t0 <= t <= t1]
        return [(a, b) for a, b in zip(ticks, ticks[1:]) if (b - a) * 1000.0 > over_ms]


class WorkerTimes:
    """Starts a run through the Models tab (as its button does) and keeps its worker's own time."""

    def __init__(self, workflow):
        self.workflow = workflow
        self.seconds: dict = {}

    def start(self, analysis: str, label: str):
        def go():
            worker = self.workflow.run(analysis)
            worker.returned.connect(lambda result: self.seconds.__setitem__(label, getattr(result, "seconds", float("nan"))))
        return go

    def peer(self, label: str, extra=None):
        def text():
            out = f"worker {self.seconds.get(label, float('nan')):.2f} s"
            return out + (f"; {extra()}" if extra else "")
        return text


class Bench:
    def __init__(self, profile_dir: Path | None):
        self.rows: list[tuple] = []
        self.profile_dir = profile_dir
        self.probe = None
        self.sampler = None
        self.times: list[tuple[float, float]] = []

    def phase(self, name: str, start, done_signals, settle_s: float = 0.4, timeout_s: float = 900.0, peer=None,
              until=None):
        """Run ``start()`` then the event loop until one of ``done_signals`` (or ``until()`` is
        true); then ``settle_s`` more (the draws and handlers that follow the result). Records wall
        time to the signal and the gaps."""
        from napari_harm3._qt.demo_steps import wait_for  # lazy: Qt

        profiler = cProfile.Profile() if self.profile_dir else None
        _spin(0.1)  # the probe ticks again (work done between phases is not this phase's)
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        start()
        index, args = wait_for(done_signals, timeout_s) if done_signals else (0, ())
        while until is not None and not until():
            _spin(0.005)
        t1 = time.perf_counter()
        _spin(settle_s)
        if profiler:
            profiler.disable()
        t2 = time.perf_counter()
        if index != 0:
            raise SystemExit(f"{name}: did not finish ({args})")
        gaps = self.probe.gaps_ms(t0, t2)
        self.times.append((t0, t2))
        self.rows.append((name, t1 - t0, gaps, peer() if peer else None))
        if profiler:
            self._write_profile(name, profiler)
        return args

    def _write_profile(self, name: str, profiler) -> None:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        path = self.profile_dir / f"{name.replace(' ', '_').replace('/', '-')}.prof"
        profiler.dump_stats(str(path))
        print(f"\n--- GUI thread profile of '{name}' ({path}) ---")
        pstats.Stats(str(path)).sort_stats("cumulative").print_stats(18)

    def print_table(self) -> None:
        import numpy as np  # lazy: see StallProbe.gaps_ms

        print(f"\n{'phase':<34} {'wall s':>8} {'worst gap ms':>13} {'p99 gap ms':>11} {'gaps>100ms':>10}  peer")
        for name, wall, gaps, peer in self.rows:
            worst = max(gaps) if gaps else float("nan")
            p99 = float(np.percentile(gaps, 99)) if gaps else float("nan")
            over = sum(g > STALL_MS for g in gaps)
            print(f"{name:<34} {wall:8.2f} {worst:13.0f} {p99:11.0f} {over:10d}  {peer or ''}")
        if self.sampler is None:
            return
        for (name, *_), (t0, t1) in zip(self.rows, self.times):
            for a, b in self.probe.stalls(t0, t1):
                print(f"\nstall of {(b - a) * 1000:.0f} ms in '{name}' at +{a - t0:.2f} s:")
                print(self.sampler.explain(a, b))


def _spin(seconds: float) -> None:
    from qtpy.QtCore import QEventLoop, QTimer  # lazy: Qt

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _demo_case(workdir: Path, fresh: bool) -> Path:
    """The cached demo patient (its slide features cached there by the first run), or with ``fresh``
    a copy without them (the first pCR run computes them: minutes on 2 cores)."""
    from napari_harm3.core.synth.demo import demo_case  # lazy: after the display check
    from napari_harm3.core.vocabulary import FEATURES_DIR

    manifest = demo_case()
    if not fresh:
        return manifest
    target = workdir / "case"
    shutil.copytree(manifest.parent, target, ignore=shutil.ignore_patterns(FEATURES_DIR))
    return target / manifest.name


def _forward_s(session) -> float:
    """The pCR fold models' forward pass alone on the open case (features cached), seconds."""
    import torch  # lazy: loaded by then

    from napari_harm3.core.session.runs import features_root
    from napari_harm3.core.train.harm3_data import collate, sample_from_case

    run = session.start_run("pcr", gradcam=False)
    session._forget(run)
    ensemble = session.models.get(run.model.path, run.device, "pcr")
    sample = sample_from_case(session.case, ensemble.prep_config, features_root(session.opened, session.scale),
                              ensemble.card.encoder, use_slide=ensemble.harm3_config.use_slide,
                              volumes=session.opened.volumes, mpp=session.scale.mpp, own_cache=True)
    inputs, _ = collate([sample])
    t0 = time.perf_counter()
    with torch.no_grad():
        for model in ensemble.models:
            model(**inputs)
    return time.perf_counter() - t0


def _core_s(session, analysis: str) -> float:
    """The same run's computation without the viewer (main thread, models and features cached)."""
    run = session.start_run(analysis)
    session._forget(run)
    t0 = time.perf_counter()
    run.execute()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true",
                        help="a copy of the demo patient without its cached slide features")
    parser.add_argument("--stalls", action="store_true", help="print the GUI thread's stack in each stall")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile per phase into this folder")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("HARM3_BENCH_UNDER_XVFB"):
        env = {**os.environ, "HARM3_BENCH_UNDER_XVFB": "1"}
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", sys.executable, __file__, *(argv or sys.argv[1:])]
        return subprocess.call(cmd, env=env)
    os.environ.setdefault("QT_API", "pyqt6")
    print(_load(), "(start)")

    t_imports = time.perf_counter()
    from napari_harm3._qt.app import open_case_window, preload_torch  # lazy: timed phase

    preload_torch()
    import napari  # noqa: F401  lazy: timed phase
    imports_s = time.perf_counter() - t_imports
    t_window = time.perf_counter()
    viewer, panel = open_case_window(show=True)
    from qtpy.QtWidgets import QApplication  # lazy: Qt

    QApplication.processEvents()
    window_s = time.perf_counter() - t_window
    print(f"Python start → window with the plugin shown: {_process_age_s():.2f} s "
          f"(imports incl. torch {imports_s:.2f} s, window {window_s:.2f} s)")

    bench = Bench(args.profile)
    bench.probe = StallProbe()
    if args.stalls:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from stall_sampler import StackSampler  # lazy: only with --stalls

        bench.sampler = StackSampler()
    workflow = panel.workflow
    session = panel.session
    with tempfile.TemporaryDirectory(prefix="harm3-latency-") as tmp:
        manifest = _demo_case(Path(tmp), args.fresh)
        _spin(0.5)
        bench.phase("case open (demo patient)", lambda: panel.open_case(manifest),
                    [panel.case_loaded, panel.case_failed])
        runs = WorkerTimes(workflow)
        done = [workflow.run_finished, workflow.run_failed]
        bench.phase("Predict pCR (first)", runs.start("pcr", "pcr1"), done, peer=runs.peer("pcr1"))
        bench.phase("Predict pCR (again)", runs.start("pcr", "pcr2"), done,
                    peer=runs.peer("pcr2", lambda: f"core run.execute {_core_s(session, 'pcr'):.2f} s, "
                                                   f"fold models' forward {_forward_s(session):.3f} s"))
        bench.phase("Predict survival (first)", runs.start("survival", "s1"), done, peer=runs.peer("s1"))
        bench.phase("Predict survival (again)", runs.start("survival", "s2"), done,
                    peer=runs.peer("s2", lambda: f"core run.execute {_core_s(session, 'survival'):.2f} s"))
        controls = workflow.overlay_controls
        n_layers = len(workflow.overlay_layers())

        overlays = workflow.overlays
        steps_left = []

        def as_user_events(actions, every_ms: int):
            """``actions`` one per event, ``every_ms`` apart (a slider drag, clicks), not in one turn."""
            from qtpy.QtCore import QTimer  # lazy: Qt

            steps_left[:] = list(actions)
            for n, _ in enumerate(actions):
                QTimer.singleShot(n * every_ms, lambda: steps_left.pop(0)())

        def settled() -> bool:
            return not steps_left and not overlays.restyling()

        bench.phase(f"threshold drag, 5 steps ({n_layers} overlays)", lambda: as_user_events(
            [lambda v=v: controls.threshold.setValue(v) for v in (20, 30, 40, 50, 15)], 40), [], until=settled)
        bench.phase("colormap change", lambda: controls.colormap.setCurrentIndex(
            (controls.colormap.currentIndex() + 1) % controls.colormap.count()), [], until=settled)

        def toggles():
            return [lambda layer=layer: setattr(layer, "visible", not layer.visible)
                    for layer in workflow.overlay_layers()]

        bench.phase(f"{n_layers} overlays shown/hidden, one click each", lambda: as_user_events(toggles(), 150), [],
                    until=settled)
        pdf = Path(tmp) / "report.pdf"
        peer_pdf = Path(tmp) / "peer.pdf"

        def export_peer():
            t0 = time.perf_counter()
            session.export_report(peer_pdf, require_results=True)
            return f"core export_report {time.perf_counter() - t0:.2f} s"

        bench.phase("report export", lambda: workflow.export_report(pdf),
                    [workflow.report_written, workflow.report_failed], peer=export_peer)
        # the next patient, as a worklist's "next" opens it: the open case's layers take its data
        next_case = Path(tmp) / "next" / manifest.parent.name
        shutil.copytree(manifest.parent, next_case)
        _spin(0.5)
        from napari_harm3._qt.layer_removal import removals_under_way  # lazy: Qt

        # the last case's maps leave over turns of their own: the phase lasts until they are out
        bench.phase("open the next case (layers refilled)", lambda: panel.open_case(next_case / manifest.name),
                    [panel.case_loaded, panel.case_failed], until=lambda: not removals_under_way())
    bench.print_table()
    print(_load(), "(end)")
    panel.close_viewers()
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
