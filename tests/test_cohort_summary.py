"""The cohort summary files: summary.csv, summary_metrics.csv, summary.pdf; the plots."""

from __future__ import annotations

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from napari_harm3.core.cohort.rows import CaseRow  # noqa: E402
from napari_harm3.core.cohort.summary import (CASE_COLUMNS, METRIC_COLUMNS, cohort_validation,  # noqa: E402
                                              write_cohort_summary)
from napari_harm3.core.cohort.summary_plots import plot_calibration_bins, plot_km_groups, plot_roc_interval  # noqa: E402
from napari_harm3.core.cohort.validation import validate_pcr, validate_survival  # noqa: E402
from napari_harm3.core.errors import Harm3Error  # noqa: E402
from napari_harm3.core.io.case import CaseLabels  # noqa: E402

RESAMPLES = 200


@pytest.fixture(scope="module")
def cohort_rows():
    """40 predicted cases with labels, one partial, two skipped; labels of every case."""
    rng = np.random.default_rng(7)
    n = 40
    y = (rng.random(n) < 0.5).astype(int)
    p = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, n), 0.01, 0.99)
    risk = rng.normal(-2.5, 0.6, n)
    event_time = rng.exponential(30 * np.exp(-1.2 * (risk + 2.5)))
    follow = np.minimum(event_time, 60.0)
    event = (event_time <= 60.0).astype(int)
    threshold = -2.5
    rows, labels = [], {}
    for k in range(n):
        case = f"C{k:03d}"
        rows.append(CaseRow(case, "ok", pcr_probability=float(p[k]), pcr_spread=0.05, pcr_folds=5, risk=float(risk[k]),
                            risk_spread=0.1, survival_folds=5, risk_threshold=threshold,
                            risk_group="high" if risk[k] >= threshold else "low", pcr_model="harm3-demo",
                            pcr_model_sha256="a" * 64, survival_model="crossfusion-demo", survival_model_sha256="b" * 64))
        labels[case] = CaseLabels(pcr=int(y[k]), survival_months=float(follow[k]), event=int(event[k]))
    rows.append(CaseRow("P040", "partial", reason="survival: no tissue patch at 5x", pcr_probability=0.4,
                        pcr_model="harm3-demo", missing_inputs=("t2_post",)))
    rows.append(CaseRow("S041", "skipped", reason="slide: not found: /data/S041/slide.svs"))
    rows.append(CaseRow("S042", "skipped", reason="mri.t1_pre: cannot be read: /data/S042/t1.nii.gz: truncated"))
    labels.update({"P040": CaseLabels(pcr=1), "S041": CaseLabels(pcr=0, survival_months=3.0, event=1),
                   "S042": CaseLabels()})
    return tuple(rows), labels, (y, p, follow, event, risk, threshold)


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_summary_files_hold_the_cases_and_the_validation(cohort_rows, tmp_path):
    rows, labels, (y, p, follow, event, risk, threshold) = cohort_rows
    paths = write_cohort_summary(rows, labels, tmp_path / "summary", n_resamples=RESAMPLES)
    assert [path.name for path in paths] == ["summary.csv", "summary_metrics.csv", "summary.pdf"]
    cases = _read(paths[0])
    assert tuple(cases[0]) == CASE_COLUMNS and [c["case_id"] for c in cases] == [r.case_id for r in rows]
    assert cases[40]["pcr"] == "1" and cases[40]["pcr_probability"] == "0.4" and cases[40]["missing_inputs"] == "t2_post"
    assert cases[41]["status"] == "skipped" and cases[41]["reason"].startswith("slide: not found")
    assert float(cases[3]["survival_months"]) == follow[3] and cases[42]["pcr"] == ""

    metrics = {(m["analysis"], m["metric"]): m for m in _read(paths[1])}
    assert tuple(_read(paths[1])[0]) == METRIC_COLUMNS
    # the partial case has a label and a probability: it counts for pCR, not for survival
    expected_pcr = validate_pcr(np.r_[y, 1], np.r_[p, 0.4], n_resamples=RESAMPLES)
    auc = metrics[("pcr", "auc")]
    assert float(auc["value"]) == expected_pcr.auc.estimate and float(auc["ci_low"]) == expected_pcr.auc.low
    assert auc["n"] == "41" and "200 bootstrap resamples (seed 0), stratified by pCR" in auc["detail"]
    expected_survival = validate_survival(follow, event, risk, threshold, n_resamples=RESAMPLES)
    assert float(metrics[("survival", "c_index")]["value"]) == expected_survival.cindex.estimate
    assert float(metrics[("survival", "logrank_p")]["value"]) == expected_survival.groups.logrank_p
    assert metrics[("cohort", "cases_skipped")]["value"] == "2" and metrics[("cohort", "cases")]["value"] == "43"

    pdfium = pytest.importorskip("pypdfium2")
    document = pdfium.PdfDocument(str(paths[2]))
    assert len(document) == 4  # first page, pCR, survival, cases not predicted
    text = " ".join(document[k].get_textpage().get_text_range() for k in range(4)).replace("\r\n", " ")
    assert "AUC" in text and "C-index" in text and "log-rank" in text
    assert "S042 [skipped]: mri.t1_pre: cannot be read" in text and "P040 [partial]" in text


def test_existing_summary_is_not_replaced_without_overwrite(cohort_rows, tmp_path):
    rows, labels, _ = cohort_rows
    paths = write_cohort_summary(rows[:12], labels, tmp_path, n_resamples=RESAMPLES)
    before = [path.read_bytes() for path in paths]
    with pytest.raises(Harm3Error, match="summary.csv exists; pass --overwrite"):
        write_cohort_summary(rows, labels, tmp_path, n_resamples=RESAMPLES)
    assert [path.read_bytes() for path in paths] == before
    write_cohort_summary(rows, labels, tmp_path, overwrite=True, n_resamples=RESAMPLES)
    assert len(_read(paths[0])) == len(rows)


def test_a_cohort_without_labels_says_what_was_not_validated(cohort_rows, tmp_path):
    rows, _, _ = cohort_rows
    validation = cohort_validation(rows, {}, n_resamples=RESAMPLES)
    assert validation.pcr is None and validation.survival is None
    assert validation.notes == ("pCR not validated: no case has both a pCR label and a prediction",
                                "survival not validated: no case has a risk, a follow-up time and an event flag")
    paths = write_cohort_summary(rows, {}, tmp_path, n_resamples=RESAMPLES)
    notes = [m["detail"] for m in _read(paths[1]) if m["analysis"] == "note"]
    assert notes == list(validation.notes)


def test_plots_draw_on_the_given_axes(cohort_rows):
    rows, labels, _ = cohort_rows
    validation = cohort_validation(rows, labels, n_resamples=RESAMPLES)
    figure, axes = plt.subplots(1, 3)
    assert plot_roc_interval(validation.pcr.roc, validation.pcr.auc, ax=axes[0]) is axes[0]
    assert plot_calibration_bins(validation.pcr.calibration, validation.pcr.brier, ax=axes[1]) is axes[1]
    assert plot_km_groups(validation.survival.groups, ax=axes[2]) is axes[2]
    assert "AUC" in axes[0].get_legend().get_texts()[1].get_text()
    assert "log-rank p" in axes[2].get_title()
    plt.close(figure)
