"""The case session without Qt: events, results that belong to their case, the model cache,
missing inputs, cancel, µm/px, report export."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from napari_harm3.core.errors import Cancelled, Harm3Error
from napari_harm3.core.io.case import load_case
from napari_harm3.core.session import CaseSession, features_root
from napari_harm3.core.synth.cohort import make_case
from napari_harm3.core.synth.demo import demo_case


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("session-cases")
    return [make_case(root / name, seed=seed, case_id=name) for name, seed in (("CASE-A", 21), ("CASE-B", 22))]


class Recorder:
    def __init__(self, session):
        self.events = []
        for name in ("case_opened", "case_closed", "scale_changed", "prediction_changed", "run_started",
                     "run_ended", "report_written"):
            getattr(session, name).connect(lambda *args, n=name: self.events.append((n, args)))

    def names(self):
        return [n for n, _ in self.events]


def test_open_predict_events_and_the_model_cache(two_cases):
    session = CaseSession(device="cpu")
    seen = Recorder(session)
    opened = session.open(two_cases[0].manifest)
    assert seen.names() == ["case_opened"] and session.ref.case_id == "CASE-A"
    assert set(opened.volumes.volumes) == {"t1_pre", "t1_post", "t2_pre", "t2_post"}
    prediction = session.predict("pcr")
    assert prediction.case_ref == session.ref and session.prediction("pcr") is prediction
    assert seen.names()[1:] == ["run_started", "prediction_changed", "run_ended"]
    assert seen.events[-1][1][1] == "done"
    ensemble_key = (session.model_used("pcr").path, "cpu", "pcr")
    assert ensemble_key in session.models
    cached = session.models.get(*ensemble_key)
    again = session.predict("pcr")
    assert session.models.get(*ensemble_key) is cached  # loaded once for the session
    assert again.probability == pytest.approx(prediction.probability, abs=1e-6)
    assert set(session.gradcam_maps()) == {"t1_pre", "t1_post", "t2_pre", "t2_post"}
    assert "p(pCR) = " in session.results_text() and "CASE-A" in session.results_text()
    # the tumour response of the case's masks, the same in the results text and the report
    response = session.tumour_response()
    assert [r.contrast for r in response.responses] == ["T1", "T2"]
    t1 = response.responses[0]
    assert t1.pre.volume_ml > t1.post.volume_ml > 0 and t1.volume_change_percent < 0
    assert f"change {t1.volume_change_percent:+.1f} % volume" in session.results_text()
    data = session.report().to_json_dict()["tumour_response"]
    assert data["responses"][0]["pre"]["volume_ml"] == t1.pre.volume_ml
    session.close()
    assert session.predictions == {} and session.ref is None and seen.names()[-2:] == ["prediction_changed", "case_closed"]


def test_a_result_never_lands_on_another_case(two_cases):
    session = CaseSession(device="cpu")
    seen = Recorder(session)
    session.open(two_cases[0].manifest)
    run_a = session.start_run("pcr")
    result_a = run_a.execute()                    # finished in a worker while the user opened B
    session.open(two_cases[1].manifest)
    assert run_a.cancelled                       # switching cancels the old case's runs
    assert session.accept(run_a, result_a) is False
    assert session.prediction("pcr") is None and ("run_ended", (run_a, "discarded")) in seen.events
    # a run still going when the case changes stops at its next progress report
    run_b = session.start_run("pcr")
    session.open(two_cases[0].manifest)          # A again: a new opening, a new identity
    with pytest.raises(Cancelled):
        run_b.execute()
    assert session.fail(run_b, Cancelled()) == "cancelled"
    assert session.ref.case_id == "CASE-A" and session.ref != run_a.case_ref
    # and the report of the open case holds only its own numbers
    mine = session.predict("pcr")
    assert session.report().pcr.probability == mine.probability
    session.close()


def test_missing_inputs_are_said(two_cases, tmp_path):
    case = load_case(two_cases[1].manifest)
    partial = dataclasses.replace(case, case_id="CASE-B-PART", slide=None,
                                  mri={k: v for k, v in case.mri.items() if k != "t2_post"},
                                  masks={k: v for k, v in case.masks.items() if k != "t2_post"})
    session = CaseSession(device="cpu")
    session.open(partial)
    prediction = session.predict("pcr")
    assert set(prediction.missing_inputs) == {"t2_post", "slide"}
    with pytest.raises(Harm3Error, match="needs the biopsy slide"):
        session.predict("survival")
    assert session.prediction("survival") is None
    report = session.report()
    assert set(report.case.missing_inputs) == {"t2_post", "slide"}
    assert any(n.startswith("Survival analysis not run") for n in report.notes)
    session.close()


def test_cancel_before_and_a_wrong_model_kind(two_cases):
    session = CaseSession(device="cpu")
    session.open(two_cases[0].manifest)
    run = session.start_run("survival")
    run.cancel()
    with pytest.raises(Cancelled):
        run.execute()
    with pytest.raises(Harm3Error, match="not a pcr model"):
        session.start_run("pcr", session.model_for("survival").path)
    with pytest.raises(Harm3Error, match="unknown analysis"):
        session.start_run("grading")
    session.close()
    with pytest.raises(Harm3Error, match="open a case first"):
        session.start_run("pcr")


def test_slide_mpp_is_one_value_with_its_source(two_cases):
    session = CaseSession(device="cpu")
    seen = Recorder(session)
    session.open(two_cases[0].manifest)
    assert session.scale.mpp == pytest.approx(0.5) and session.scale.source == "slide metadata"
    root = features_root(session.opened, session.scale)
    assert root == two_cases[0].root / "features"
    with pytest.raises(Harm3Error, match="positive number"):
        session.set_slide_mpp(-1)
    scale = session.set_slide_mpp(0.25)
    assert scale.source == "entered by the user" and ("scale_changed", (scale,)) in seen.events
    assert session.slide.mpp == pytest.approx(0.25)
    # features computed at another µm/px are cached apart
    assert features_root(session.opened, session.scale) == two_cases[0].root / "features" / "mpp-0.25"
    session.close()


def test_the_demo_case_survival_maps_and_report_export(tmp_path):
    session = CaseSession(device="cpu")
    session.open(demo_case())
    survival = session.predict("survival")
    heatmaps = session.heatmaps()
    assert set(heatmaps) == {"5x", "10x", "20x", "final"}
    assert session.heatmaps()["20x"] is heatmaps["20x"]       # painted once per prediction
    for key, raster in heatmaps.items():
        scores = survival.attention[key]
        assert raster.downsample == scores.footprint / 8 and np.isnan(raster.data).any()
    empty = CaseSession(device="cpu")
    empty.open(demo_case())
    with pytest.raises(Harm3Error, match="no model has run"):
        empty.export_report(tmp_path / "none.pdf", require_results=True)
    empty.close()
    assert not (tmp_path / "none.pdf").exists()
    pdf, js = session.export_report(tmp_path / "r.pdf", deidentify=True)
    data = json.loads(js.read_text())
    assert data["deidentified"] and data["survival"]["risk"] == survival.risk
    assert data["survival"]["risk_group"] == survival.risk_group and data["survival"]["risk_percentile"] is not None
    for label, heatmap in data["figures"]["slide"]["heatmaps"].items():
        assert heatmap["tissue_coverage"] >= 0.8, label
    # the report's map is the painter's raster, the one the viewer shows
    figure = session.report().slide_figure
    assert all(figure.heatmaps[r.label] is r for r in heatmaps.values())
    # top patches: read at their own footprint, mostly tissue; a 5x tile spans 4x the level-0 px of a 20x one
    tiles = {label: t for label, t in figure.top_patches.items()}
    five, twenty = tiles["CrossFusion 5x attention"], tiles["CrossFusion 20x attention"]
    assert five and twenty and five[0].size == 4 * twenty[0].size
    from napari_harm3.core.report.figures import tissue_pixels

    for tile in five + twenty:
        assert tissue_pixels(tile.rgb).mean() >= 0.5
    with pytest.raises(Harm3Error, match="exists"):
        session.export_report(tmp_path / "r.pdf")
    session.close()


def test_a_changed_slide_gets_new_features_not_the_cached_ones(tmp_path):
    import shutil

    from napari_harm3.core.session.runs import features_root as root_of

    case = make_case(tmp_path / "CASE-C", seed=31, case_id="CASE-C")
    other = make_case(tmp_path / "CASE-D", seed=32, case_id="CASE-D")
    session = CaseSession(device="cpu")
    session.open(case.manifest)
    first = session.predict("pcr", gradcam=False).slide_attention
    shutil.copyfile(other.slide, case.slide)           # the slide file was replaced (a rescan)
    session.open(case.manifest)
    second = session.predict("pcr", gradcam=False).slide_attention
    assert not np.array_equal(first.coords, second.coords) or not np.array_equal(first.scores, second.scores)
    assert root_of(session.opened, session.scale) == case.root / "features"
    session.close()
