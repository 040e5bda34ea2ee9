"""Read the next case in the background, so that moving along the worklist is quick (no Qt).

A :class:`Prefetcher` holds **at most one** prefetched case: asking for another drops the
one held (its read is cancelled at its next progress report, and what it read is released:
its slide closed, its arrays left to the garbage collector). :meth:`Prefetcher.take` hands the
held case over — waiting for its read to finish — when it is the one asked for, else None
(then the caller reads the case itself). A read that failed is not kept: ``take`` returns
None and the caller's own read reports the error.

``load(source, progress)`` is what is read: by default :func:`~.case_data.open_case_data`
(volumes through the registration seam, masks, the slide's pyramid metadata and µm/px); the
viewer passes its reader, which also makes the layers and the slide thumbnail.
``release(result)`` frees a result nobody took (default: ``result.close()``, or
``result.opened.close()`` for the viewer's layers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..progress import CancelToken
from .case_data import open_case_data


def release_loaded(result) -> None:
    """Close what a read holds open (an OpenedCase, or anything with ``.opened``)."""
    opened = getattr(result, "opened", result)
    close = getattr(opened, "close", None)
    if close is not None:
        close()


class Prefetcher:
    """One background reader with a one-case shelf."""

    def __init__(self, load: Callable = open_case_data, release: Callable = release_loaded):
        self._load, self._release = load, release
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harm3-prefetch")
        self._lock = threading.Lock()
        self._key = None
        self._future: Future | None = None
        self._token: CancelToken | None = None
        self.started = 0          # reads started (for tests and benchmarks)

    @property
    def held(self):
        """The key of the case on the shelf (being read or read), or None."""
        with self._lock:
            return self._key

    def ready(self, key) -> bool:
        """True when ``key``'s read has finished (successfully or not)."""
        with self._lock:
            return self._key == key and self._future is not None and self._future.done()

    def prefetch(self, key, source) -> Future:
        """Start reading ``source`` under ``key`` (nothing new if it is already held)."""
        with self._lock:
            if self._key == key and self._future is not None:
                return self._future
            self._drop_locked()
            token = CancelToken()
            self._key, self._token = key, token
            self._future = self._executor.submit(self._read, source, token)
            self.started += 1
            return self._future

    def _read(self, source, token: CancelToken):
        return self._load(source, progress=token.wrap(None))

    def take(self, key, timeout: float | None = None):
        """The prefetched result for ``key`` (waiting for its read), or None; the shelf is emptied."""
        with self._lock:
            if self._key != key or self._future is None:
                return None
            future = self._future
            self._key, self._future, self._token = None, None, None
        try:
            return future.result(timeout)
        except Exception:  # noqa: BLE001 - a failed prefetch: the caller reads again and reports
            return None

    def discard(self) -> None:
        """Drop the held case (if any) and release what it read."""
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        future, token = self._future, self._token
        self._key, self._future, self._token = None, None, None
        if future is None:
            return
        token.cancel()
        future.add_done_callback(self._release_done)

    def _release_done(self, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        self._release(future.result())

    def close(self) -> None:
        """Drop the held case and stop the reader thread (it finishes the read in flight)."""
        self.discard()
        self._executor.shutdown(wait=False, cancel_futures=True)
