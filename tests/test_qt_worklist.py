"""The Worklist tab in a real viewer: a cohort's table, Enter / Next / Previous with the next case
prefetched, a case that cannot be read shown as such, and the safety of moving while a batch
runs (every number lands on its own case; a run of the case left behind is not shown). The
Next / Previous shortcuts typed into the active window follow the table's sort order; *Export
reports* with the Models tab's real models writes a whole report for each selected case only,
and *Cancel* midway leaves no half-written one."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pypdfium2
import pytest
from qtpy.QtCore import QPoint, Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QApplication

from napari_harm3._qt.worklist_batches import REPORTS
from napari_harm3._qt.worklist_panel import NEXT_KEYS, PREVIOUS_KEYS
from napari_harm3.core.cohort.rows import CaseRow, read_predictions
from napari_harm3.core.cohort.runner import run_case_task
from napari_harm3.core.cohort.worklist_filters import COLUMN_KEYS, column

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def cohort_template(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_cohort

    folder = tmp_path_factory.mktemp("qt_worklist") / "cohort"
    make_cohort(folder, 4, seed=33, slide_size=(1024, 1024))
    return folder


@pytest.fixture
def cohort(cohort_template, tmp_path):
    return shutil.copytree(cohort_template, tmp_path / "cohort")


@pytest.fixture
def make_worklist(make_napari_viewer):
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.workflow_panel import install_workflow

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        panel = CasePanel(viewer)
        install_workflow(panel)
        viewer.window.add_dock_widget(panel, name="Case panel", area="right")
        made.append(panel)
        return panel, panel.worklist

    yield factory
    for panel in made:
        panel.worklist.close()
        panel.workflow.close()
        panel.close_viewers()
    made.clear()


def latent_row(case, models=None, device="cpu") -> CaseRow:
    """A per-case function computed from the phantom's own latents (each case its own numbers)."""
    latent = case.synthetic
    return CaseRow(str(case.case_id), "ok", pcr_probability=1 / (1 + math.exp(-(latent["m"] + latent["s"]))),
                   pcr_spread=0.01, risk=float(latent["c"] + latent["f"]), risk_spread=0.02,
                   risk_group="high" if latent["c"] > 0 else "low")


def test_enter_next_previous_prefetch_and_an_unreadable_case(make_worklist, qtbot, cohort):
    (cohort / "SYN-0003" / "mri" / "t1_pre.nii.gz").write_bytes(b"not a volume")
    (cohort / "SYN-0004" / "slide" / "biopsy.tiff").unlink()
    panel, worklist = make_worklist()
    assert worklist.open_cohort(cohort / "cohort.csv")
    assert worklist.proxy.case_ids() == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    worklist.set_query("missing slide")
    assert worklist.proxy.case_ids() == ["SYN-0004"]
    worklist.set_query("")
    worklist.table.selectRow(0)
    worklist.table.setFocus()
    with qtbot.waitSignal(worklist.case_shown, timeout=60_000) as shown:
        qtbot.keyClick(worklist.table, Qt.Key.Key_Return)
    assert shown.args == ["SYN-0001"] and panel.session.case.case_id == "SYN-0001"
    qtbot.waitUntil(lambda: worklist.prefetcher.ready("SYN-0002"), timeout=60_000)
    with qtbot.waitSignal(worklist.case_shown, timeout=60_000) as shown:
        worklist.next_case()
    assert shown.args == ["SYN-0002"] and "(prefetched)" in worklist.status.text()
    assert panel.session.case.case_id == "SYN-0002" and panel.case_id_label.text() == "SYN-0002"
    # the next one cannot be read: one notification, its row says so, the viewer keeps SYN-0002
    with qtbot.waitSignal(worklist.case_failed, timeout=60_000) as failed:
        worklist.next_case()
    assert failed.args[0] == "SYN-0003" and panel.session.case.case_id == "SYN-0002"
    row = worklist.worklist.row("SYN-0003")
    assert row.status == "unreadable" and "cannot be opened" in row.problems[-1]
    assert column("status").text(row).startswith("unreadable")
    with qtbot.waitSignal(worklist.case_shown, timeout=60_000) as shown:  # its slide is missing: the MRI opens
        worklist.next_case()
    assert shown.args == ["SYN-0004"] and panel.slide_view.layer is None and "lacks slide" in worklist.status.text()
    assert worklist.next_case() is None  # the end of the order
    # the order is the table's: sorted by case id descending, Next goes down the table from
    # SYN-0004 and skips the case that could not be read
    worklist.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert worklist.proxy.case_ids() == ["SYN-0004", "SYN-0003", "SYN-0002", "SYN-0001"]
    assert worklist.previous_case() is None
    with qtbot.waitSignal(worklist.case_shown, timeout=60_000) as shown:
        worklist.next_case()
    assert shown.args == ["SYN-0002"] and panel.session.case.case_id == "SYN-0002"


def test_bad_cohort_tables_are_one_notification(make_worklist, cohort, tmp_path):
    _panel, worklist = make_worklist()
    table = tmp_path / "dup.csv"
    table.write_text(f"case_id,manifest\nA,{cohort}/SYN-0001\nA,{cohort}/SYN-0002\n")
    assert not worklist.open_cohort(table)
    assert "case_id 'A' repeats row 2" in worklist.status.text() and worklist.worklist is None


def test_moving_while_a_batch_runs_never_shows_one_case_on_another(make_worklist, qtbot, cohort):
    panel, worklist = make_worklist()
    worklist.open_cohort(cohort)
    with qtbot.waitSignal(worklist.case_shown, timeout=60_000):
        worklist.open_case_id("SYN-0001")
    # a model run of the open case, then Next before it ends: the session drops it
    run = panel.workflow.run("pcr")
    assert run is not None
    ended = []
    panel.session.run_ended.connect(lambda r, outcome: ended.append((str(r.case_ref), outcome)))
    with qtbot.waitSignal(worklist.batch_finished, timeout=120_000) as finished:
        # the batch's per-case task: the runner's real one around a function that needs no model
        assert worklist.predict(worklist.proxy.case_ids(), task=_latent_task) is not None
        for step in (worklist.next_case, worklist.next_case, worklist.previous_case):
            with qtbot.waitSignal(worklist.case_shown, timeout=60_000):
                step()
    qtbot.waitUntil(lambda: panel.workflow.worker is None and bool(ended), timeout=120_000)
    assert ended[0][0] == "SYN-0001" and ended[0][1] in ("discarded", "cancelled")
    assert panel.session.case.case_id == "SYN-0002" and panel.session.prediction("pcr") is None
    rows = {r.case_id: r for r in finished.args[0]}
    saved = {r.case_id: r for r in read_predictions(worklist.worklist.predictions_path)}
    assert sorted(rows) == sorted(saved) == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    for case_id in rows:
        own = latent_row(worklist.worklist.row(case_id).case)
        shown = worklist.worklist.row(case_id)
        assert shown.pcr_probability == own.pcr_probability == saved[case_id].pcr_probability
        assert column("pcr_probability").text(shown) == f"{own.pcr_probability:.2f} ± 0.01"
    assert len({rows[i].pcr_probability for i in rows}) == 4  # four different numbers, each on its case


def _latent_task(case):
    return run_case_task(case, None, "cpu", predict=latent_row)


def key_of(keys: str) -> tuple:
    """(key, modifiers) of a one-chord shortcut text such as ``"Ctrl+Right"``."""
    combo = QKeySequence(keys)[0]
    return combo.key(), combo.keyboardModifiers()


def active_window(qtbot, widget):
    """``widget``'s window shown and active: a WindowShortcut fires only in the active window (no
    window manager under Xvfb activates a shown window by itself)."""
    window = widget.window()
    qtbot.waitExposed(window)
    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10_000)
    return window


def press(qtbot, window, keys: str) -> None:
    """Type the shortcut into the widget that has the keyboard focus, as a user's keyboard does."""
    focus = QApplication.focusWidget()
    assert focus is not None and window.isAncestorOf(focus), f"keyboard focus is outside the window: {focus}"
    assert QApplication.activeWindow() is window
    qtbot.keyClick(focus, *key_of(keys))


def step_with_keys(qtbot, worklist, window, keys: str) -> str:
    """Press ``keys``; the case id the case panel then shows (waits for it)."""
    shown = []
    worklist.case_shown.connect(shown.append)
    try:
        press(qtbot, window, keys)
        assert worklist.worker is not None, f"{keys} opened no case (status: {worklist.status.text()!r})"
        qtbot.waitUntil(lambda: bool(shown), timeout=60_000)
    finally:
        worklist.case_shown.disconnect(shown.append)
    case_id = shown[0]
    assert worklist.case_panel.session.case.case_id == case_id == worklist.current
    assert worklist.case_panel.case_id_label.text() == case_id
    return case_id


def walk_with_keys(qtbot, worklist, window, keys: str) -> list:
    """Press ``keys`` until the end of the table's order; the case ids shown on the way."""
    shown = []
    worklist.case_shown.connect(shown.append)
    try:
        for step in range(1, len(worklist.worklist) + 2):
            before = worklist.current
            worklist.status.setText("")
            press(qtbot, window, keys)
            if worklist.status.text() == "No further case in this order.":  # the shortcut ran; none is left
                assert worklist.current == before and worklist.worker is None and len(shown) == step - 1
                return shown
            qtbot.waitUntil(lambda n=step: len(shown) == n, timeout=60_000)
            assert worklist.case_panel.session.case.case_id == shown[-1] == worklist.current
    finally:
        worklist.case_shown.disconnect(shown.append)
    raise AssertionError(f"{keys} never reached the end of the order: {shown}")


def click_header(qtbot, table, key: str) -> None:
    """Click the column header ``key`` (scrolled into view first), as a user sorts the table."""
    section = COLUMN_KEYS.index(key)
    table.scrollTo(table.model().index(0, section))
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(section) + header.sectionSize(section) // 2
    assert 0 <= x < header.viewport().width(), "the header section is not on screen"
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def test_next_previous_shortcuts_follow_the_tables_sort_order(make_worklist, qtbot, cohort):
    """Ctrl+Right / Ctrl+Left typed into the viewer window (not the slots called): the case panel
    opens the next / previous case of the table's current order; a header click re-sorts the
    order the keys follow."""
    assert (NEXT_KEYS, PREVIOUS_KEYS) == ("Ctrl+Right", "Ctrl+Left")
    assert key_of(NEXT_KEYS) == (Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    panel, worklist = make_worklist()
    assert worklist.open_cohort(cohort / "cohort.csv")
    window = active_window(qtbot, worklist)
    worklist.table.setFocus()
    qtbot.waitUntil(worklist.table.hasFocus, timeout=10_000)
    ids = ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    assert worklist.proxy.case_ids() == ids and worklist.current is None
    # nothing open yet: Next opens the first case of the order, then moves down it; Previous back up
    assert step_with_keys(qtbot, worklist, window, NEXT_KEYS) == "SYN-0001"
    assert step_with_keys(qtbot, worklist, window, NEXT_KEYS) == "SYN-0002"
    assert step_with_keys(qtbot, worklist, window, PREVIOUS_KEYS) == "SYN-0001"
    # the keys work wherever the focus is in the window: here in the T1-pre canvas of the MRI grid
    canvas = panel.grid.qt_viewer("t1_pre").canvas.native
    canvas.setFocus()
    qtbot.waitUntil(canvas.hasFocus, timeout=10_000)
    assert step_with_keys(qtbot, worklist, window, NEXT_KEYS) == "SYN-0002"

    # sorted by follow-up (a click on its header): the keys follow that order, not the case ids
    click_header(qtbot, worklist.table, "survival")
    descending = worklist.table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    months = {i: worklist.worklist.row(i).labels.survival_months for i in ids}
    order = sorted(ids, key=months.get, reverse=descending)
    assert worklist.proxy.case_ids() == order and order not in (ids, ids[::-1])
    at = order.index(worklist.current)
    assert walk_with_keys(qtbot, worklist, window, PREVIOUS_KEYS) == order[:at][::-1]
    assert walk_with_keys(qtbot, worklist, window, NEXT_KEYS) == order[1:]
    assert worklist.current == order[-1]
    # and clicking the header again turns the order round: Next goes the other way now
    click_header(qtbot, worklist.table, "survival")
    assert worklist.proxy.case_ids() == order[::-1]
    assert step_with_keys(qtbot, worklist, window, NEXT_KEYS) == order[-2]


@pytest.fixture
def full_cohort(small_cohort, tmp_path):
    """conftest's six phantom patients at full slide size (tissue at 5x, 10x and 20x: both real
    models run), copied: the worklist writes its reports and predictions into the cohort."""
    return shutil.copytree(small_cohort, tmp_path / "full_cohort")


def click_row(qtbot, table, case_id: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Click the row of ``case_id`` (with ``modifier``: Ctrl adds it to the selection)."""
    r = table.model().proxy_row_of(case_id)
    table.scrollTo(table.model().index(r, 0))
    rect = table.visualRect(table.model().index(r, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def shown_cell(worklist, case_id: str, key: str) -> str:
    """The text the table shows for ``case_id`` in column ``key``."""
    return worklist.proxy.index(worklist.proxy.proxy_row_of(case_id), COLUMN_KEYS.index(key)).data()


def report_pages(pdf: Path) -> tuple:
    """(page count, text) of a PDF, read by pdfium (fails on a truncated or half-written file)."""
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        return len(document), "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()


def assert_complete_reports(worklist, case_ids, models) -> None:
    """The reports folder holds a whole PDF and JSON for each of ``case_ids`` and nothing else (no
    other case's, no temporary file); each names its own case; the table says "written" for
    exactly those rows."""
    reports = worklist.worklist.reports_dir
    assert sorted(p.name for p in reports.iterdir()) == sorted(f"{i}.{ext}" for i in case_ids for ext in ("json", "pdf"))
    assert not list(worklist.worklist.source.parent.rglob("*.partial"))
    for case_id in case_ids:
        data = json.loads((reports / f"{case_id}.json").read_text(encoding="utf-8"))
        assert data["case"]["case_id"] == case_id
        assert [m["path"] for m in data["models"]] == models
        row = worklist.worklist.row(case_id)
        assert row.prediction.status == "ok" and data["pcr"]["probability"] == pytest.approx(row.pcr_probability)
        assert data["survival"]["risk"] == pytest.approx(row.risk)
        assert shown_cell(worklist, case_id, "pcr_probability") == f"{row.pcr_probability:.2f} ± {row.pcr_spread:.2f}"
        pdf = reports / f"{case_id}.pdf"
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().rstrip().endswith(b"%%EOF")
        pages, text = report_pages(pdf)
        assert pages >= 1 and case_id in text
        others = set(worklist.worklist.case_ids) - {case_id}
        assert not any(other in text for other in others)
    for case_id in worklist.worklist.case_ids:
        assert shown_cell(worklist, case_id, "report") == ("written" if case_id in case_ids else "")
    saved = sorted(r.case_id for r in read_predictions(worklist.worklist.predictions_path))
    assert saved == sorted(case_ids)


def chosen_models(panel) -> list:
    """The model folders of the Models tab (the zoo's demo models unless the user picked others)."""
    folders = [panel.workflow.pickers[a].folder() for a in ("pcr", "survival")]
    assert all(folders), "no pCR or survival model in the zoo"
    return folders


@pytest.mark.slow  # both real models on each case (~15 s a case on a busy 2-core machine)
def test_export_reports_of_the_selected_cases(make_worklist, qtbot, full_cohort):
    """Two rows selected with the mouse, *Export reports (selected)* clicked: both real models of
    the Models tab run and a report is written for each selected case, and for no other."""
    panel, worklist = make_worklist()
    assert worklist.open_cohort(full_cohort / "cohort.csv")
    ids = worklist.proxy.case_ids()
    assert len(ids) == 6 and not (full_cohort / "reports").exists()
    assert all(shown_cell(worklist, i, "report") == "" for i in ids)
    models = chosen_models(panel)
    active_window(qtbot, worklist)
    click_row(qtbot, worklist.table, ids[1])
    click_row(qtbot, worklist.table, ids[4], Qt.KeyboardModifier.ControlModifier)
    selected = [ids[1], ids[4]]
    assert worklist.selected_ids() == selected
    button = worklist.batches.buttons[REPORTS]
    assert button.isEnabled()
    with qtbot.waitSignal(worklist.batch_finished, timeout=240_000) as finished:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert worklist.batches.busy and not button.isEnabled()
    rows = finished.args[0]
    assert [r.case_id for r in rows] == selected and all(r.status == "ok" for r in rows), rows
    assert not worklist.batches.busy and button.isEnabled()
    assert_complete_reports(worklist, selected, models)
    # rendered by the Models tab's report process, not in the window's (its GIL)
    writer = panel.workflow.report_writer
    assert writer.written == 2 and writer.child_pid() != os.getpid()


@pytest.mark.slow  # both real models on each case (~15 s a case on a busy 2-core machine)
def test_cancelling_an_export_leaves_only_whole_reports(make_worklist, qtbot, full_cohort):
    """All rows selected (Ctrl+A), *Export reports* clicked, *Cancel* clicked after the first
    report: the case in flight finishes, no later one starts, and every report on disk is whole."""
    panel, worklist = make_worklist()
    assert worklist.open_cohort(full_cohort / "cohort.csv")
    ids = worklist.proxy.case_ids()
    models = chosen_models(panel)
    active_window(qtbot, worklist)
    worklist.table.setFocus()
    qtbot.waitUntil(worklist.table.hasFocus, timeout=10_000)
    qtbot.keyClick(worklist.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert worklist.selected_ids() == ids
    updated = []
    worklist.row_updated.connect(updated.append)
    with qtbot.waitSignal(worklist.batch_finished, timeout=240_000) as finished:
        qtbot.mouseClick(worklist.batches.buttons[REPORTS], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(updated), timeout=120_000)
        assert worklist.batches.cancel_button.isEnabled()
        qtbot.mouseClick(worklist.batches.cancel_button, Qt.MouseButton.LeftButton)
    done = [r.case_id for r in finished.args[0]]
    assert 1 <= len(done) < len(ids) and done == ids[: len(done)] == updated, (done, updated)
    assert "(cancelled)" in worklist.batches.status.text()
    assert_complete_reports(worklist, done, models)
