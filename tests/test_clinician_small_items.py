"""Small things a clinician meets (issue 15): the verdict names no class where the two thresholds
disagree (results text, report); the device list offers only devices that exist; the top-patch
labels of the report's slide page do not overlap (positions in the drawn figure)."""

from __future__ import annotations

import dataclasses
import itertools

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from napari_harm3.core.device import available_devices
from napari_harm3.core.predict.pcr import PcrPrediction
from napari_harm3.core.report.render_pdf import new_page, slide_page
from napari_harm3.core.session import CaseSession
from napari_harm3.core.session.reporting import pcr_lines
from napari_harm3.core.synth.cohort import make_case


def prediction(probability: float, youden: float | None) -> PcrPrediction:
    return PcrPrediction(case_id="C", model="m", probability=probability, spread=0.01,
                         fold_probabilities=(probability,) * 3, missing_inputs=(), gradcam={},
                         slide_attention=None, youden_threshold=youden)


def test_verdict_names_no_class_where_the_thresholds_disagree():
    between = prediction(0.60, youden=0.68)  # above 0.50, below the training Youden threshold
    assert between.verdict() == "indeterminate (between the thresholds 0.50 and 0.68)"
    assert between.predicted_pcr is None
    text = "\n".join(pcr_lines(between))
    assert "verdict: indeterminate" in text and "pCR likely" not in text and "predicted: pCR" not in text
    assert "training Youden 0.68" in text
    assert prediction(0.75, 0.68).verdict() == "pCR likely" and prediction(0.75, 0.68).predicted_pcr is True
    assert prediction(0.40, 0.68).verdict() == "pCR unlikely" and prediction(0.40, 0.68).predicted_pcr is False
    low = prediction(0.45, youden=0.30)  # the Youden threshold below 0.5: disagreement the other way
    assert low.verdict() == "indeterminate (between the thresholds 0.30 and 0.50)"
    assert prediction(0.55, None).verdict() == "pCR likely"  # one threshold: it decides
    assert dataclasses.replace(between, probability=0.68).verdict() == "pCR likely"  # at a threshold: above


def test_device_list_offers_only_devices_that_exist():
    devices = available_devices()
    choices = [choice for _, choice in devices]
    assert choices[0] == "auto" and choices[-1] == "cpu" and len(set(choices)) == len(choices)
    cuda = [c for c in choices if c.startswith("cuda")]
    assert len(cuda) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    mps = getattr(torch.backends, "mps", None)
    assert ("mps" in choices) == bool(mps is not None and mps.is_available())
    if not torch.cuda.is_available() and "mps" not in choices:  # this machine: CPU only
        assert devices == [("automatic", "auto"), ("CPU", "cpu")]


def _boxes(figure, renderer):
    """Window extents of every top-patch tile's title, position label and image, and of the row labels."""
    tiles = [ax for ax in figure.axes if ax.get_title().startswith("#")]
    boxes = []
    for n, ax in enumerate(tiles):
        boxes += [(f"title {n}", ax.title.get_window_extent(renderer)),
                  (f"position {n}", ax.xaxis.label.get_window_extent(renderer)),
                  (f"image {n}", ax.get_window_extent(renderer))]
    lowest = min(ax.get_window_extent(renderer).y0 for ax in tiles)
    highest = max(ax.title.get_window_extent(renderer).y1 for ax in tiles)
    for n, text in enumerate(figure.texts):
        box = text.get_window_extent(renderer)
        if text.get_text().strip() and box.y0 >= lowest - 1 and box.y1 <= highest + 1:
            boxes.append((f"row label {n}: {text.get_text()[:20]!r}", box))
    return tiles, boxes


def test_top_patch_labels_do_not_overlap_on_the_slide_page(tmp_path):
    case = make_case(tmp_path / "case", seed=5, case_id="LAYOUT")
    session = CaseSession(device="cpu")
    session.open(case.manifest)
    session.predict("survival")
    report = session.report()
    session.close()
    assert len(report.slide_figure.top_patches) >= 2
    figure = new_page(report, 3)
    slide_page(figure, report)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    tiles, boxes = _boxes(figure, canvas.get_renderer())
    assert len(tiles) >= 4
    page = figure.bbox
    for name, box in boxes:
        assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y0 >= page.y0 and box.y1 <= page.y1, name
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
                   if min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 0.5
                   and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 0.5]
    assert not overlapping, overlapping
