"""Work on the GUI thread in pieces, one piece per event-loop turn (issue 15: never frozen).

Putting a case into the viewers is GUI-thread work (napari layers, vispy visuals, first paints)
that took 3–4 s in one go on 2 cores with software OpenGL: the window did not answer for that
long. :class:`InTurns` runs such work as a list of steps over short timers — cheap steps share a
turn until it has taken ``TURN_BUDGET_MS`` — so between turns Qt delivers input and paints what
the last steps changed. ``finish`` runs once
after the last step, also when a step raised or :meth:`InTurns.stop` dropped the rest.

A step changes vispy canvases, and each changed canvas then repaints: with software OpenGL a new
layer's first paint (its programs linked, its textures uploaded, its glyphs laid out) costs as
much as the step that made the layer, 50–150 ms each on 2 cores. Qt paints straight after the
turn that asked, before any timer or input, so a step and its paint were one freeze (~175 ms for
a panel's volume). While a turn runs, the canvases' repaint requests are held
(:class:`HeldPaints`) and made in a turn of their own, the next one: the event loop runs between
a step and its paint, and each is shorter than the two together (``tests/test_qt_in_turns.py``;
``benchmarks/bench_viewer_latency.py``).

Several runners at once (a case's layers going in while the last case's maps leave, a restyle
while a run's maps go in) each have a timer, and Qt fires every timer that is due in one pass
of its loop: two runners' turns back to back were one freeze. :class:`TurnGate` lets one turn
run per pass and the runners take turns in the order they waited.

Python's own garbage collections come when enough objects have been made: with a case open a
full one walks ~200,000 objects (40–90 ms on 2 cores), and a turn making a napari layer makes
enough objects to set one off inside it (a heatmap's layer, 60–90 ms, became a 150 ms freeze).
The gate keeps full collections out of turns: one that may fall due during a turn (Python's
counts say the oldest generation is next) runs in a pass of its own right after it, with Python's
own rules for which generations it takes; a young generation's collection (a few ms) runs at the
turn's end, as it would have.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable, Optional

from qtpy.QtCore import QCoreApplication, QEvent, QObject, QTimer
from vispy.app.canvas import Canvas as VispyCanvas


#: the pause before the next step: long enough for Qt to paint what the last step changed (a
#: zero timer can fire before the window's pending repaint, and two steps then run back to back)
TURN_MS = 2
#: steps run on in the same turn until they have taken this long
TURN_BUDGET_MS = 40


def alone(step: Callable[[], None]) -> Callable[[], None]:
    """Mark ``step`` as costly (a new napari layer, a view fit of four canvases): it gets a turn
    of its own, never shared with the cheap steps before or after it. A callable that takes no
    attribute (a bound method, a builtin) is wrapped."""
    try:
        step.own_turn = True
    except AttributeError:
        def wrapped() -> None:
            step()

        wrapped.own_turn = True
        return wrapped
    return step


class HeldPaints:
    """vispy canvases' repaint requests, held while a :meth:`hold` block runs and made by :meth:`paint`.

    vispy asks for a repaint through ``Canvas.update`` (a scene canvas asks once and then waits
    for its draw); while held, the canvas is noted instead. :meth:`paint` asks Qt for the noted
    canvases' repaints and delivers them at once, so the paint is that call's work and not the
    start of the next step's turn. A canvas that is not shown (another tab) paints when shown,
    as with any request."""

    def __init__(self):
        self.depth = 0
        self.pending: "weakref.WeakSet[VispyCanvas]" = weakref.WeakSet()

    @contextmanager
    def hold(self):
        """Note requests instead of passing them on while the block runs (nested blocks too)."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def held(self, canvas) -> bool:
        """Note ``canvas``'s request if one is held now (True), else let it through (False)."""
        if self.depth <= 0:
            return False
        self.pending.add(canvas)
        return True

    def release(self) -> list:
        """Pass the noted requests on to Qt (each canvas's ``update()``: painted when Qt
        paints next); returns the top-level windows that will paint."""
        canvases = [canvas for canvas in list(self.pending) if canvas._backend is not None]
        self.pending.clear()
        windows = []
        for canvas in canvases:
            try:
                canvas._backend._vispy_update()  # Qt's update(): the paint is posted, not made
                window = canvas.native.window()
            except RuntimeError:  # its widget deleted by Qt meanwhile: nothing to paint
                continue
            if window.isVisible() and all(window is not seen for seen in windows):
                windows.append(window)
        return windows

    def paint(self) -> int:
        """Repaint the noted canvases now: their requests passed on and their windows' update
        requests delivered in this call. A canvas that asks again while it paints (napari's
        draw refreshing a layer after a view change) is noted, to paint in a later turn: the
        second round of paints was the same freeze. Returns how many windows painted."""
        windows = self.release()
        with self.hold():
            for window in windows:
                QCoreApplication.sendPostedEvents(window, QEvent.Type.UpdateRequest)
        return len(windows)


HELD_PAINTS = HeldPaints()


class TurnGate:
    """One :class:`InTurns` turn per pass of the event loop, the waiting runners in order.

    Qt fires all due timers in one pass: a runner whose timer fires within :attr:`SAME_PASS_S`
    of another runner's turn is in that pass, and waits; a runner that is not first among the
    waiting ones waits too. A waiting runner polls on its own timer; one that has not polled for
    :attr:`STALE_S` (ended, stopped, deleted with its window) is no longer waited for."""

    SAME_PASS_S = 0.001
    STALE_S = 0.5

    def __init__(self):
        self.last_end = float("-inf")
        self.last_runner: Optional[int] = None
        self.waiting: dict[int, float] = {}  # id(runner) -> when it last asked (insertion order kept)
        self.collection_owed = False  # gc held off since a turn in which a collection fell due
        self.collections_paid = 0

    def may_run(self, runner) -> bool:
        """True when ``runner`` may run its turn now; False: it waits (asks again on its timer)."""
        now = time.perf_counter()
        key = id(runner)
        self.waiting = {k: t for k, t in self.waiting.items() if k == key or now - t < self.STALE_S}
        just_ran = now - self.last_end < self.SAME_PASS_S and self.last_runner != key
        if self.collection_owed and not just_ran:  # the collection takes this pass
            self._pay()
            return False
        others_first = next(iter(self.waiting), key) != key  # a runner that waited longer
        if just_ran or others_first:
            self.waiting[key] = now  # a dict keeps a key's first place when its value changes
            return False
        self.waiting.pop(key, None)
        return True

    def ran(self, runner) -> None:
        self.last_end = time.perf_counter()
        self.last_runner = id(runner)

    def forget(self, runner) -> None:
        self.waiting.pop(id(runner), None)

    @contextmanager
    def collections_held(self):
        """Hold Python's automatic garbage collection while a turn runs; one that fell due
        meanwhile is owed, and paid in a pass of its own (the next runner's, or a timer's)."""
        if not gc.isenabled():  # owed already, or turned off by someone else: left as it is
            yield
            return
        gc.disable()
        try:
            yield
        finally:
            count, threshold = gc.get_count(), gc.get_threshold()
            if count[0] > threshold[0] and count[2] > threshold[2]:  # the next allocation would
                # collect, and may take the oldest generation (every object: ~40–90 ms)
                self.collection_owed = True
                QTimer.singleShot(TURN_MS, self._pay_when_free)  # also when no runner asks again
            else:  # none due, or a young generation's (a few ms): now, as Python would
                gc.enable()

    def _pay_when_free(self) -> None:
        if not self.collection_owed:
            return
        if time.perf_counter() - self.last_end < self.SAME_PASS_S:  # a turn ran in this pass
            QTimer.singleShot(TURN_MS, self._pay_when_free)
            return
        self._pay()

    def _pay(self) -> None:
        """Let Python collect as it would have (its thresholds choose the generations), now."""
        self.collection_owed = False
        gc.enable()
        _allocation = [[]]  # a tracked allocation: the owed collection runs on it
        del _allocation
        self.collections_paid += 1
        self.ran(None)


TURN_GATE = TurnGate()


def install_held_paints() -> None:
    """Route vispy's ``Canvas.update`` through :data:`HELD_PAINTS` (idempotent; every
    :class:`InTurns` calls it)."""
    original = VispyCanvas.update
    if getattr(original, "harm3_held", False):
        return

    def update(self, event=None):
        if not HELD_PAINTS.held(self):
            original(self, event)

    update.harm3_held = True
    update.__wrapped__ = original
    VispyCanvas.update = update


@contextmanager
def paints_held():
    """Hold the canvases' repaints while the block runs (work outside :class:`InTurns`, e.g. the
    last case's maps leaving); they are made in a turn of their own right after it (a short
    timer, or the first turn of an :class:`InTurns` started meanwhile, whichever comes first; not
    a zero timer: Qt delivers that as a posted call before any timer, i.e. in the same freeze)."""
    install_held_paints()
    try:
        with HELD_PAINTS.hold():
            yield
    finally:
        if HELD_PAINTS.depth == 0 and HELD_PAINTS.pending:
            QTimer.singleShot(TURN_MS, _paint_then_release)


def _paint_then_release() -> None:
    HELD_PAINTS.paint()
    HELD_PAINTS.release()  # asked again while painting: Qt paints them, in a later pass


class InTurns(QObject):
    """Run ``steps`` one per event-loop turn, then ``finish``; ``failed(exc)`` if a step raises
    (the rest are dropped, ``finish`` still runs; without ``failed`` the error is raised on),
    ``done()`` after ``finish`` otherwise."""

    def __init__(self, steps: Iterable[Callable[[], None]], finish: Optional[Callable[[], None]] = None,
                 done: Optional[Callable[[], None]] = None,
                 failed: Optional[Callable[[BaseException], None]] = None, parent: Optional[QObject] = None):
        super().__init__(parent)
        install_held_paints()
        self._steps = deque(steps)
        self._finish = finish
        self._done = done
        self._failed = failed
        self.running = False
        self.ended = False
        self._painted_last = False
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

    def extend(self, steps: Iterable[Callable[[], None]]) -> bool:
        """Add ``steps`` after the ones still to run; False when this runner has ended (start
        another one)."""
        if not self.running:
            return False
        self._steps.extend(steps)
        return True

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
        if schedule and not TURN_GATE.may_run(self):  # another runner's turn is this pass's
            self._timer.start()
            return
        if not schedule:
            self._turn(schedule)
            return
        try:
            with TURN_GATE.collections_held():
                self._turn(schedule)
        finally:
            TURN_GATE.ran(self)

    def _turn(self, schedule: bool) -> None:
        # the last turn's paints: a turn of their own (not two in a row: a canvas that asks
        # again at every paint must not keep the steps from running)
        if schedule and HELD_PAINTS.pending and not self._painted_last:
            HELD_PAINTS.paint()
            self._painted_last = True
            self._timer.start()
            return
        self._painted_last = False
        if not self._steps:
            self._end(None, completed=True)
            return
        if schedule:
            with HELD_PAINTS.hold():
                self._run_turn()
            if not self.running:  # ended in that turn (a step failed or stopped it; its finish
                HELD_PAINTS.release()  # ran held): no paint turn comes, Qt paints as it would
        else:
            self._run_turn(schedule=False)

    def _run_turn(self, schedule: bool = True) -> None:
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
        HELD_PAINTS.release()  # stopped or failed with paints held: Qt makes them as it would have
        TURN_GATE.forget(self)
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
