"""The hospital's loop, end to end against a real PACS (Orthanc, ``tests/orthanc.py``): retrieve a
study into a case, open it, predict, export the results as DICOM, send them back and find them in
Orthanc — with the command line and with the viewer's PACS tab and Export DICOM button."""

from __future__ import annotations

import gc

import pydicom
import pytest

from napari_harm3.core.cli.main import main as harm3
from napari_harm3.core.io.dicom_export.sr import read_report_numbers

pytest_plugins = ("orthanc",)


def sops_in_orthanc(pacs, folder) -> set:
    found = set()
    for path in sorted(folder.iterdir()):
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        if pacs.server.find_instances("Instance", SOPInstanceUID=uid):
            found.add(path.name)
    return found


def test_command_line_get_predict_export_send(pacs, sts_study, tmp_path, capsys):
    """The real STS_001 study: T1/T2 with their RTSTRUCT masks (no post-treatment scans, no slide)."""
    config = str(pacs.config_file(tmp_path))
    case = tmp_path / "case"
    assert harm3(["pacs", "get", sts_study, "--out", str(case), "--config", config]) == 0
    out = tmp_path / "dicom"
    assert harm3(["export-dicom", str(case), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert "SR.dcm" in names and "PDF.dcm" in names and "SEG_t1_pre.dcm" in names and "PM_t1_pre.dcm" in names
    numbers = read_report_numbers(out / "SR.dcm")
    assert 0.0 <= numbers.pcr.probability <= 1.0 and set(numbers.pcr.missing_inputs) == {"t1_post", "t2_post", "slide"}
    assert [t.sequence for t in numbers.tumours] == ["t1_pre", "t2_pre"]
    assert numbers.tumours[0].volume_ml == pytest.approx(364.8, abs=0.1)  # GTV_Mass, the collection's contour
    assert harm3(["pacs", "send", str(out), "--config", config]) == 0
    assert sops_in_orthanc(pacs, out) == set(names)
    study = str(pydicom.dcmread(out / "SR.dcm", stop_before_pixels=True).StudyInstanceUID)
    assert study == sts_study and "research use only" in printed


@pytest.mark.gui
def test_viewer_pacs_tab_retrieve_open_predict_export_send(make_napari_viewer, qtbot, pacs, tmp_path):
    from napari_harm3._qt.app import preload_torch
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.workflow_panel import install_workflow

    preload_torch()
    viewer = make_napari_viewer(show=True)
    panel = CasePanel(viewer)
    workflow = install_workflow(panel)
    try:
        assert panel.tabText(panel.indexOf(panel.pacs)) == "PACS"
        panel.pacs.config_edit.setText(str(pacs.config_file(tmp_path)))
        panel.pacs.cases_dir = tmp_path / "cases"
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.pacs.retrieve(study_uid=pacs.synth_study_uid, out_dir=tmp_path / "cases" / "from-pacs")
        assert panel.session.ref is not None and set(panel.session.opened.volumes.volumes) == {
            "t1_pre", "t1_post", "t2_pre", "t2_post"}
        with qtbot.waitSignal(workflow.run_finished, timeout=300_000):
            workflow.run("pcr")
        folder = tmp_path / "dicom-out"
        with qtbot.waitSignal(workflow.dicom.dicom_written, timeout=300_000) as written:
            workflow.dicom.export(folder)
        assert written.args[0] == folder and workflow.dicom.send_button.isEnabled()
        with qtbot.waitSignal(panel.pacs.results_sent, timeout=120_000) as sent:
            workflow.dicom.send()
        assert not sent.args[0].failed
        assert sops_in_orthanc(pacs, folder) == {p.name for p in folder.iterdir()}
    finally:
        workflow.close()
        panel.close_viewers()
        gc.collect()
