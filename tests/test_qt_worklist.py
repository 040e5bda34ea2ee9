"""The Worklist tab in a real viewer: a cohort's table, Enter / Next / Previous with the next case
prefetched, a case that cannot be read shown as such, and the safety of moving while a batch
runs (every number lands on its own case; a run of the case left behind is not shown)."""

from __future__ import annotations

import math
import shutil

import pytest
from qtpy.QtCore import Qt

from napari_harm3.core.cohort.rows import CaseRow, read_predictions
from napari_harm3.core.cohort.runner import run_case_task
from napari_harm3.core.cohort.worklist_filters import column

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
