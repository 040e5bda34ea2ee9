"""``harm3 predict`` on a 3-case synthetic cohort with the zoo's demo models: rows, resume,
--force, a changed input, a broken row, the Dask path on 2 local workers, the summary, bad input."""

from __future__ import annotations

import csv
import shutil

import pytest

from napari_harm3.core.cohort.rows import COLUMNS, read_predictions
from napari_harm3.core.cli.main import main
from napari_harm3.core.resources import models_dir

pytest.importorskip("distributed")


@pytest.fixture(autouse=True)
def only_the_commands_used(monkeypatch):
    from napari_harm3.core.cli import main as cli_main

    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("synth", "predict"))


@pytest.fixture(scope="module")
def cohort_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "cohort"
    from napari_harm3.core.cli import main as cli_main

    old = cli_main.COMMAND_MODULES
    cli_main.COMMAND_MODULES = ("synth",)
    try:
        assert main(["synth", "--n", "3", "--seed", "11", "--out", str(folder)]) == 0
    finally:
        cli_main.COMMAND_MODULES = old
    return folder


@pytest.fixture
def cohort(cohort_template, tmp_path):
    """A fresh copy per test (tests delete and change its files)."""
    return shutil.copytree(cohort_template, tmp_path / "cohort")


def _rows(path) -> dict:
    return {row.case_id: row for row in read_predictions(path)}


def test_predict_resume_force_and_changed_input(cohort, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu"]) == 0
    assert "3 cases: 3 ok" in capsys.readouterr().out
    with open(out, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    first = _rows(out)
    assert list(first) == ["SYN-0001", "SYN-0002", "SYN-0003"]
    zoo = models_dir()
    for row in first.values():
        assert row.status == "ok" and row.reason == ""
        assert 0.0 <= row.pcr_probability <= 1.0 and row.pcr_spread > 0 and row.pcr_folds == 5
        assert row.risk < 0 and row.risk_spread > 0 and row.survival_folds == 5
        assert row.risk_group == ("high" if row.risk >= row.risk_threshold else "low")
        assert (row.pcr_model, row.survival_model) == ("harm3-demo", "crossfusion-demo")
        assert row.missing_inputs == ()
        assert len(row.inputs_sha256) == 64 and row.finished
    # the model digest is `sha256sum SHA256SUMS` of the folder
    from napari_harm3.core.hashing import sha256_file

    assert first["SYN-0001"].pcr_model_sha256 == sha256_file(zoo / "harm3-demo" / "SHA256SUMS")
    assert first["SYN-0001"].survival_model_sha256 == sha256_file(zoo / "crossfusion-demo" / "SHA256SUMS")

    # resume: nothing to do, rows untouched
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu"]) == 0
    assert "(0 predicted, 3 reused)" in capsys.readouterr().out
    assert _rows(out) == first

    # a file touched but unchanged is reused; a changed manifest reruns its case only
    manifest = cohort / "SYN-0002" / "case.yaml"
    manifest.write_text(manifest.read_text())
    (cohort / "SYN-0003" / "case.yaml").write_text((cohort / "SYN-0003" / "case.yaml").read_text() + "# edited\n")
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu"]) == 0
    assert "(1 predicted, 2 reused)" in capsys.readouterr().out
    again = _rows(out)
    assert again["SYN-0001"] == first["SYN-0001"]
    assert again["SYN-0002"].finished == first["SYN-0002"].finished
    assert again["SYN-0003"].inputs_sha256 != first["SYN-0003"].inputs_sha256
    assert again["SYN-0003"].pcr_probability == pytest.approx(first["SYN-0003"].pcr_probability, abs=1e-6)

    # --force reruns every case
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu", "--force"]) == 0
    assert "(3 predicted, 0 reused)" in capsys.readouterr().out

    # another model set reruns: only the pCR model now
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu",
                 "--models", str(zoo / "harm3-demo")]) == 0
    assert "(3 predicted, 0 reused)" in capsys.readouterr().out
    assert all(r.risk is None and r.survival_model == "" and r.status == "ok" for r in _rows(out).values())


def test_broken_row_skipped_with_reason_dask_two_workers_and_summary(cohort, tmp_path, capsys):
    out, summary = tmp_path / "predictions.csv", tmp_path / "summary"
    (cohort / "SYN-0002" / "slide" / "biopsy.tiff").unlink()
    (cohort / "SYN-0003" / "mri" / "t2_post.nii.gz").write_bytes(b"not a NIfTI file")
    code = main(["predict", str(cohort), "--out", str(out), "--device", "cpu", "--workers", "2",
                 "--summary", str(summary)])
    captured = capsys.readouterr()
    assert code == 2
    assert "3 cases: 1 ok, 0 partial, 0 failed, 2 skipped" in captured.out
    lines = [line for line in captured.err.splitlines() if line.startswith("harm3: ")]
    assert len(lines) == 2
    assert "SYN-0002: skipped: slide: not found:" in lines[0] + lines[1]
    assert "SYN-0003: skipped: mri.t2_post: cannot be read:" in lines[0] + lines[1]
    rows = _rows(out)
    assert rows["SYN-0001"].status == "ok" and rows["SYN-0001"].pcr_probability is not None
    assert rows["SYN-0002"].status == "skipped" and rows["SYN-0002"].pcr_probability is None
    assert "biopsy.tiff" in rows["SYN-0002"].reason

    # the same case through the Dask workers and in this process: the same numbers
    assert main(["predict", str(cohort), "--out", str(tmp_path / "serial.csv"), "--device", "cpu"]) == 2
    serial = _rows(tmp_path / "serial.csv")["SYN-0001"]
    assert serial.pcr_probability == pytest.approx(rows["SYN-0001"].pcr_probability, abs=1e-6)
    assert serial.risk == pytest.approx(rows["SYN-0001"].risk, abs=1e-5)

    # the summary lists the skipped cases with their reasons
    with open(summary / "summary.csv", newline="") as handle:
        records = {r["case_id"]: r for r in csv.DictReader(handle)}
    assert records["SYN-0002"]["status"] == "skipped" and "slide: not found" in records["SYN-0002"]["reason"]
    assert records["SYN-0001"]["pcr"] in ("0", "1") and records["SYN-0001"]["survival_months"]
    assert (summary / "summary.pdf").read_bytes().startswith(b"%PDF")
    pdfium = pytest.importorskip("pypdfium2")
    document = pdfium.PdfDocument(str(summary / "summary.pdf"))
    text = "".join(document[k].get_textpage().get_text_range() for k in range(len(document)))
    assert "SYN-0002 [skipped]: slide: not found" in text.replace("\r", "").replace("\n", " ")
    assert "pCR not validated" in text  # one labelled case cannot give an AUC

    # fixed: the broken cases rerun, the finished one is reused
    shutil.copy(cohort / "SYN-0001" / "slide" / "biopsy.tiff", cohort / "SYN-0002" / "slide" / "biopsy.tiff")
    assert main(["predict", str(cohort), "--out", str(out), "--device", "cpu", "--models",
                 str(models_dir() / "harm3-demo"), str(models_dir() / "crossfusion-demo")]) == 2
    assert "(2 predicted, 1 reused)" in capsys.readouterr().out


@pytest.mark.parametrize("lines, message", [
    (["case_id,manifest,pcr", "SYN-0001,SYN-0001/case.yaml,1", "SYN-0001,SYN-0002/case.yaml,0"],
     "row 3: case_id 'SYN-0001' repeats row 2"),
    (["case_id,pcr", "SYN-0001,1"], "missing column(s) manifest"),
    (["case_id,manifest,pcr", "SYN-0001,SYN-0001/case.yaml,yes"], "row 2, column 'pcr': expected a number, got 'yes'"),
    (["case_id,manifest,survival_month", "SYN-0001,SYN-0001/case.yaml,3"],
     "unknown column 'survival_month'; did you mean 'survival_months'?"),
])
def test_bad_cohort_table_is_one_line(cohort, tmp_path, capsys, lines, message):
    table = cohort / "bad.csv"
    table.write_text("\n".join(lines) + "\n")
    assert main(["predict", str(table), "--out", str(tmp_path / "p.csv"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harm3: error: ") and message in err[0]
    assert not (tmp_path / "p.csv").exists()


def test_out_that_is_not_a_predictions_table_is_refused(cohort, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main(["predict", str(cohort), "--out", str(other), "--device", "cpu"]) == 2
    assert "not a harm3 predictions table" in capsys.readouterr().err and other.read_text() == "a,b\n1,2\n"
    assert main(["predict", str(cohort), "--out", str(cohort / "cohort.csv"), "--device", "cpu"]) == 2
    assert "is the cohort table" in capsys.readouterr().err


def test_an_existing_scheduler_runs_the_cases(cohort, tmp_path, capsys):
    from distributed import LocalCluster

    (cohort / "one.csv").write_text("case_id,manifest\nSYN-0001,SYN-0001/case.yaml\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert main(["predict", str(cohort / "one.csv"), "--out", str(tmp_path / "p.csv"), "--device", "cpu",
                     "--models", str(models_dir() / "harm3-demo"), "--scheduler", cluster.scheduler_address]) == 0
        assert cluster.scheduler.task_prefixes["harm3-predict"].state_counts["forgotten"] == 1  # ran there
    assert "1 cases: 1 ok" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", str(cohort), "--out", str(tmp_path / "q.csv"), "--workers", "two"])
    assert main(["predict", str(cohort), "--out", str(tmp_path / "q.csv"), "--workers", "-1"]) == 2
    assert "--workers must be 0" in capsys.readouterr().err
