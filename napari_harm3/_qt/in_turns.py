"""Work on the GUI thread in pieces, one piece per event-loop turn (issue 15: never frozen).

Putting a case into the viewers is GUI-thread work (napari layers, vispy visuals, first paints)
that took 3–4 s in one go on 2 cores with software OpenGL: the window did not answer for that
long. :class:`InTurns` runs such work as a list of steps over short timers — cheap steps share a
turn until it has taken ``TURN_BUDGET_MS`` — so between turns Qt delivers input and paints what
the last steps changed. ``finish`` runs once
after the last step, also when a step raised or :meth:`InTurns.stop` dropped the rest.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Iterable, Optional

from qtpy.QtCore import QObject, QTimer


#: the pause before the next step: long enough for Qt to paint what the last step changed (a
#: zero timer can fire before the window's pending repaint, and two steps then run back to back)
TURN_MS = 2
#: steps run on in the same turn until they have taken this long
TURN_BUDGET_MS = 40


def alone(step: Callable[[], None]) -> Callable[[], None]:
    """Mark ``step`` as costly (a new napari layer, a view fit of four canvases): it gets a turn
    of its own, never shared with the cheap steps before or after it."""
    step.own_turn = True
    return step


class InTurns(QObject):
    """Run ``steps`` one per event-loop turn, then ``finish``; ``failed(exc)`` if a step raises
    (the rest are dropped, ``finish`` still runs; without ``failed`` the error is raised on),
    ``done()`` after ``finish`` otherwise."""

    def __init__(self, steps: Iterable[Callable[[], None]], finish: Optional[Callable[[], None]] = None,
                 done: Optional[Callable[[], None]] = None,
                 failed: Optional[Callable[[BaseException], None]] = None, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._steps = deque(steps)
        self._finish = finish
        self._done = done
        self._failed = failed
        self.running = False
        self.ended = False
        # the timer is this object's child: deleted with it, it never fires into a closed window
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(TURN_MS)
        self._timer.timeout.connect(self._next)

    def start(self) -> "InTurns":
        self.running = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Drop the steps not yet run (``finish`` runs, ``done`` does not)."""
        if not self.running:  # ended: nothing to stop (and its Qt side may be gone)
            return
        self._timer.stop()
        self._steps.clear()
        self._end(None, completed=False)

    def run_now(self) -> None:
        """Run the steps (the remaining ones, if started) at once, in this turn."""
        if self.ended:
            return
        self._timer.stop()
        self.running = True
        if not self._steps:
            self._end(None, completed=True)
        while self.running and self._steps:
            self._next(schedule=False)

    def _next(self, schedule: bool = True) -> None:
        if not self.running:
            return
        if not self._steps:
            self._end(None, completed=True)
            return
        start = time.perf_counter()
        ran = 0
        while self._steps:  # cheap steps (a refilled layer) share a turn; a costly one has its own
            if schedule and ran and getattr(self._steps[0], "own_turn", False):
                break
            step = self._steps.popleft()
            ran += 1
            try:
                step()
            except Exception as exc:  # noqa: BLE001 — reported through ``failed``, the rest dropped
                self._steps.clear()
                self._end(exc, completed=False)
                return
            if not self.running:  # the step stopped this (e.g. by closing the case)
                return
            if not schedule or (time.perf_counter() - start) * 1000 >= TURN_BUDGET_MS \
                    or getattr(step, "own_turn", False):
                break
        if schedule:
            self._timer.start()
        elif not self._steps:
            self._end(None, completed=True)

    def _end(self, exc: Optional[BaseException], completed: bool) -> None:
        self.running = False
        self.ended = True
        finish, done, failed = self._finish, self._done, self._failed
        # let go of the steps' closures (they hold a whole case) and of this object itself
        self._finish = self._done = self._failed = None
        self.deleteLater()
        try:
            if finish is not None:
                finish()
        except Exception as finish_exc:  # noqa: BLE001 — the first failure is the one reported
            exc = exc or finish_exc
            completed = False
        if exc is not None:
            if failed is None:
                raise exc  # nobody to tell: napari's exception hook shows it
            failed(exc)
        elif completed and done is not None:
            done()
