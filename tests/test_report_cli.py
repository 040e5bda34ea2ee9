"""``harm3 report``: a real case manifest over real MRI/slide files, an empty model zoo, overwrite rules."""

from __future__ import annotations

import json

import pytest

from conftest import real_file

pytest.importorskip("yaml")


@pytest.fixture(autouse=True)
def only_the_report_command(monkeypatch):
    """The real ``harm3`` entry point with only this command registered (others are tested elsewhere)."""
    from napari_harm3.core.cli import main as cli_main

    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("report",))


@pytest.fixture
def real_case(shared_data, tmp_path):
    """A case manifest (io.case format) over the real STS_001 MRI and the TCGA slide."""
    import yaml

    folder = tmp_path / "STS_001"
    folder.mkdir()
    manifest = {
        "case_id": "STS_001",
        "mri": {"t1_pre": str(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz")),
                "t2_pre": str(real_file(shared_data, "mri/sts001_dicom/T2"))},
        "masks": {"t1_pre": str(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz"))},
        "slide": str(real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")),
    }
    (folder / "case.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_report_without_models_still_renders_and_says_why(real_case, tmp_path, monkeypatch):
    from napari_harm3.core.cli.main import main

    empty_zoo = tmp_path / "zoo"
    empty_zoo.mkdir()
    monkeypatch.setenv("HARM3_MODELS", str(empty_zoo))
    out, js = tmp_path / "out" / "report.pdf", tmp_path / "out" / "report.json"
    assert main(["report", str(real_case), "--out", str(out), "--json", str(js), "--deidentify",
                 "--device", "cpu"]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    data = json.loads(js.read_text())
    assert data["pcr"] is None and data["survival"] is None
    notes = " ".join(data["notes"])
    assert "pCR analysis not run" in notes and "Survival analysis not run" in notes and "zoo" in notes
    assert data["case"]["case_id"].startswith("case-") and "STS_001" not in js.read_text()
    assert [i["role"] for i in data["inputs"]] == ["t1_pre", "t2_pre", "slide", "manifest", "t1_pre_mask"]
    assert data["figures"]["mri"][0]["slice_reason"] == "largest tumour cross-section"
    # a second run refuses to replace the report, and leaves it as it was
    before = out.read_bytes()
    assert main(["report", str(real_case), "--out", str(out), "--json", str(js)]) == 2
    assert out.read_bytes() == before


def test_existing_output_refused_before_any_work(tmp_path, capsys):
    from napari_harm3.core.cli.main import main

    out = tmp_path / "report.pdf"
    out.write_bytes(b"old")
    assert main(["report", str(tmp_path / "no-such-case"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"old"


def test_several_cases_need_out_dir(tmp_path, capsys):
    from napari_harm3.core.cli.main import main

    assert main(["report", "a", "b", "--out", str(tmp_path / "r.pdf")]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_missing_explicit_model_folder_is_an_error(real_case, tmp_path, capsys):
    from napari_harm3.core.cli.main import main

    assert main(["report", str(real_case), "--out", str(tmp_path / "r.pdf"),
                 "--pcr-model", str(tmp_path / "nowhere")]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()
