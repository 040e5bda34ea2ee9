"""Progress reporting and cancellation for long core computations.

Core functions take ``progress: ProgressFn | None``; they call ``progress(fraction, message)``
with ``fraction`` in [0, 1] at points where stopping is safe. A caller that wants to cancel
makes the callback raise :class:`~napari_harm3.core.errors.Cancelled` (see
:class:`CancelToken`), so cancellation really stops the work at the next report.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]


def report(progress: Optional[ProgressFn], fraction: float, message: str = "") -> None:
    """Call ``progress`` if given; clamps ``fraction`` to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def scaled(progress: Optional[ProgressFn], start: float, stop: float) -> Optional[ProgressFn]:
    """A callback mapping a sub-task's [0, 1] onto [start, stop] of the parent's."""
    if progress is None:
        return None

    def sub(fraction: float, message: str = "") -> None:
        progress(start + (stop - start) * min(1.0, max(0.0, fraction)), message)

    return sub


class CancelToken:
    """Thread-safe cancel flag; ``wrap(progress)`` makes a callback that honours it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")

    def wrap(self, progress: Optional[ProgressFn] = None) -> ProgressFn:
        def wrapped(fraction: float, message: str = "") -> None:
            self.check()
            if progress is not None:
                progress(fraction, message)

        return wrapped
