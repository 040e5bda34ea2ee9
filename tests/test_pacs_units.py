"""PACS pieces that need no server: the config file, the series rules, the completeness check
before a send, the DICOM series writer (read back through the MRI reader), ``harm3 synth --dicom``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import numpy as np
import pydicom
import pytest
from conftest import real_file

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.io.dicom_write import DicomStudy, deterministic_uid, write_volume_dicom
from napari_harm3.core.io.mri import Volume, read_volume
from napari_harm3.core.pacs.association import PacsError
from napari_harm3.core.pacs.config import load_pacs_config, parse_pacs_config
from napari_harm3.core.pacs.rules import SeriesCandidate, SeriesRules, assign_series
from napari_harm3.core.pacs.store import check_dicom_file, send_folder

PEER = {"ae_title": "PACS", "host": "127.0.0.1", "port": 4242}


def free_port() -> int:
    """A port nobody listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def series(description, modality="MR", uid=None, image=True):
    return SeriesCandidate(uid or deterministic_uid(description, modality), description, modality, image, 10)


# ------------------------------------------------------------------------------------- rules
def test_default_rules_assign_our_synthetic_and_the_real_sts001_descriptions():
    synthetic = [series(d) for d in ("T1 pre", "T1 post", "T2 pre FS", "T2 post FS")]
    result = assign_series(synthetic)
    assert {k: s.description for k, s in result.assigned.items()} == {
        "t1_pre": "T1 pre", "t1_post": "T1 post", "t2_pre": "T2 pre FS", "t2_post": "T2 post FS"}
    assert not result.ambiguous and not result.unassigned
    real = [series("AXIAL SE T1 - RESEARCH"), series("AXIAL SE T2 FAT SAT - RESEARCH"),
            series("RTstruct_T1", "RTSTRUCT", image=False)]
    result = assign_series(real)
    assert {k: s.description for k, s in result.assigned.items()} == {
        "t1_pre": "AXIAL SE T1 - RESEARCH", "t2_pre": "AXIAL SE T2 FAT SAT - RESEARCH"}
    assert result.missing == ("t1_post", "t2_post")
    assert [(s.description, why) for s, why in result.unassigned] == [("RTstruct_T1", "not an MR image series")]


def test_ambiguous_series_are_reported_and_assigned_to_nothing():
    candidates = [series("T1 pre", uid="1.1"), series("T1 pre repeat", uid="1.2"), series("T1 T2 pre", uid="1.3"),
                  series("DWI b1000", uid="1.4"), series("T2 post FS", uid="1.5"), series("T10 map", uid="1.6")]
    result = assign_series(candidates)
    assert {k: s.uid for k, s in result.assigned.items()} == {"t2_post": "1.5"}
    ambiguous = {s.uid: keys for s, keys, _why in result.ambiguous}
    assert ambiguous == {"1.1": ("t1_pre",), "1.2": ("t1_pre",), "1.3": ("t1_pre", "t2_pre")}
    assert {s.uid for s, _ in result.unassigned} == {"1.4", "1.6"}
    text = "\n".join(result.lines())
    assert "2 series match t1_pre" in text and "several sequences" in text and "DWI b1000" in text


def test_overrides_win_over_the_rules_and_bad_ones_are_one_line():
    candidates = [series("T1 pre", uid="1.1"), series("T1 pre repeat", uid="1.2")]
    result = assign_series(candidates, overrides={"t1_pre": "1.2"})
    assert result.assigned["t1_pre"].uid == "1.2" and not result.ambiguous
    with pytest.raises(Harm3Error, match="no such series"):
        assign_series(candidates, overrides={"t1_pre": "9.9"})
    with pytest.raises(Harm3Error, match="unknown sequence"):
        assign_series(candidates, overrides={"flair": "1.1"})


def test_rules_from_a_config_replace_the_defaults_per_sequence():
    rules = SeriesRules.from_mapping({"t1_post": ["t1.*(gad|\\+c)"], "t2_post": None})
    assert rules.matches("AX T1 GAD") == ["t1_pre", "t1_post"]  # t1_pre keeps its default rule
    assert rules.matches("T2 post FS") == []  # t2_post: null matches nothing; t2_pre's default excludes "post"
    with pytest.raises(Harm3Error, match="bad regular expression"):
        SeriesRules.from_mapping({"t1_pre": "t1("})
    with pytest.raises(Harm3Error, match="unknown sequence"):
        SeriesRules.from_mapping({"flair": "x"})


# ------------------------------------------------------------------------------------ config
def test_config_file_is_found_in_order_and_parsed(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    (home / "harm3").mkdir(parents=True)
    (home / "harm3" / "pacs.yaml").write_text("ae_title: US\npeer: {ae_title: THEM, host: pacs.local, port: 104}\n"
                                              "rules:\n  t1_post: 't1.*gad'\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("HARM3_PACS_CONFIG", raising=False)
    config = load_pacs_config()
    assert (config.ae_title, config.peer.ae_title, config.peer.host, config.peer.port) == ("US", "THEM", "pacs.local", 104)
    assert config.retrieve == "get" and config.tls is None
    assert config.rules.matches("T1 GAD") == ["t1_pre", "t1_post"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"peer": PEER, "retrieve": "move", "move_port": 11113}))
    monkeypatch.setenv("HARM3_PACS_CONFIG", str(other))
    assert load_pacs_config().retrieve == "move" and load_pacs_config().ae_title == "HARM3"
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"peer": {**PEER, "port": 5678}}))
    assert load_pacs_config(explicit).peer.port == 5678
    monkeypatch.delenv("HARM3_PACS_CONFIG")
    (home / "harm3" / "pacs.yaml").unlink()
    with pytest.raises(Harm3Error, match="no PACS config file.*pacs.yaml.*--config"):
        load_pacs_config()


@pytest.mark.parametrize("data, message", [
    ({}, "peer: expected a mapping"),
    ({"peer": {"ae_title": "P", "host": "h"}}, "peer.port: missing"),
    ({"peer": {**PEER, "port": 70000}}, "TCP port"),
    ({"peer": {**PEER, "ae_title": "A" * 17}}, "not a valid AE title"),
    ({"peer": PEER, "retrieve": "fetch"}, "retrieve: expected one of get, move"),
    ({"peer": PEER, "retrieve": "move"}, "move_port: retrieve: move needs"),
    ({"peer": PEER, "tls": {"ca": "missing.pem"}}, "tls.ca: file not found"),
    ({"peer": PEER, "colour": "blue"}, "colour: unknown key"),
])
def test_bad_config_is_one_readable_line(data, message):
    with pytest.raises(Harm3Error, match=message) as info:
        parse_pacs_config(data)
    assert "\n" not in str(info.value)


# -------------------------------------------------------------------------- send: the checks
def test_send_refuses_incomplete_files_before_any_connection(shared_data, tmp_path):
    source = sorted(real_file(shared_data, "mri/sts001_dicom/T1").iterdir())[0]
    folder = tmp_path / "out"
    folder.mkdir()
    shutil.copy(source, folder / "complete.dcm")
    check_dicom_file(folder / "complete.dcm")
    data = source.read_bytes()
    (folder / "truncated.dcm").write_bytes(data[:-1000])
    (folder / "notes.txt").write_text("not DICOM")
    (folder / ".being-written.dcm.partial").write_bytes(data)
    config = parse_pacs_config({"peer": {**PEER, "port": free_port()}})  # nobody listens there
    with pytest.raises(PacsError) as info:
        send_folder(config, folder)
    message = str(info.value)
    assert "3 file(s) are not complete DICOM objects, nothing was sent" in message
    assert "truncated" in message and "no DICM preamble" in message and "still being written" in message
    ds = pydicom.dcmread(source)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(tmp_path / "short-pixels.dcm")
    with pytest.raises(ValueError, match="pixel data holds .* the image needs"):
        check_dicom_file(tmp_path / "short-pixels.dcm")


def test_unreachable_pacs_is_one_line(tmp_path):
    from napari_harm3.core.pacs.query import find_studies

    config = parse_pacs_config({"peer": {**PEER, "port": free_port()}, "timeout": 5})
    with pytest.raises(PacsError, match=r"cannot be reached \(connection refused or timed out\)") as info:
        find_studies(config, patient_id="X")
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------- DICOM series writer
def _oblique_affine():
    """index (k, j, i) → world (z, y, x): 2.5 mm slices, 0.8 × 0.7 mm pixels, tilted 20° about x."""
    t = np.deg2rad(20)
    row = np.array([1.0, 0.0, 0.0])                          # x, y, z of increasing column i
    col = np.array([0.0, np.cos(t), -np.sin(t)])              # of increasing row j
    normal = np.cross(row, col)
    xyz = np.column_stack([normal * 2.5, col * 0.8, row * 0.7])  # columns for k, j, i
    affine = np.eye(4)
    affine[:3, :3] = xyz[::-1]                                # world order (z, y, x)
    affine[:3, 3] = [40.0, -12.5, 3.25]
    return affine


STUDY = DicomStudy(deterministic_uid("test-study"), "PAT-1", "TEST^PATIENT", "20250101", "120000", "1")


def test_written_series_reads_back_with_the_same_voxels_and_affine(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(-300, 4000, (6, 20, 30)).astype(np.int16)
    volume = Volume(data, _oblique_affine(), "t1", "memory", frame_of_reference_uid=deterministic_uid("frame"))
    write_volume_dicom(volume, tmp_path / "s", STUDY, series_description="T1 pre", series_number=3)
    back = read_volume(tmp_path / "s")
    assert back.data.dtype == np.int16 and np.array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-6)
    assert back.description == "T1 pre" and back.frame_of_reference_uid == volume.frame_of_reference_uid
    first = pydicom.dcmread(sorted((tmp_path / "s").iterdir())[0])
    assert first.StudyInstanceUID == STUDY.study_uid and first.SeriesNumber == 3 and first.Modality == "MR"
    assert float(first.SliceThickness) == pytest.approx(2.5)
    assert not list(tmp_path.glob(".*partial"))
    with pytest.raises(Harm3Error, match="exists and is not empty"):
        write_volume_dicom(volume, tmp_path / "s", STUDY, series_description="again")


def test_float_volume_is_rescaled_and_reads_back_within_half_a_step(tmp_path):
    data = np.random.default_rng(1).normal(100.0, 30.0, (4, 8, 9)).astype(np.float32)
    affine = np.diag([3.0, 0.9, 0.9, 1.0])
    write_volume_dicom(Volume(data, affine, "adc", "memory"), tmp_path / "f", STUDY, series_description="ADC")
    back = read_volume(tmp_path / "f")
    step = (data.max() - data.min()) / 65534
    assert np.abs(back.data - data).max() <= step / 2 + 1e-6
    np.testing.assert_allclose(back.affine, affine, atol=1e-9)


def test_sheared_affine_is_refused(tmp_path):
    affine = np.diag([3.0, 1.0, 1.0, 1.0])
    affine[1, 2] = 0.5  # in-plane shear
    with pytest.raises(Harm3Error, match="not orthogonal"):
        write_volume_dicom(Volume(np.zeros((2, 3, 3), np.int16), affine, "x", "m"), tmp_path / "x", STUDY,
                           series_description="x")


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_written_slice_passes_dciodvfy_without_errors(tmp_path):
    data = np.arange(2 * 6 * 7, dtype=np.int16).reshape(2, 6, 7)
    write_volume_dicom(Volume(data, _oblique_affine(), "t", "m"), tmp_path / "s", STUDY, series_description="T2 pre FS")
    run = subprocess.run(["dciodvfy", str(tmp_path / "s" / "IM0001.dcm")], capture_output=True, text=True)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert "MRImage" in run.stdout + run.stderr and errors == []


def test_synth_dicom_writes_one_study_of_four_series_with_the_phantom_voxels(tmp_path):
    from napari_harm3.core.cli.main import main
    from napari_harm3.core.io.case import load_case
    from napari_harm3.core.mri.case_volumes import read_case_volumes

    assert main(["synth", "--n", "1", "--seed", "5", "--out", str(tmp_path / "dcm"), "--dicom"]) == 0
    assert main(["synth", "--n", "1", "--seed", "5", "--out", str(tmp_path / "nii")]) == 0
    dicom_case, nifti_case = (load_case(tmp_path / k / "SYN-0001") for k in ("dcm", "nii"))
    assert all(str(dicom_case.mri_source(k)[0]).endswith(f"dicom/{k}") for k in dicom_case.mri)
    left = sorted(p.name for p in (tmp_path / "dcm" / "SYN-0001" / "mri").iterdir())
    assert left and all(name.startswith("tumour_") for name in left)  # the images are DICOM only now
    a, b = read_case_volumes(dicom_case), read_case_volumes(nifti_case)
    assert a.sequences == b.sequences == ["t1_pre", "t1_post", "t2_pre", "t2_post"]
    for key in a.sequences:
        assert np.array_equal(a.volumes[key].data, b.volumes[key].data)
        np.testing.assert_allclose(a.volumes[key].affine, b.volumes[key].affine, atol=1e-6)
        assert np.array_equal(a.masks[key].data, b.masks[key].data)
    headers = [pydicom.dcmread(next((tmp_path / "dcm" / "SYN-0001" / "dicom" / k).iterdir()), stop_before_pixels=True)
               for k in a.sequences]
    assert len({h.StudyInstanceUID for h in headers}) == 1 and len({h.SeriesInstanceUID for h in headers}) == 4
    assert [h.SeriesDescription for h in headers] == ["T1 pre", "T1 post", "T2 pre FS", "T2 post FS"]
    assert len({h.FrameOfReferenceUID for h in headers}) == 1
