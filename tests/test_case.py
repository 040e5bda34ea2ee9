"""Case manifest and cohort table: round trip, every-problem validation, one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.io.case import Case, CaseLabels, load_case, save_case
from napari_harm3.core.io.case_checks import validate_case, validate_cohort
from napari_harm3.core.io.cohort import load_cohort, read_cohort_table, write_cohort_table
from napari_harm3.core.vocabulary import SEQUENCES


def _write_volume(path: Path, data: np.ndarray) -> Path:
    from napari_harm3.core.io.mri import Volume, write_nifti

    affine = np.diag([4.0, 2.0, 2.0, 1.0])
    return write_nifti(Volume(data, affine, path.name, str(path)), path)


def _write_slide(path: Path, mpp=0.5) -> Path:
    from napari_harm3.core.io.tiff_writer import write_pyramidal_tiff

    image = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    return write_pyramidal_tiff(path, image, mpp=mpp, objective_power=20 if mpp else None)


@pytest.fixture
def case_dir(tmp_path) -> Path:
    """A small real case on disk: 4 NIfTI volumes, 1 mask, a pyramidal TIFF, case.yaml."""
    folder = tmp_path / "P001"
    rng = np.random.default_rng(1)
    for key in SEQUENCES:
        _write_volume(folder / "mri" / f"{key}.nii.gz", rng.integers(0, 1000, (4, 8, 8)).astype(np.int16))
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1:3, 2:5, 2:5] = 1
    _write_volume(folder / "mri" / "tumour_t1_pre.nii.gz", mask)
    _write_slide(folder / "slide" / "biopsy.tiff")
    manifest = {
        "case_id": "P001",
        "mri": {key: f"mri/{key}.nii.gz" for key in SEQUENCES},
        "masks": {"t1_pre": "mri/tumour_t1_pre.nii.gz"},
        "slide": "slide/biopsy.tiff",
        "slide_mpp": None,
        "labels": {"pcr": 1, "survival_months": 23.4, "event": 1},
    }
    (folder / "case.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def test_load_case_resolves_paths_and_labels(case_dir):
    case = load_case(case_dir)  # a folder works as well as the file
    assert case == load_case(case_dir / "case.yaml")
    assert case.case_id == "P001"
    assert case.mri["t2_post"] == (case_dir / "mri" / "t2_post.nii.gz").resolve()
    assert set(case.masks) == {"t1_pre"}
    assert case.slide == (case_dir / "slide" / "biopsy.tiff").resolve()
    assert case.labels == CaseLabels(pcr=1, survival_months=23.4, event=1)
    assert validate_case(case) == []


def test_save_load_round_trip_keeps_relative_paths(case_dir):
    case = load_case(case_dir)
    case = Case(**{**case.__dict__, "synthetic": {"m": np.float64(0.5), "seed": 3}, "slide_mpp": 0.25})
    target = case_dir / "case_copy.yaml"
    save_case(case, target)
    text = target.read_text()
    assert "mri/t1_pre.nii.gz" in text and str(case_dir) not in text  # relative to the manifest
    again = load_case(target)
    assert again.mri == case.mri and again.masks == case.masks and again.slide == case.slide
    assert again.labels == case.labels and again.slide_mpp == 0.25
    assert again.synthetic == {"m": 0.5, "seed": 3}
    with pytest.raises(Harm3Error, match="exists"):
        save_case(case, target)  # no silent overwrite


def test_json_manifest_and_series_reference(tmp_path):
    manifest = tmp_path / "case.json"
    manifest.write_text(json.dumps({"case_id": "J1", "mri": {"t1_pre": "dicom/study#1.2.840.99"}}))
    case = load_case(tmp_path)
    assert case.mri_source("t1_pre") == ((tmp_path / "dicom" / "study").resolve(), "1.2.840.99")
    problems = validate_case(case)
    assert len(problems) == 1 and "mri.t1_pre" in problems[0] and "not found" in problems[0]


def test_validate_names_every_missing_file_at_once(case_dir):
    (case_dir / "mri" / "t2_pre.nii.gz").unlink()
    (case_dir / "slide" / "biopsy.tiff").unlink()
    case = load_case(case_dir)
    for open_files in (True, False):
        problems = validate_case(case, open_files=open_files)
        assert len(problems) == 2, problems
        assert any("mri.t2_pre" in p and "t2_pre.nii.gz" in p for p in problems)
        assert any(p.startswith("slide:") and "biopsy.tiff" in p for p in problems)


def test_validate_opens_files_and_checks_mpp(case_dir, tmp_path):
    (case_dir / "mri" / "t1_post.nii.gz").write_bytes(b"not a nifti file at all")
    (case_dir / "slide" / "biopsy.tiff").unlink()
    _write_slide(case_dir / "slide" / "biopsy.tiff", mpp=None)
    case = load_case(case_dir)
    problems = validate_case(case)
    assert len(problems) == 2, problems
    assert any("mri.t1_post" in p and "cannot be read" in p for p in problems)
    assert any("slide_mpp" in p for p in problems)
    assert validate_case(case, open_files=False) == []  # files exist; contents not checked
    data = yaml.safe_load((case_dir / "case.yaml").read_text())
    data["slide_mpp"] = 0.5
    (case_dir / "case.yaml").write_text(yaml.safe_dump(data))
    assert [p for p in validate_case(load_case(case_dir)) if p.startswith("slide")] == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("case_id: [unclosed\n", "YAML syntax error at line"),
        ("case_id: X\nfoo: 1\n", "field 'foo': unknown field"),
        ("mri:\n  t1_pre: 3\n", "field 'mri.t1_pre': expected a path"),
        ("mri:\n  t3_pre: a.nii.gz\n", "field 'mri.t3_pre': unknown sequence"),
        ("mri: a.nii.gz\n", "field 'mri': expected a mapping"),
        ("labels: {pcr: 2}\n", "field 'labels.pcr': expected 0 or 1"),
        ("labels: {survival_months: -3}\n", "field 'labels.survival_months': must not be negative"),
        ("labels: {os: 3}\n", "field 'labels.os': unknown label"),
        ("slide_mpp: -0.5\n", "field 'slide_mpp'"),
        ("slide: 12\n", "field 'slide': expected a path"),
        ("- just\n- a list\n", "expected a mapping of fields"),
    ],
)
def test_bad_manifest_is_one_line_naming_file_and_field(tmp_path, text, expected):
    manifest = tmp_path / "case.yaml"
    manifest.write_text(text)
    with pytest.raises(InputFileError) as info:
        load_case(manifest)
    message = str(info.value)
    assert expected in message
    assert "case.yaml" in message and "\n" not in message


def test_missing_manifest_in_folder(tmp_path):
    with pytest.raises(InputFileError, match="no case.yaml"):
        load_case(tmp_path)


def _cohort_csv(folder: Path, lines: list[str]) -> Path:
    path = folder / "cohort.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cohort_labels_table_over_manifest(case_dir):
    root = case_dir.parent
    table = _cohort_csv(root, ["case_id,manifest,pcr,survival_months,event", "P001,P001/case.yaml,0,,"])
    cohort = load_cohort(root)
    assert cohort.case_ids == ["P001"]
    np.testing.assert_array_equal(cohort.pcr, [0.0])  # the table overrides the manifest's pcr=1
    np.testing.assert_array_equal(cohort.survival_months, [23.4])  # empty cell: the manifest's value
    assert validate_cohort(table) == []


def test_cohort_unknown_labels_are_nan_and_problems_listed(case_dir, tmp_path):
    root = case_dir.parent
    data = yaml.safe_load((case_dir / "case.yaml").read_text())
    data.pop("labels")
    (case_dir / "case.yaml").write_text(yaml.safe_dump(data))
    table = _cohort_csv(root, ["case_id,manifest,pcr,survival_months,event", "P001,P001,,,", "P002,P002/case.yaml,1,12.5,0"])
    entries = read_cohort_table(table)
    assert [e.case_id for e in entries] == ["P001", "P002"]
    problems = validate_cohort(table)
    assert len(problems) == 1 and problems[0].startswith("P002:") and "no such case manifest" in problems[0]
    with pytest.raises(InputFileError):
        load_cohort(table)
    _cohort_csv(root, ["case_id,manifest,pcr,survival_months,event", "P001,P001,,,"])
    cohort = load_cohort(root)
    assert np.isnan(cohort.pcr).all() and np.isnan(cohort.event).all()


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["case_id,pcr", "A,1"], "missing column(s) manifest"),
        (["case_id,manifest,pcr", "A,a/case.yaml,yes"], "row 2, column 'pcr': expected a number"),
        (["case_id,manifest,event", "A,a,1", "B,b,3"], "row 3, column 'event': expected 0 or 1"),
        (["case_id,manifest", "A,a", "A,b"], "row 3: case_id 'A' repeats row 2"),
        (["case_id,manifest"], "no cases"),
    ],
)
def test_bad_cohort_table(tmp_path, lines, expected):
    table = _cohort_csv(tmp_path, lines)
    with pytest.raises(InputFileError) as info:
        read_cohort_table(table)
    assert expected in str(info.value) and "cohort.csv" in str(info.value)
    assert validate_cohort(table) == [str(info.value)]


def test_case_id_mismatch_is_reported(case_dir):
    table = _cohort_csv(case_dir.parent, ["case_id,manifest", "OTHER,P001/case.yaml"])
    problems = validate_cohort(table)
    assert len(problems) == 1 and "differs from the cohort table" in problems[0]


def test_write_cohort_table_round_trip(case_dir):
    table = write_cohort_table([("P001", case_dir / "case.yaml", CaseLabels(1, 10.0, None))], case_dir.parent / "c.csv")
    assert table.read_text().splitlines()[1] == "P001,P001/case.yaml,1,10.0,"
    (entry,) = read_cohort_table(table)
    assert entry.labels == CaseLabels(1, 10.0, None)


def test_validate_cli_exit_codes(case_dir, capsys):
    from napari_harm3.core.cli import validate

    assert validate.run(argparse.Namespace(path=str(case_dir), no_open=False)) == 0
    assert "OK" in capsys.readouterr().out
    (case_dir / "mri" / "t1_pre.nii.gz").unlink()
    (case_dir / "mri" / "tumour_t1_pre.nii.gz").unlink()
    assert validate.run(argparse.Namespace(path=str(case_dir / "case.yaml"), no_open=False)) == 2
    err = capsys.readouterr().err
    assert "mri.t1_pre" in err and "masks.t1_pre" in err and "2 problem(s)" in err
    _cohort_csv(case_dir.parent, ["case_id,manifest", "P001,P001"])
    assert validate.run(argparse.Namespace(path=str(case_dir.parent), no_open=True)) == 2
    assert "P001: mri.t1_pre" in capsys.readouterr().err
