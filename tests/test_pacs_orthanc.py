"""The PACS commands against a real PACS: Orthanc on 127.0.0.1 (``tests/orthanc.py``), holding
the real STS_001 study and a synthetic case written as DICOM. Find, retrieve into a case (C-GET
and C-MOVE), open it, predict pCR on it, send objects back and find them in Orthanc; and the bad
input: a refused association, a study with no MRI, a series that fails to decode, an unknown
study, a cancelled retrieval — each one readable line, no partial folder left."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_harm3.core.cli.main import main as harm3
from napari_harm3.core.errors import Cancelled
from napari_harm3.core.io.case import load_case
from napari_harm3.core.io.dicom_write import DicomStudy, deterministic_uid, write_volume_dicom
from napari_harm3.core.io.mri import read_volume
from napari_harm3.core.mri.case_volumes import read_case_volumes
from napari_harm3.core.pacs.association import PacsError
from napari_harm3.core.pacs.query import find_series, find_studies
from napari_harm3.core.pacs.store import DicomObject, send_folder, send_objects
from napari_harm3.core.pacs.study_case import retrieve_case

pytest_plugins = ("orthanc",)

ROOT = Path(__file__).resolve().parents[1]
STS_T1 = "AXIAL SE T1 - RESEARCH"
STS_T2 = "AXIAL SE T2 FAT SAT - RESEARCH"


def nothing_left(target: Path) -> bool:
    """Neither the case folder nor a scratch folder of it remains."""
    return not target.exists() and not list(target.parent.glob(f".{target.name}-*"))


def copy_as_new_study(source: Path, out: Path, edit=None) -> str:
    """Copies of the DICOM files under ``source`` in a new study of a new patient (new patient ID,
    study/series/instance UIDs), so the fixture's patients keep their one study each."""
    study = deterministic_uid("new study", source, out)
    out.mkdir(parents=True)
    for n, path in enumerate(sorted(p for p in source.rglob("*") if p.is_file())):
        ds = pydicom.dcmread(path)
        ds.PatientID = ds.PatientName = f"COPY-{study[-8:]}"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = deterministic_uid(study, ds.SeriesInstanceUID)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = deterministic_uid(study, ds.SOPInstanceUID)
        if edit is not None:
            edit(n, ds)
        ds.save_as(out / f"{n:04d}.dcm")
    return study


# ------------------------------------------------------------------------------------------ find
def test_find_by_patient_and_by_study_at_study_and_series_level(pacs, sts_study):
    config = pacs.config()
    (study,) = find_studies(config, patient_id="STS_001")
    assert study.uid == sts_study and study.patient_id == "STS_001"
    assert {s.description: (s.modality, s.n_instances) for s in study.series} == {
        STS_T1: ("MR", 40), STS_T2: ("MR", 40), "RTstruct_T1": ("RTSTRUCT", 1), "RTstruct_T2FS": ("RTSTRUCT", 1)}
    (again,) = find_studies(config, study_uid=sts_study)
    assert again.series == study.series and again.n_instances == 82
    assert [s.description for s in find_series(config, pacs.synth_study_uid)] == [
        "T1 pre", "T1 post", "T2 pre FS", "T2 post FS"]
    assert find_studies(config, patient_id="NOBODY-HERE") == ()


def test_find_command_prints_a_table_without_identifiers_unless_asked(pacs, tmp_path, capsys):
    config = pacs.config_file(tmp_path)
    assert harm3(["pacs", "find", "--patient", pacs.synth_patient_id, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert pacs.synth_study_uid in out and "T2 post FS" in out and "IDs hidden" in out
    assert pacs.synth_patient_id not in out and "SYNTHETIC" not in out
    assert harm3(["pacs", "find", "--study", pacs.synth_study_uid, "--config", str(config), "--show-identifiers"]) == 0
    out = capsys.readouterr().out
    assert pacs.synth_patient_id in out and "SYNTHETIC^" in out


# --------------------------------------------------------------------------------------- retrieve
def test_get_sts001_by_c_get_opens_as_a_case_and_predicts_pcr(pacs, sts_study, shared_data, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "from-pacs"
    assert harm3(["pacs", "get", sts_study, "--out", str(out), "--config", str(pacs.config_file(tmp_path))]) == 0
    printed = capsys.readouterr().out
    assert f"t1_pre   ← '{STS_T1}'" in printed and "by C-GET" in printed and "no series for: t1_post, t2_post" in printed
    assert "mask t1_pre   ← 'RTstruct_T1'" in printed
    case = load_case(out)
    assert sorted(case.mri) == ["t1_pre", "t2_pre"] and sorted(case.masks) == ["t1_pre", "t2_pre"]
    volumes = read_case_volumes(case)
    sts = shared_data / "real" / "mri" / "sts001_dicom"
    for key, folder in (("t1_pre", "T1"), ("t2_pre", "T2")):
        original = read_volume(sts / folder)
        assert np.array_equal(volumes.volumes[key].data, original.data)
        np.testing.assert_allclose(volumes.volumes[key].affine, original.affine)
        assert "GTV_Mass" in volumes.masks[key].label_names.values()
    record = json.loads((out / "pacs.json").read_text())
    assert record["study_instance_uid"] == sts_study and record["objects"] == 82
    assert {s["description"]: s["sequence"] for s in record["series"]}[STS_T1] == "t1_pre"
    assert "STS_001" not in (out / "pacs.json").read_text() + (out / "case.yaml").read_text() + printed
    assert "STS_001" not in caplog.text  # no patient identifier logged (ours or pynetdicom's)

    from napari_harm3.core.predict.pcr import predict_case

    prediction = predict_case(ROOT / "models" / "harm3-demo", case, gradcam=False)
    assert 0.0 <= prediction.probability <= 1.0 and len(prediction.fold_probabilities) == 5
    assert set(prediction.missing_inputs) == {"t1_post", "t2_post", "slide"}


def test_c_move_retrieves_the_synthetic_case_with_its_voxels(pacs, tmp_path):
    config = pacs.config(retrieve="move")
    progress = []
    result = retrieve_case(config, pacs.synth_study_uid, tmp_path / "SYN", progress=lambda f, m: progress.append(f))
    assert result.retrieval.method == "C-MOVE" and not result.assignment.ambiguous and not result.assignment.missing
    assert progress[-1] == 1.0 and progress == sorted(progress)
    ours = read_case_volumes(result.case)
    theirs = read_case_volumes(load_case(pacs.synth_case_dir), with_masks=False)
    for key in ("t1_pre", "t1_post", "t2_pre", "t2_post"):
        assert np.array_equal(ours.volumes[key].data, theirs.volumes[key].data)
        np.testing.assert_allclose(ours.volumes[key].affine, theirs.volumes[key].affine, atol=1e-6)


# ------------------------------------------------------------------------------------------ send
def test_send_objects_back_and_find_them_in_orthanc(pacs, tmp_path, capsys):
    case = load_case(pacs.synth_case_dir)
    volume = read_case_volumes(case, sequences=("t1_pre",), with_masks=False).volumes["t1_pre"]
    # a study of its own (not the fixture's), so other tests see the fixture's study unchanged
    study = DicomStudy(deterministic_uid("sent back study", tmp_path), "RESULTS-1", "RESULTS^1", "20250102")
    series_uid = deterministic_uid("sent back", tmp_path)
    write_volume_dicom(volume, tmp_path / "results" / "t1_copy", study, series_description="harm3 result copy",
                       series_number=90, series_uid=series_uid)
    config = pacs.config_file(tmp_path)
    assert harm3(["pacs", "send", str(tmp_path / "results"), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok    ") == volume.shape[0] and f"sent {volume.shape[0]} of {volume.shape[0]} objects" in out
    (found,) = pacs.server.find_instances("Series", SeriesInstanceUID=series_uid)
    assert len(found["Instances"]) == volume.shape[0]
    assert found["MainDicomTags"]["SeriesDescription"] == "harm3 result copy"
    assert [s.uid for s in find_series(pacs.config(), study.study_uid)] == [series_uid]


# ------------------------------------------------------------------------------------- bad input
def test_refused_association_is_one_line_in_the_command(pacs, tmp_path, capsys):
    config = pacs.config_file(tmp_path, peer={**pacs.server.config_dict()["peer"], "ae_title": "WRONGAE"})
    out = tmp_path / "case"
    assert harm3(["pacs", "get", pacs.synth_study_uid, "--out", str(out), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harm3: error: PACS WRONGAE at 127.0.0.1") and "\n" not in err
    assert "refused the association" in err and "Called AE title not recognised" in err
    assert nothing_left(out)


def test_study_without_mri_is_refused_and_nothing_is_kept(pacs, shared_data, tmp_path):
    study = copy_as_new_study(shared_data / "real" / "mri" / "sts001_dicom" / "T1_rtstruct", tmp_path / "rt")
    pacs.upload(tmp_path / "rt")
    with pytest.raises(PacsError, match=r"holds no MR image series \(found: RTSTRUCT ×1\); nothing was kept"):
        retrieve_case(pacs.config(), study, tmp_path / "case")
    assert nothing_left(tmp_path / "case")


def test_series_that_fails_to_decode_fails_the_retrieval_and_nothing_is_kept(pacs, tmp_path):
    def halve_pixels(n, ds):
        if n == 3:
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]

    study = copy_as_new_study(pacs.synth_case_dir / "dicom" / "t2_pre", tmp_path / "bad", edit=halve_pixels)
    objects = []
    for path in sorted((tmp_path / "bad").iterdir()):  # sent without our completeness check, on purpose
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        objects.append(DicomObject(path, ds.SOPClassUID, ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID,
                                   path.stat().st_size))
    assert not send_objects(pacs.config(), objects).failed
    with pytest.raises(PacsError, match=r"series 'T2 pre FS' .* \(t2_pre\) cannot be read: .*pixel data") as info:
        retrieve_case(pacs.config(), study, tmp_path / "case")
    assert "\n" not in str(info.value) and "nothing was kept" in str(info.value)
    assert nothing_left(tmp_path / "case")


def test_unknown_study_and_cancelled_retrieval_leave_nothing(pacs, tmp_path):
    with pytest.raises(PacsError, match=r"has no study 1\.2\.3\.4\.5\.6\.7\.8\.9; check the study UID"):
        retrieve_case(pacs.config(), "1.2.3.4.5.6.7.8.9", tmp_path / "none")
    assert nothing_left(tmp_path / "none")

    def cancel(fraction, message):
        if fraction > 0:
            raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        retrieve_case(pacs.config(), pacs.synth_study_uid, tmp_path / "cancelled", progress=cancel)
    assert nothing_left(tmp_path / "cancelled")
    with pytest.raises(PacsError, match="exists and is not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("")
        retrieve_case(pacs.config(), pacs.synth_study_uid, tmp_path / "full")


def test_send_reports_per_object_status_when_the_pacs_refuses_one(pacs, tmp_path):
    """A study UID that is not a UID makes Orthanc refuse that object; the others are stored."""
    source = pacs.synth_case_dir / "dicom" / "t1_post"

    def bad_uid(n, ds):
        if n == 0:
            ds.StudyInstanceUID = ""

    copy_as_new_study(source, tmp_path / "mixed", edit=bad_uid)
    result = send_folder(pacs.config(), tmp_path / "mixed")
    assert len(result.objects) == len(list(source.iterdir()))
    assert [o.ok for o in result.objects].count(False) == 1 and not result.objects[0].ok
    assert result.objects[0].status.startswith("0x")
