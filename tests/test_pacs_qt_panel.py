"""The viewer's PACS tab against the session's Orthanc: search → studies and series in the table
(identifiers hidden unless asked), retrieve in a worker → the case is opened through the callback,
cancel → nothing kept, send results → stored in Orthanc, a refused association → one line."""

from __future__ import annotations

import pytest

from napari_harm3.core.io.case import load_case
from napari_harm3.core.io.dicom_write import DicomStudy, deterministic_uid, write_volume_dicom
from napari_harm3.core.mri.case_volumes import read_case_volumes

pytest_plugins = ("orthanc",)
pytestmark = pytest.mark.gui


@pytest.fixture
def make_panel(qtbot, pacs, tmp_path):
    from napari_harm3._qt.pacs_panel import PacsPanel

    def factory(**config_overrides):
        opened = []
        panel = PacsPanel(open_case=opened.append, config_path=pacs.config_file(tmp_path, **config_overrides),
                          cases_dir=tmp_path / "cases")
        qtbot.addWidget(panel)
        return panel, opened

    return factory


def _search(panel, qtbot, patient_id):
    with qtbot.waitSignal(panel.studies_found, timeout=30_000) as blocker:
        panel.patient_edit.setText(patient_id)
        panel.search_button.click()
    return blocker.args[0]


def test_search_retrieve_and_open(make_panel, qtbot, pacs):
    panel, opened = make_panel()
    (study,) = _search(panel, qtbot, pacs.synth_patient_id)
    assert panel.tree.topLevelItemCount() == 1
    item = panel.tree.topLevelItem(0)
    assert [item.child(n).text(0) for n in range(item.childCount())] == ["T1 pre", "T1 post", "T2 pre FS", "T2 post FS"]
    assert pacs.synth_patient_id not in item.text(0)
    panel.identifiers_box.setChecked(True)
    assert pacs.synth_patient_id in panel.tree.topLevelItem(0).text(0)
    panel.select_study(study.uid)
    target = panel.case_dir_edit.text()
    assert target.startswith(str(panel.cases_dir))
    with qtbot.waitSignal(panel.case_retrieved, timeout=60_000) as blocker:
        panel.retrieve_button.click()
    result = blocker.args[0]
    assert opened == [result.manifest] and str(result.manifest.parent) == target
    assert sorted(read_case_volumes(load_case(result.manifest)).volumes) == ["t1_post", "t1_pre", "t2_post", "t2_pre"]
    assert "t2_post  ← 'T2 post FS'" in panel.details.toPlainText()
    assert panel.retrieve_button.isEnabled() and not panel.progress.isVisible()


def test_cancel_keeps_nothing(make_panel, qtbot, pacs, tmp_path):
    panel, opened = make_panel()
    target = tmp_path / "cancelled-case"
    panel._progress_signal.connect(lambda fraction, message: panel.cancel())  # cancel at the first report
    with qtbot.waitSignal(panel.retrieval_cancelled, timeout=60_000):
        panel.retrieve(study_uid=pacs.synth_study_uid, out_dir=target)
    assert opened == [] and not target.exists() and not list(tmp_path.glob(".cancelled-case-*"))
    assert "cancelled" in panel.status.text()


def test_send_results_to_the_pacs(make_panel, qtbot, pacs, tmp_path):
    panel, _ = make_panel()
    case = load_case(pacs.synth_case_dir)
    volume = read_case_volumes(case, sequences=("t2_pre",), with_masks=False).volumes["t2_pre"]
    series_uid = deterministic_uid("panel send", tmp_path)
    study = DicomStudy(deterministic_uid("panel send study", tmp_path), "RESULTS-2", "RESULTS^2", "20250102")
    write_volume_dicom(volume, tmp_path / "results" / "s", study, series_description="panel result",
                       series_number=91, series_uid=series_uid)
    with qtbot.waitSignal(panel.results_sent, timeout=60_000) as blocker:
        panel.send_results(tmp_path / "results")
    assert blocker.args[0].n_ok == volume.shape[0] and not blocker.args[0].failed
    (found,) = pacs.server.find_instances("Series", SeriesInstanceUID=series_uid)
    assert len(found["Instances"]) == volume.shape[0]


def test_refused_association_is_one_line(make_panel, qtbot, pacs):
    panel, _ = make_panel(peer={**pacs.server.config_dict()["peer"], "ae_title": "NOT-ORTHANC"})
    with qtbot.waitSignal(panel.failed, timeout=30_000) as blocker:
        panel.search(patient_id="*")
    message = blocker.args[0]
    assert "refused the association" in message and "\n" not in message
    assert panel.status.text().startswith("PACS: ") and panel.search_button.isEnabled()
