"""What the GUI thread was doing during an event-loop stall: a stack sampler for the latency benches.

A daemon thread reads the main thread's Python stack (``sys._current_frames``) every
``interval_ms`` and keeps ``(time, frames)``. :meth:`StackSampler.explain` takes a stall (its start
and end on ``time.perf_counter``) and names the frames seen in most of the samples inside it: the
longest common stack (what the whole stall was in), then the functions with the most samples
inclusive. A stall in C code that holds the GIL (a GL call, a numpy loop) shows as its Python
caller; the sampler only sees the main thread when the GIL is released at a switch interval.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time


def _label(code) -> str:
    path = code.co_filename
    for marker in ("site-packages" + os.sep, "napari_harm3" + os.sep):
        at = path.rfind(marker)
        if at >= 0:
            path = path[at + len("site-packages" + os.sep):] if marker.startswith("site") else path[at:]
            break
    return f"{path}:{code.co_name}"


class StackSampler:
    def __init__(self, interval_ms: float = 2.0, depth: int = 80):
        self.interval = interval_ms / 1000.0
        self.depth = depth
        self.samples: collections.deque = collections.deque(maxlen=200_000)
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = sys._current_frames().get(self._main)
            stack = []
            while frame is not None and len(stack) < self.depth:
                stack.append(frame.f_code)
                frame = frame.f_back
            self.samples.append((time.perf_counter(), tuple(reversed(stack))))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def explain(self, t0: float, t1: float, top: int = 6) -> str:
        """Lines naming where the main thread was between ``t0`` and ``t1``."""
        stacks = [stack for t, stack in list(self.samples) if t0 <= t <= t1]
        if not stacks:
            return "    (no samples)"
        common = []
        for frames in zip(*stacks):
            if any(f is not frames[0] for f in frames):
                break
            common.append(frames[0])
        n = len(stacks)
        lines = [f"    {n} samples; all in: " + " > ".join(_label(c) for c in common[-3:])]
        for branch in range(2):  # the hottest path below the common stack, then the next one
            group, depth = stacks, len(common)
            path = []
            while True:
                children = collections.Counter(s[depth] for s in group if len(s) > depth)
                if not children:
                    break
                code, count = children.most_common(2)[min(branch, len(children) - 1)] if depth == len(common) \
                    else children.most_common(1)[0]
                if count < 0.1 * n:
                    break
                path.append(f"{_label(code)} {100 * count / n:.0f}%")
                group = [s for s in group if len(s) > depth and s[depth] is code]
                depth += 1
            if path:
                lines.append("      " + ("hottest: " if branch == 0 else "next:    ") + " > ".join(path[-top:]))
        own = collections.Counter(s[-1] for s in stacks if s)
        lines += [f"      self {100 * c / n:3.0f}%  {_label(code)}" for code, c in own.most_common(3)]
        return "\n".join(lines)
