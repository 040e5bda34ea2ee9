"""A result belongs to its case (issue 15): open case A, press Predict (pCR, survival) or Export,
open case B while the work runs. B's results box then shows only B's numbers or none, A's
Grad-CAM maps and slide heatmaps never land on B's layers, and Export writes nothing of A under B.

Case B is shown right after the press (read ahead through the same core + glue functions the
panel's worker calls), so A's work is certainly still running when B appears: the dangerous
order, every time, without sleeping. One round goes through the panel's own Open (a worker)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_harm3._qt.app import preload_torch
from napari_harm3._qt.layer_removal import is_withdrawn

preload_torch()  # torch before any OpenGL context (see test_qt_workflow.py)

from test_qt_workflow import click, make_workflow, open_case, press  # noqa: E402,F401 (fixture)

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def read_ahead(manifest):
    """The case as the panel's worker reads it (core's open_case_data + the glue's layers)."""
    from napari_harm3._layers import case_layer_data
    from napari_harm3.core.session import open_case_data

    return case_layer_data(open_case_data(manifest))


def layers_of(viewer, panel) -> list:
    out = list(viewer.layers)
    for key in panel.grid.panels:
        out += list(panel.grid.layers(key))
    return out


def assert_nothing_of(ref, viewer, panel, workflow, export_to):
    """Nothing computed for ``ref`` is shown, held or exportable now that another case is open."""
    session = panel.session
    assert session.ref != ref
    assert all(p.case_ref == session.ref for p in session.predictions.values())
    assert not [l.name for l in layers_of(viewer, panel) if l.metadata.get("harm3_case") == ref]
    for layer in layers_of(viewer, panel):  # maps still leaving (a turn each): off the screen and empty
        if is_withdrawn(layer):
            assert not layer.visible and not np.any(layer.data) and layer.metadata == {"harm3_kind": "withdrawn"}
    text = workflow.results_view.text.toPlainText()
    assert text.startswith(f"case: {session.ref.case_id}\n") and ref.case_id not in text
    if not session.predictions:
        assert "pCR: not run" in text and "survival: not run" in text
        assert workflow.export_report(export_to) is None  # refused: no results of this case
        assert not export_to.exists() and not export_to.with_suffix(".json").exists()


def answer_dialogs(answers: list) -> None:
    """Answer the modal dialogs that open next, one callable per dialog, from the event loop
    (a dialog still open after ~30 s is closed, so a wrong answer fails instead of hanging)."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    polls = [600]

    def poll():
        dialog = QApplication.activeModalWidget()
        polls[0] -= 1
        if dialog is not None and answers:
            answers.pop(0)(dialog)
        elif dialog is not None and polls[0] <= 0:
            dialog.close()
        if answers or (dialog is not None and polls[0] > 0):
            QTimer.singleShot(50, poll)

    QTimer.singleShot(0, poll)


def save_as(path):
    from qtpy.QtWidgets import QDialogButtonBox

    def answer(dialog):  # the file dialog Qt made: its Save button (accept() is protected)
        dialog.selectFile(str(path))
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
    return answer


def say_no(dialog):
    from qtpy.QtWidgets import QMessageBox

    assert dialog.windowTitle() == "Replace report?", dialog.windowTitle()
    dialog.button(QMessageBox.StandardButton.No).click()


def run_detached(qtbot, workflow, analysis, show_other):
    """Press ``analysis``, call ``show_other()`` at once; returns how A's run ended."""
    with qtbot.waitSignal(workflow.run_failed, timeout=300_000) as ended:
        click(qtbot, workflow.buttons[analysis])
        show_other()
    assert ended.args[0] == analysis and ended.args[1] in ("cancelled", "discarded"), ended.args
    return ended.args[1]


def test_results_overlays_and_reports_stay_with_their_case(make_workflow, qtbot, small_cohort, tmp_path):
    a, b = small_cohort / "SYN-0003" / "case.yaml", small_cohort / "SYN-0004" / "case.yaml"
    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, a)

    # pCR on A, B opened while it runs: no Grad-CAM of A in B's panels
    ref_a = panel.session.ref
    ahead = read_ahead(b)
    run_detached(qtbot, workflow, "pcr", lambda: panel.show_case(ahead))
    assert panel.session.ref == ahead.opened.ref and not panel.session.predictions
    assert not workflow.overlays.layers["pcr"]
    assert_nothing_of(ref_a, viewer, panel, workflow, tmp_path / "B-after-pcr.pdf")

    # survival on B, A opened through the panel's Open (a worker) while it runs
    ref_b = panel.session.ref
    with qtbot.waitSignal(panel.case_loaded, timeout=300_000):
        click(qtbot, workflow.buttons["survival"])
        panel.open_case(a)
    qtbot.waitUntil(lambda: not panel.session.running, timeout=300_000)  # B's run ended (either way)
    assert panel.session.case.case_id == "SYN-0003"
    assert not workflow.overlays.layers["survival"]
    assert_nothing_of(ref_b, viewer, panel, workflow, tmp_path / "A-after-survival.pdf")

    # survival on A, B shown while it runs: no heatmap of A on B's slide
    ref_a = panel.session.ref
    ahead = read_ahead(b)
    run_detached(qtbot, workflow, "survival", lambda: panel.show_case(ahead))
    assert_nothing_of(ref_a, viewer, panel, workflow, tmp_path / "B-after-survival.pdf")

    # B's own pCR: B's numbers and maps; then Export of B interrupted by opening A: B's report or nothing
    pcr_b = press(qtbot, workflow, "pcr")
    ref_b = panel.session.ref
    assert pcr_b.case_ref == ref_b
    cams = [l for l in workflow.overlays.layers["pcr"] if l.metadata.get("harm3_kind") == "gradcam"]
    assert cams and all(l.metadata["harm3_case"] == ref_b for l in cams)
    assert f"p(pCR) = {pcr_b.probability:.3f}" in workflow.results_view.text.toPlainText()
    # the device menu offers only this machine's devices
    from napari_harm3.core.device import available_devices

    assert [workflow.device.itemData(i) for i in range(workflow.device.count())] == [c for _, c in available_devices()]

    # Export onto existing files, "No" to "Replace report?": kept, and nothing says "Report written"
    kept = tmp_path / "kept.pdf"
    kept.write_bytes(b"old pdf")
    kept.with_suffix(".json").write_text("old json")
    written = []
    workflow.report_written.connect(written.append)
    answer_dialogs([save_as(kept), say_no])
    click(qtbot, workflow.export_button)
    assert workflow.status.text() == "Report not written: the files exist and were kept"
    assert kept.read_bytes() == b"old pdf" and kept.with_suffix(".json").read_text() == "old json"
    assert not written and workflow.export_button.isEnabled()
    workflow.report_written.disconnect(written.append)

    out = tmp_path / "B report.pdf"
    ahead = read_ahead(a)
    assert workflow.export_report(out) is not None
    panel.show_case(ahead)
    qtbot.waitUntil(lambda: workflow.export_button.isEnabled(), timeout=300_000)
    if out.with_suffix(".json").exists():  # finished before the switch: all of it B's
        data = json.loads(out.with_suffix(".json").read_text())
        assert data["case"]["case_id"] == "SYN-0004" and data["pcr"]["probability"] == pytest.approx(pcr_b.probability)
    else:
        assert not out.exists() and workflow.status.text().startswith("Report not written")
    assert_nothing_of(ref_b, viewer, panel, workflow, tmp_path / "A-after-export.pdf")


def test_a_case_opened_while_a_runs_maps_go_in_gets_none_of_them(make_workflow, qtbot, small_cohort, tmp_path):
    """A finished run's maps go into the viewers over event-loop turns (the window answers in
    between); a case opened in the middle stops them: none of A's maps land on B, and the run
    is still announced as finished (it was: its numbers are A's, kept with A's session)."""
    a, b = small_cohort / "SYN-0003" / "case.yaml", small_cohort / "SYN-0004" / "case.yaml"
    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, a)
    press(qtbot, workflow, "pcr")  # features cached and models loaded: the next run is quick
    ref_a = panel.session.ref
    workflow.overlays.remove()  # the next run makes new layers (not refills: those go in at once)
    ahead = read_ahead(b)
    seen = []

    def open_b_midway(analysis, prediction):
        if prediction is not None and workflow.overlays.going_in() and not seen:
            seen.append([l.name for l in workflow.overlays.all()])  # what was in when B came
            panel.show_case(ahead)

    panel.session.prediction_changed.connect(open_b_midway)
    try:
        with qtbot.waitSignal(workflow.run_finished, timeout=300_000) as finished:
            click(qtbot, workflow.buttons["pcr"])
    finally:
        panel.session.prediction_changed.disconnect(open_b_midway)
    assert seen, "the maps did not go in over turns"
    assert finished.args[0] == "pcr"
    qtbot.wait(300)  # any turn still queued would have run by now
    assert panel.session.ref == ahead.opened.ref
    assert not workflow.overlays.going_in() and not workflow.overlays.all()
    assert_nothing_of(ref_a, viewer, panel, workflow, tmp_path / "B.pdf")


def test_a_style_change_goes_into_the_overlays_one_per_turn_and_the_latest_wins(make_workflow, qtbot,
                                                                                  small_cohort):
    """Issue 15: a threshold change restyles the overlays one layer per event-loop turn (a timer
    ticks between any two), and a change made while that goes round is what every overlay
    ends with — including those already restyled by the first."""
    from qtpy.QtCore import QTimer

    from napari_harm3._layers import overlay_colormap

    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, small_cohort / "SYN-0003" / "case.yaml")
    press(qtbot, workflow, "pcr")
    layers = workflow.overlays.all()
    assert len(layers) >= 3  # Grad-CAM per MRI panel and the pooling map
    ticks, restyled = [], []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(1))
    for layer in layers:
        layer.events.colormap.connect(lambda event, layer=layer: restyled.append((layer.name, len(ticks))))
    controls = workflow.overlay_controls
    name = controls.colormap.currentText()
    timer.start()
    try:
        controls.threshold.setValue(30)
        assert workflow.overlays.restyling() and not restyled  # nothing in this turn
        qtbot.waitUntil(lambda: len(restyled) >= 2, timeout=10_000)
        controls.threshold.setValue(60)  # mid-way: the latest value wins everywhere
        qtbot.waitUntil(lambda: not workflow.overlays.restyling(), timeout=20_000)
    finally:
        timer.stop()
    wanted = overlay_colormap(name, 0.60).name
    assert all(layer.colormap.name == wanted for layer in layers), [l.colormap.name for l in layers]
    # one colormap set may emit twice (napari): those are one restyle
    restyled = [event for n, event in enumerate(restyled) if n == 0 or event != restyled[n - 1]]
    gaps = [b[1] - a[1] for a, b in zip(restyled, restyled[1:])]
    assert min(gaps) >= 1, restyled  # the event loop ran between any two restyled layers
    assert len(restyled) > len(layers)  # the first restyled ones got the second value too
