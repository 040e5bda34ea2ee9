"""InTurns (issue 15): GUI-thread work in pieces, the event loop running in between."""

from __future__ import annotations

import time

import numpy as np

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


def test_a_turns_repaints_come_in_a_turn_of_their_own(make_napari_viewer, qtbot):
    """A step's canvas change is painted in the next turn: the loop runs between step and paint
    (with software OpenGL each was ~90 ms, and Qt painted straight after the step: one freeze)."""
    from napari_harm3._qt.in_turns import HELD_PAINTS

    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(np.random.default_rng(0).random((32, 32)).astype(np.float32))
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    qtbot.wait(50)
    timer, ticks = _ticking()
    seen = []
    canvas.events.draw.connect(lambda event: seen.append(("draw", len(ticks))), position="last")

    def restyle(opacity):
        def step():
            layer.opacity = opacity
            seen.append(("step", len(ticks)))
        return alone(step)

    done = []
    turns = InTurns([restyle(0.5), restyle(0.8)], done=lambda: done.append(True)).start()  # noqa: F841 (kept)
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    qtbot.wait(50)
    timer.stop()
    while seen and seen[0][0] == "draw":  # a paint of the window's own, before the steps
        seen.pop(0)
    names = [name for name, _ in seen]
    assert names[:4] == ["step", "draw", "step", "draw"], seen  # each step painted before the next
    (_, after_step), (_, at_draw) = seen[0], seen[1]
    assert at_draw > after_step  # the event loop ran between the step and its paint
    assert not HELD_PAINTS.pending

    # stopped with a paint held: Qt makes it as it would have, and the canvas keeps painting
    seen.clear()
    stopped = InTurns([restyle(0.3), restyle(0.9)])
    stopped.start()
    qtbot.waitUntil(lambda: any(name == "step" for name, _ in seen), timeout=5_000)
    stopped.stop()
    qtbot.waitUntil(lambda: any(name == "draw" for name, _ in seen), timeout=5_000)
    assert layer.opacity == 0.3 and not HELD_PAINTS.pending
    seen.clear()
    layer.opacity = 0.6
    qtbot.waitUntil(lambda: any(name == "draw" for name, _ in seen), timeout=5_000)


def test_a_failing_step_leaves_no_paint_held(make_napari_viewer, qtbot):
    from napari_harm3._qt.in_turns import HELD_PAINTS

    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(np.zeros((16, 16), np.float32))
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    qtbot.wait(50)
    draws = []
    canvas.events.draw.connect(lambda event: draws.append(1), position="last")

    def fails():
        layer.opacity = 0.4
        raise ValueError("a bad case")

    errors = []
    turns = InTurns([fails], finish=lambda: setattr(layer, "opacity", 0.7),  # noqa: F841 (kept)
                    failed=errors.append).start()
    qtbot.waitUntil(lambda: bool(errors), timeout=5_000)
    assert not HELD_PAINTS.pending
    qtbot.waitUntil(lambda: bool(draws), timeout=5_000)  # the step's and finish's change painted
    draws.clear()
    layer.opacity = 0.2
    qtbot.waitUntil(lambda: bool(draws), timeout=5_000)  # and the canvas paints on


def test_paints_held_paints_after_the_block_in_a_turn_of_its_own(make_napari_viewer, qtbot):
    from qtpy.QtCore import QTimer

    from napari_harm3._qt.in_turns import HELD_PAINTS, paints_held

    viewer = make_napari_viewer(show=True)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    drawn = []
    canvas.events.draw.connect(lambda event: drawn.append(time.perf_counter()), position="last")
    layer = viewer.add_image(np.zeros((16, 16), np.float32))
    # settled: drawn, and no draw for a while (a canvas with a draw still to come asks for none)
    qtbot.waitUntil(lambda: bool(drawn) and time.perf_counter() - drawn[-1] > 0.3, timeout=10_000)
    timer, ticks = _ticking()
    seen = []
    canvas.events.draw.connect(lambda event: seen.append(("draw", len(ticks))), position="last")

    def block():
        with paints_held():
            layer.opacity = 0.3
            seen.append(("block", len(ticks)))
        assert HELD_PAINTS.pending  # to be painted, not yet

    QTimer.singleShot(0, block)
    qtbot.waitUntil(lambda: ("block" in [n for n, _ in seen]) and seen[-1][0] == "draw", timeout=5_000)
    timer.stop()
    at = [t for n, t in seen if n == "block"][0]
    draws = [t for n, t in seen[[n for n, _ in seen].index("block"):] if n == "draw"]
    assert draws and draws[0] > at and not HELD_PAINTS.pending  # painted later, after the loop ran


def _passes(busy_s: float = 0.0):
    """A zero timer: it fires once per pass of the event loop (and keeps it ``busy_s`` long)."""
    passes = []
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: (passes.append(1), time.sleep(busy_s)))
    timer.start()
    return timer, passes


def test_two_runners_take_turns_and_never_share_a_pass(qtbot):
    """Qt fires every due timer in one pass: without the gate two runners' turns ran back to
    back, one freeze (issue 15: a case's layers going in while the last case's maps leave)."""
    timer, passes = _passes(busy_s=0.004)  # a busy loop: both runners' timers are due at each pass
    seen = []

    def step(name):
        def work():
            seen.append((name, len(passes)))
            time.sleep(0.004)
        return alone(work)

    done = []
    first = InTurns([step("a1"), step("a2"), step("a3")], done=lambda: done.append("a")).start()  # noqa: F841
    second = InTurns([step("b1"), step("b2"), step("b3")], done=lambda: done.append("b")).start()  # noqa: F841
    qtbot.waitUntil(lambda: len(done) == 2, timeout=5_000)
    timer.stop()
    at = [p for _, p in seen]
    assert len(set(at)) == len(at)  # every step in a pass of its own
    order = [name[0] for name, _ in seen]
    assert order.count("a") == order.count("b") == 3
    assert all(x != y for x, y in zip(order, order[1:]))  # they alternate: neither waits for the other to end


def test_a_full_collection_falling_due_in_a_turn_runs_in_a_pass_of_its_own(qtbot):
    """A turn that makes many objects would set off Python's collection inside it (a full one is
    60–90 ms with a case open, on top of the turn's own work): it is held, then made right after,
    in a pass of its own; a young generation's (a few ms) is made at the turn's end."""
    import gc

    from napari_harm3._qt.in_turns import TURN_GATE

    timer, passes = _passes()
    collected_at = []
    step_passes = []
    kept = []  # what the turns make outlives them (as a new layer does)

    def callback(phase, info):
        if phase == "start":
            collected_at.append((len(passes), info["generation"]))

    def making_objects():
        step_passes.append(len(passes))
        kept.extend([i] for i in range(20 * gc.get_threshold()[0]))  # sets a collection off (gc on)
        assert not collected_at  # none ran inside the turn
        step_passes.append(len(passes))

    def run(steps) -> None:
        done = []
        turns = InTurns(steps, done=lambda: done.append(True)).start()  # noqa: F841 (kept)
        qtbot.waitUntil(lambda: bool(done), timeout=5_000)

    thresholds = gc.get_threshold()
    gc.collect()  # all counts 0: no full collection can be next
    gc.callbacks.append(callback)
    try:
        paid = TURN_GATE.collections_paid
        run([alone(making_objects)])
        assert TURN_GATE.collections_paid == paid and gc.isenabled()
        assert collected_at and collected_at[0] == (step_passes[1], 0)  # at the turn's end, same pass

        gc.set_threshold(thresholds[0], 1, 1)  # a full collection after two of the middle one
        while gc.get_count()[2] <= 1:  # ... brought to where the oldest generation is next
            kept.extend([i] for i in range(thresholds[0] // 4))
        collected_at.clear()
        step_passes.clear()
        run([alone(making_objects), alone(lambda: step_passes.append(len(passes)))])
        assert gc.isenabled()  # given back
        assert TURN_GATE.collections_paid == paid + 1
        assert collected_at and collected_at[0][0] > step_passes[1]  # after the turn, in a later pass
        assert step_passes[2] > collected_at[0][0]  # and before the next step, not in its pass
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(callback)
        timer.stop()


def _two_panels(make_napari_viewer):
    from napari_harm3._qt.mri_grid import MriGrid

    viewer = make_napari_viewer(show=True)
    grid = MriGrid()
    viewer.window.add_dock_widget(grid, name="MRI", area="right")
    first, second = list(grid.panels)[:2]
    for key in (first, second):
        grid.model(key).add_image(np.random.default_rng(0).random((12, 12)).astype(np.float32))
    canvases = [grid.qt_viewer(key).canvas._scene_canvas for key in (first, second)]
    return grid, grid.model(first).layers[0], canvases


def test_a_canvas_asked_to_repaint_during_a_paint_turn_paints_in_a_later_pass(make_napari_viewer, qtbot):
    """Linked canvases: one's paint makes another ask for a repaint (napari's view links). That
    paint is held too and made in a turn of its own (in the same pass, the two rounds of paints
    were one freeze of ~105 ms when a case is placed)."""
    grid, layer, (painted, linked) = _two_panels(make_napari_viewer)
    qtbot.wait(300)
    timer, passes = _passes()
    draws = []
    asked = []

    def on_painted(event):
        draws.append(("painted", len(passes)))
        if not asked:  # as a linked view would, once
            asked.append(True)
            linked.update()

    painted.events.draw.connect(on_painted, position="last")
    linked.events.draw.connect(lambda event: draws.append(("linked", len(passes))), position="last")
    done = []
    turns = InTurns([alone(lambda: setattr(layer, "opacity", 0.4)), alone(lambda: None)],  # noqa: F841
                    done=lambda: done.append(True)).start()
    qtbot.waitUntil(lambda: bool(done) and any(n == "linked" for n, _ in draws), timeout=5_000)
    timer.stop()
    painted_at = next(p for n, p in draws if n == "painted")
    linked_at = next(p for n, p in draws if n == "linked")
    assert linked_at > painted_at  # not in the paint turn's pass
    grid.close_viewers()


def test_canvases_asking_at_every_paint_do_not_keep_the_steps_from_running(make_napari_viewer, qtbot):
    """Two canvases that ask each other for a repaint at every paint: the steps still run, a
    paint turn never follows a paint turn."""
    grid, layer, (one, other) = _two_panels(make_napari_viewer)
    qtbot.wait(300)

    def one_drawn(event):
        other.update()

    def other_drawn(event):
        one.update()

    one.events.draw.connect(one_drawn, position="last")
    other.events.draw.connect(other_drawn, position="last")
    done, ran = [], []
    try:
        steps = [alone(lambda i=i: (ran.append(i), setattr(layer, "opacity", 0.3 + 0.1 * i))) for i in range(4)]
        turns = InTurns(steps, done=lambda: done.append(True)).start()  # noqa: F841 (kept)
        qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    finally:
        one.events.draw.disconnect(one_drawn)
        other.events.draw.disconnect(other_drawn)
    assert ran == [0, 1, 2, 3]
    grid.close_viewers()
