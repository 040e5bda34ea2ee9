"""The batch runner on its own: a crash mid-run, a failing case, an unreadable manifest, a changed
model, and the real per-case function on a case without a slide (partial)."""

from __future__ import annotations

import dataclasses
import math
import shutil

import pytest

from napari_harm3.core.cohort.case_row import predict_case_row
from napari_harm3.core.cohort.model_refs import CohortModels, model_ref
from napari_harm3.core.cohort.rows import CaseRow, read_predictions
from napari_harm3.core.cohort.runner import run_cohort
from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.resources import models_dir


def latent_oracle_row(case, models, device="cpu") -> CaseRow:
    """A per-case function that predicts from the phantom's generating latents (the runner takes
    any function with predict_case_row's signature; this one needs no model run)."""
    latent = case.synthetic
    return CaseRow(str(case.case_id), "ok", pcr_probability=1 / (1 + math.exp(-(latent["m"] + latent["s"]))),
                   pcr_spread=0.0, pcr_folds=1, pcr_model=models.pcr.name, pcr_model_sha256=models.pcr.sha256)


class CrashAt:
    """The oracle, except that one case raises ``error`` (a crash: KeyboardInterrupt; a bug: RuntimeError)."""

    def __init__(self, case_id: str, error: BaseException):
        self.case_id, self.error = case_id, error

    def __call__(self, case, models, device="cpu"):
        if case.case_id == self.case_id:
            raise self.error
        return latent_oracle_row(case, models, device)


@pytest.fixture(scope="module")
def cohort_template(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_cohort

    folder = tmp_path_factory.mktemp("runner") / "cohort"
    make_cohort(folder, 3, seed=5)
    return folder


@pytest.fixture
def cohort(cohort_template, tmp_path):
    return shutil.copytree(cohort_template, tmp_path / "cohort")


@pytest.fixture(scope="module")
def pcr_only():
    return CohortModels(pcr=model_ref(models_dir() / "harm3-demo"))


def test_a_crash_loses_only_the_case_in_flight_and_a_rerun_resumes(cohort, tmp_path, pcr_only):
    out = tmp_path / "predictions.csv"
    with pytest.raises(KeyboardInterrupt):
        run_cohort(cohort, out, pcr_only, predict=CrashAt("SYN-0002", KeyboardInterrupt()))
    kept = read_predictions(out)
    assert [(r.case_id, r.status) for r in kept] == [("SYN-0001", "ok")]
    resumed = run_cohort(cohort, out, pcr_only, predict=latent_oracle_row)
    assert (resumed.predicted, resumed.reused) == (2, 1)
    assert resumed.rows[0] == kept[0] and [r.status for r in resumed.rows] == ["ok"] * 3
    assert read_predictions(out) == resumed.rows


def test_a_failing_case_becomes_its_row_and_the_rest_go_on(cohort, tmp_path, pcr_only):
    out, seen = tmp_path / "predictions.csv", []
    run = run_cohort(cohort, out, pcr_only, predict=CrashAt("SYN-0002", RuntimeError("shape mismatch")),
                     on_row=lambda row, reused: seen.append(row.case_id))
    assert [r.status for r in run.rows] == ["ok", "failed", "ok"] and sorted(seen) == ["SYN-0001", "SYN-0002", "SYN-0003"]
    assert run.rows[1].reason == "RuntimeError: shape mismatch" and run.rows[1].inputs_sha256
    assert run.line() == "3 cases: 2 ok, 0 partial, 1 failed, 0 skipped (3 predicted, 0 reused)"
    again = run_cohort(cohort, out, pcr_only, predict=latent_oracle_row)  # failed cases are retried
    assert (again.predicted, again.reused) == (1, 2) and again.rows[1].status == "ok"


def test_an_unreadable_manifest_is_skipped_with_its_reason_and_labels_from_the_table(cohort, tmp_path, pcr_only):
    (cohort / "SYN-0003" / "case.yaml").write_text("case_id: [unclosed\n")
    run = run_cohort(cohort, tmp_path / "p.csv", pcr_only, predict=latent_oracle_row)
    row = run.rows[2]
    assert row.status == "skipped" and "YAML syntax error" in row.reason and "case.yaml" in row.reason
    assert run.labels["SYN-0003"].pcr is not None  # the table's labels: a summary still lists the case


def test_another_model_or_force_reruns_every_case(cohort, tmp_path, pcr_only):
    out = tmp_path / "p.csv"
    run_cohort(cohort, out, pcr_only, predict=latent_oracle_row)
    retrained = CohortModels(pcr=dataclasses.replace(pcr_only.pcr, sha256="0" * 64))
    assert run_cohort(cohort, out, retrained, predict=latent_oracle_row).predicted == 3
    assert run_cohort(cohort, out, retrained, predict=latent_oracle_row).predicted == 0
    assert run_cohort(cohort, out, retrained, predict=latent_oracle_row, force=True).predicted == 3


def test_real_case_without_slide_is_partial(cohort, tmp_path):
    """predict_case_row with both demo models: HARM3-Fusion runs without the slide, CrossFusion cannot."""
    manifest = cohort / "SYN-0001" / "case.yaml"
    manifest.write_text(manifest.read_text().replace("slide: slide/biopsy.tiff", "slide: null"))
    (cohort / "one.csv").write_text("case_id,manifest\nSYN-0001,SYN-0001/case.yaml\n")
    models = CohortModels(pcr=model_ref(models_dir() / "harm3-demo"), survival=model_ref(models_dir() / "crossfusion-demo"))
    run = run_cohort(cohort / "one.csv", tmp_path / "p.csv", models, predict=predict_case_row, device="cpu")
    row = run.rows[0]
    assert row.status == "partial" and row.missing_inputs == ("slide",)
    assert 0 <= row.pcr_probability <= 1 and row.risk is None
    assert row.reason.startswith("survival: ") and "needs the biopsy slide" in row.reason
    # a partial case is finished: a rerun keeps it
    assert run_cohort(cohort / "one.csv", tmp_path / "p.csv", models, device="cpu").reused == 1


def test_no_model_at_all_is_an_error():
    with pytest.raises(Harm3Error, match="no model to run"):
        CohortModels()
