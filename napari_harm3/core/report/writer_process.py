"""A report's files written in a process of their own (the viewer's Export).

Rendering the PDF is seconds of matplotlib in Python (3.6 s of the demo report's 3.8 s on 2
loaded cores). In a worker thread of the viewer it competed with the GUI thread for the GIL: the
window froze 0.2–0.4 s at a time during an export although no single call held the GIL for long
(``benchmarks/bench_viewer_latency.py --stalls`` found the stack sampler itself starved; a plain
thread probe beside the same export on the command line saw gaps of 50 ms at most). A child
process has its own interpreter: the built :class:`~.model.Report` (picklable: 4 MB, 3 ms for the
demo case) goes there and :func:`~.write.write_report_files` writes the pair there, atomically as
ever; the paths come back.

The child comes from a forkserver where the platform has one (a clean server process that
imported the report modules once, never a fork of the viewer with its GL context and threads);
elsewhere it is spawned. One child serves the session: :meth:`ReportWriterProcess.start` makes it
ahead of the first export (the viewer calls :meth:`ReportWriterProcess.start_in_background` when
a model run has finished: a report needs one), :meth:`ReportWriterProcess.close` ends it. The
command line writes in its own process as before (there is no window to keep answering).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..errors import Harm3Error
from ..progress import ProgressFn
from ..progress import report as report_progress
from .model import Report
from .write import write_report_files

#: what the forkserver imports once, so that each child starts with them loaded
PRELOAD = ["napari_harm3.core.report.write"]


def _context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _child_pid() -> int:
    return os.getpid()


class ReportWriterProcess:
    """``write`` = :func:`~.write.write_report_files`, run in the one child process."""

    def __init__(self):
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.written = 0  # reports this process wrote (the viewer's Export and the worklist's batches)

    def _the_pool(self) -> ProcessPoolExecutor:
        with self._lock:  # not held while the child is made: close() never waits for a boot
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=_context())
            return self._pool

    def start(self) -> Future:
        """Make the child now (not at the first export); a future of its pid."""
        return self._the_pool().submit(_child_pid)

    def start_in_background(self) -> None:
        """:meth:`start` in a thread of its own: the first start boots the forkserver, which
        imports the report modules before it answers (~1–3 s): never on the GUI thread."""
        with self._lock:
            if self._pool is not None:
                return  # made already: no thread and no job per finished run

        def boot() -> None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to start
                self.start()

        threading.Thread(target=boot, name="harm3-report-process", daemon=True).start()

    def child_pid(self) -> int:
        return self.start().result()

    def write(self, report: Report, pdf_path, json_path=None, overwrite: bool = False, with_json: bool = True,
              progress: ProgressFn | None = None) -> tuple:
        """Write the report's PDF (and JSON) in the child: (pdf, json or None), as in-process."""
        report_progress(progress, 0.0, "rendering the report")
        pool = self._the_pool()
        try:
            try:
                job = pool.submit(write_report_files, report, pdf_path, json_path, overwrite, with_json)
            except RuntimeError as exc:  # shut down meanwhile (the window closing)
                raise BrokenProcessPool(str(exc)) from exc
            written = job.result()  # the child's own errors (a refusal, a failed page) come as they are
        except BrokenProcessPool as exc:
            self.close()  # the next export makes a new child
            raise Harm3Error("the process writing the report stopped before it finished; "
                             "nothing was written: export again") from exc
        with self._lock:
            self.written += 1
        report_progress(progress, 1.0, "report written")
        return written

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
