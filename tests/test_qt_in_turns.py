"""InTurns (issue 15): GUI-thread work in pieces, the event loop running in between."""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer

from napari_harm3._qt.in_turns import TURN_BUDGET_MS, InTurns, alone


def _ticking():
    ticks = []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    return timer, ticks


def test_cheap_steps_share_a_turn_and_a_costly_one_has_its_own(qtbot):
    timer, ticks = _ticking()
    seen = []

    def cheap(name):
        return lambda: seen.append((name, len(ticks)))

    def costly(name):
        def step():
            seen.append((name, len(ticks)))
            time.sleep(0.002)  # cheap in time: only the mark gives it a turn of its own
        return alone(step)

    done = []
    turns = InTurns([cheap("a"), cheap("b"), costly("C"), cheap("d"), costly("E"), costly("F")],  # noqa: F841 (kept)
                    done=lambda: done.append(True)).start()
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    timer.stop()
    at = dict(seen)
    assert [name for name, _ in seen] == ["a", "b", "C", "d", "E", "F"]
    assert at["a"] == at["b"]  # shared a turn (well within the budget)
    assert at["C"] > at["b"] and at["d"] > at["C"]  # C alone: the loop ran before and after it
    assert at["E"] > at["d"] and at["F"] > at["E"]


def test_steps_over_the_budget_end_the_turn(qtbot):
    timer, ticks = _ticking()
    seen = []

    def slow(name):
        def step():
            seen.append((name, len(ticks)))
            time.sleep(TURN_BUDGET_MS / 1000 * 1.2)
        return step

    done = []
    turns = InTurns([slow("a"), slow("b")], done=lambda: done.append(True)).start()  # noqa: F841 (kept)
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    timer.stop()
    assert seen[1][1] > seen[0][1]


def test_run_now_runs_the_rest_in_this_turn_and_stop_drops_them():
    seen = []
    turns = InTurns([lambda: seen.append(1), alone(lambda: seen.append(2)), lambda: seen.append(3)])
    turns.run_now()
    assert seen == [1, 2, 3] and turns.ended
    finished = []
    dropped = InTurns([lambda: seen.append(4)], finish=lambda: finished.append(True)).start()
    dropped.stop()
    assert seen == [1, 2, 3] and finished == [True]
