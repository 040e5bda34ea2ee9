"""``harm3 report COHORT --out DIR``: a PDF + JSON per case from the case session, resumable, and the
cohort summary with external validation; a broken case is one line and the others go on."""

from __future__ import annotations

import csv
import json

from napari_harm3.core.cli.main import main
from napari_harm3.core.synth.cohort import make_cohort


def test_cohort_reports_resume_and_summary(tmp_path, capsys):
    table = make_cohort(tmp_path / "cohort", 3, seed=41)
    out = tmp_path / "reports"
    (tmp_path / "cohort" / "SYN-0003" / "mri" / "t2_post.nii.gz").write_bytes(b"not a NIfTI file")
    assert main(["report", str(table), "--out", str(out), "--device", "cpu"]) == 2  # one case cannot be read
    err = capsys.readouterr().err
    assert "SYN-0003" in err and "t2_post" in err and err.count("harm3: ") == 1
    for case_id in ("SYN-0001", "SYN-0002"):
        data = json.loads((out / f"{case_id}.json").read_text())
        assert data["case"]["case_id"] == case_id and 0 <= data["pcr"]["probability"] <= 1
        assert (out / f"{case_id}.pdf").stat().st_size > 10_000
    assert not (out / "SYN-0003.pdf").exists()
    rows = {r["case_id"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert set(rows) == {"SYN-0001", "SYN-0002", "SYN-0003"} and rows["SYN-0003"]["status"] == "skipped"
    assert (out / "summary.pdf").stat().st_size > 10_000 and (out / "summary_metrics.csv").is_file()
    # resumable: the finished cases are kept; a deleted report is written again
    stamp = (out / "SYN-0001.pdf").stat().st_mtime_ns
    (out / "SYN-0002.json").unlink()
    assert main(["report", str(table), "--out", str(out), "--device", "cpu"]) == 2
    assert (out / "SYN-0001.pdf").stat().st_mtime_ns == stamp and (out / "SYN-0002.json").is_file()
    assert "1 reused)" in capsys.readouterr().out
