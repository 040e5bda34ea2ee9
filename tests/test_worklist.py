"""The worklist's table model without Qt: rows of a cohort (CSV or folder of cases), missing and
unreadable inputs, predictions and reports found on disk, filters, sort, Next/Previous, the
one-case prefetcher, and a batch whose rows land on their own case."""

from __future__ import annotations

import shutil
import threading

import pytest

from napari_harm3.core.cohort.model_refs import choose_models
from napari_harm3.core.cohort.rows import CaseRow, read_predictions, write_predictions
from napari_harm3.core.cohort.worklist import (
    ABSENT,
    INPUTS,
    MISSING,
    PRESENT,
    UNREADABLE,
    open_worklist,
)
from napari_harm3.core.cohort.worklist_batch import predict_task, run_worklist_batch
from napari_harm3.core.cohort.worklist_filters import COLUMNS, neighbour, ordered
from napari_harm3.core.errors import Harm3Error, user_message
from napari_harm3.core.progress import CancelToken
from napari_harm3.core.resources import models_dir
from napari_harm3.core.session.case_data import OpenedCase
from napari_harm3.core.session.prefetch import Prefetcher


@pytest.fixture(scope="module")
def cohort_template(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_cohort

    folder = tmp_path_factory.mktemp("worklist") / "cohort"
    make_cohort(folder, 4, seed=21)
    return folder


@pytest.fixture
def cohort(cohort_template, tmp_path):
    return shutil.copytree(cohort_template, tmp_path / "cohort")


def test_rows_show_inputs_labels_predictions_and_reports(cohort):
    (cohort / "SYN-0002" / "mri" / "t2_post.nii.gz").unlink()
    (cohort / "SYN-0003" / "case.yaml").write_text("case_id: [not, a, string\n")
    write_predictions([CaseRow("SYN-0004", "ok", pcr_probability=0.8, pcr_spread=0.05, risk=-3.0, risk_spread=0.1,
                               risk_group="high", finished="2026-01-01T00:00:00+00:00"),
                       CaseRow("SYN-0001", "ok", pcr_probability=0.2, pcr_spread=0.01, risk=-9.0, risk_spread=0.2,
                               risk_group="low", finished="2026-01-01T00:00:00+00:00")], cohort / "predictions.csv")
    (cohort / "reports").mkdir()
    for ext in ("pdf", "json"):
        (cohort / "reports" / f"SYN-0001.{ext}").write_text("x")
    worklist = open_worklist(cohort / "cohort.csv")
    assert worklist.case_ids == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    one, two, three, four = worklist.rows
    assert one.inputs == {**{k: PRESENT for k in INPUTS}, "transforms": ABSENT} and one.status == "ok" and one.labels == one.case.labels
    assert two.inputs["t2_post"] == MISSING and two.status == "missing files" and two.missing() == ("t2_post",)
    assert any("t2_post" in p for p in two.problems)
    assert three.case is None and three.status == "manifest error" and "manifest" in three.problems[0]
    assert not three.openable and one.openable
    assert (four.pcr_probability, four.risk_group) == (0.8, "high") and one.report is not None
    texts = {c.key: c.text(four) for c in COLUMNS}
    assert texts["pcr_probability"] == "0.80 ± 0.05" and texts["risk"] == "-3.00 ± 0.10" and texts["report"] == ""
    assert {c.key: c.text(two) for c in COLUMNS}["t2_post"] == "missing"
    # filters and sort
    ids = lambda rows: [r.case_id for r in rows]
    assert ids(ordered(worklist.rows, "missing T2-post")) == ["SYN-0002"]
    assert ids(ordered(worklist.rows, "missing t2_post")) == ["SYN-0002"]
    assert ids(ordered(worklist.rows, "high risk")) == ["SYN-0004"]
    assert ids(ordered(worklist.rows, "no report, not problems")) == ["SYN-0004"]
    assert ids(ordered(worklist.rows, "0003")) == ["SYN-0003"]
    assert ids(ordered(worklist.rows, sort="pcr_probability", descending=True)) == ["SYN-0004", "SYN-0001", "SYN-0002", "SYN-0003"]
    assert ids(ordered(worklist.rows, sort="pcr_probability")) == ["SYN-0001", "SYN-0004", "SYN-0002", "SYN-0003"]
    # a case that fails to open is shown as unreadable
    row = worklist.mark_unreadable("SYN-0001", "t1_pre: not a NIfTI file")
    assert row.inputs["t1_pre"] == UNREADABLE and row.status == "unreadable" and ordered(worklist.rows, "problems")


def test_next_previous_follow_the_order_and_stop_at_the_ends():
    order = ["C", "A", "B"]
    assert [neighbour(order, "C", 1), neighbour(order, "A", 1), neighbour(order, "B", 1)] == ["A", "B", None]
    assert [neighbour(order, "B", -1), neighbour(order, "C", -1)] == ["A", None]
    assert neighbour(order, "Z", 1) == "C" and neighbour(order, "Z", -1) == "B" and neighbour([], "A", 1) is None


def test_folder_of_cases_duplicates_and_bad_tables_are_one_message(cohort, tmp_path):
    (cohort / "cohort.csv").unlink()
    assert open_worklist(cohort).case_ids == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    shutil.copytree(cohort / "SYN-0002", cohort / "SYN-0002-copy")
    with pytest.raises(Harm3Error) as caught:
        open_worklist(cohort)
    message = user_message(caught.value, "viewer")
    assert "'SYN-0002' is given twice" in message and "\n" not in message
    table = tmp_path / "dup.csv"
    table.write_text(f"case_id,manifest\nA,{cohort}/SYN-0001\nA,{cohort}/SYN-0002\n")
    with pytest.raises(Harm3Error, match="row 3: case_id 'A' repeats row 2"):
        open_worklist(table)
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(Harm3Error):
        open_worklist(tmp_path / "bad.csv")
    with pytest.raises(Harm3Error, match="no such cohort"):
        open_worklist(tmp_path / "nowhere")


def test_prefetcher_holds_one_case_and_releases_the_dropped_one(cohort):
    released, lock = [], threading.Lock()

    def release(opened: OpenedCase):
        with lock:
            released.append(opened.case_id)
        opened.close()

    (cohort / "SYN-0003" / "mri" / "t1_pre.nii.gz").write_bytes(b"not a volume")
    prefetcher = Prefetcher(release=release)
    try:
        first = prefetcher.prefetch("SYN-0001", cohort / "SYN-0001")
        assert prefetcher.prefetch("SYN-0001", cohort / "SYN-0001") is first and prefetcher.started == 1
        first.result(timeout=60)
        prefetcher.prefetch("SYN-0002", cohort / "SYN-0002")
        assert prefetcher.held == "SYN-0002" and released == ["SYN-0001"]
        assert prefetcher.take("SYN-0001") is None
        opened = prefetcher.take("SYN-0002", timeout=60)
        assert opened.case_id == "SYN-0002" and set(opened.volumes.volumes) and prefetcher.held is None
        opened.close()
        prefetcher.prefetch("SYN-0003", cohort / "SYN-0003")  # an unreadable volume: take gives None
        assert prefetcher.take("SYN-0003", timeout=60) is None
    finally:
        prefetcher.close()


def test_a_batch_puts_each_row_on_its_own_case_and_stops_when_cancelled(cohort):
    models, _notes = choose_models(zoo=models_dir())
    worklist = open_worklist(cohort)
    cases = [worklist.row(i).case for i in ("SYN-0004", "SYN-0001")]
    token, seen = CancelToken(), []

    def on_row(row):
        seen.append(worklist.set_prediction(row))
        token.cancel()  # after the first case: the second is not run

    rows = run_worklist_batch(cases, predict_task(models, device="cpu"), on_row=on_row, token=token)
    assert [r.case_id for r in rows] == ["SYN-0004"] and rows[0].status == "ok"
    shown = worklist.row("SYN-0004")
    assert shown.pcr_probability == rows[0].pcr_probability and 0 <= shown.pcr_probability <= 1
    assert shown.risk_group in ("high", "low") and worklist.row("SYN-0001").prediction is None
    worklist.save_predictions()
    assert read_predictions(worklist.predictions_path) == tuple(rows)
    assert open_worklist(cohort).row("SYN-0004").prediction == rows[0]
    with pytest.raises(Harm3Error, match="no case to run"):
        run_worklist_batch([], predict_task(models))
