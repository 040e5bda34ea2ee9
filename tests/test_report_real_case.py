"""A report for a real case (TCIA STS_001 MRI + a TCGA H&E slide): PDF pages, JSON, de-identification.

The survival section and the slide attention come from a real (tiny, untrained) CrossFusion
forward pass over bags of patch features at the slide's real patch coordinates; the pCR
numbers and Grad-CAM map are given as inputs (the report only lays them out).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import numpy as np
import pytest

from conftest import real_file

pytest.importorskip("pypdfium2")


def _tissue_coords(slide, patch_size: int) -> np.ndarray:
    """Level-0 (x, y) of the patches of a grid whose thumbnail pixels are not background."""
    from napari_harm3.core.report.figures import slide_thumbnail

    thumbnail, downsample = slide_thumbnail(slide, max_side=256)
    width, height = slide.level_dimensions[0]
    coords = []
    for y in range(0, height - patch_size + 1, patch_size):
        for x in range(0, width - patch_size + 1, patch_size):
            r0, c0 = int(y / downsample), int(x / downsample)
            side = max(1, int(patch_size / downsample))
            if thumbnail[r0:r0 + side, c0:c0 + side].mean() < 215:
                coords.append((x, y))
    return np.asarray(coords, dtype=np.int64)


def _crossfusion_result(slide):
    """A SurvivalPrediction from a real (tiny, untrained) CrossFusion forward pass over bags at
    the slide's real patch coordinates, through the package's own attention scores."""
    import torch

    from napari_harm3.core.explain.crossfusion_attention import explain_slide
    from napari_harm3.core.models.crossfusion import create_model
    from napari_harm3.core.predict.survival import ATTENTION_LABELS, ATTENTION_MAPS, SurvivalPrediction
    from napari_harm3.core.survival.bins import survival_curve

    torch.manual_seed(0)
    model = create_model("crossfusion_tiny", backbone_dim=16)
    sizes = {5: 1024, 10: 512, 20: 256}
    coords = {mag: _tissue_coords(slide, size) for mag, size in sizes.items()}
    generator = torch.Generator().manual_seed(1)
    bags = {mag: torch.randn(len(c), 16, generator=generator) for mag, c in coords.items()}
    with torch.no_grad():
        out = model(bags[5][None], bags[10][None], bags[20][None])
    maps = explain_slide([model], bags[5], bags[10], bags[20], coords, sizes)
    attention = {key: dataclasses.replace(maps[name], key=key, label=ATTENTION_LABELS[key])
                 for key, name in ATTENTION_MAPS.items() if key != "final"}
    survival = out.survival[0].numpy()
    months, curve = survival_curve(survival, (12.0, 24.0, 36.0))
    risk = float(out.risk[0])
    return SurvivalPrediction(
        case_id="STS_001", model="crossfusion-tiny (untrained)", risk=risk, risk_spread=0.0, fold_risks=(risk,),
        survival=survival, cuts_months=(12.0, 24.0, 36.0), months=months, survival_curve=curve,
        survival_low=curve, survival_high=curve, t_max_months=None, risk_threshold=None, risk_group=None,
        missing_inputs=(), attention=attention, n_patches={m: len(c) for m, c in coords.items()})


@pytest.fixture(scope="module")
def real_report(shared_data):
    from napari_harm3.core.explain.gradcam import VolumeMap
    from napari_harm3.core.explain.heatmap import paint_heatmap
    from napari_harm3.core.io.masks import read_mask
    from napari_harm3.core.io.mri import read_volume
    from napari_harm3.core.io.wsi import open_slide
    from napari_harm3.core.predict.pcr import PcrPrediction
    from napari_harm3.core.report.build import build_report

    t1 = read_volume(real_file(shared_data, "mri/sts001_nifti/t1.nii.gz"))
    mask = read_mask(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz"))
    t2 = read_volume(real_file(shared_data, "mri/sts001_dicom/T2"))
    slide_path = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    slide = open_slide(slide_path)
    centre = np.argwhere(mask.data > 0).mean(axis=0)
    grid = np.indices(t1.shape)
    gradcam = np.exp(-sum((g - c) ** 2 / s for g, c, s in zip(grid, centre, (20.0, 300.0, 300.0))))
    pcr = PcrPrediction(case_id="STS_001", model="harm3 (test inputs)", probability=0.62, spread=0.047,
                        fold_probabilities=(0.55, 0.6, 0.62, 0.66, 0.67), missing_inputs=("t1_post", "t2_post"),
                        gradcam={"t1_pre": VolumeMap("t1_pre", gradcam.astype(np.float32), t1.affine)},
                        slide_attention=None, gradcam_method="hirescam, evidence both")
    survival = _crossfusion_result(slide)
    heatmaps = {key: paint_heatmap(scores, slide.dimensions) for key, scores in survival.attention.items()}
    report = build_report("STS_001", {"t1_pre": t1, "t2_pre": t2}, {"t1_pre": mask}, slide_path=slide_path,
                          slide=slide, pcr=pcr, survival=survival, heatmaps=heatmaps, patch_scores=survival.attention,
                          notes=("Survival model: tiny untrained CrossFusion (test)",),
                          created=datetime(2024, 5, 17, 9, 30, tzinfo=timezone.utc))
    return report


def _page_images(path):
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        pages = [np.asarray(document[i].render(scale=0.6).to_pil().convert("L")) for i in range(len(document))]
        texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    finally:
        document.close()
    return pages, texts


def test_case_summary_reads_patient_identity_from_dicom(real_report):
    case = real_report.case
    assert case.patient_name == "STS_001" and case.patient_id == "STS_001"
    assert ("t2_pre", "2000-09-03") in case.study_dates
    assert case.missing_inputs == ("t1_post", "t2_post")


def test_key_slice_is_the_largest_tumour_cross_section(real_report, shared_data):
    from napari_harm3.core.io.mri import read_volume

    mask = read_volume(real_file(shared_data, "mri/sts001_nifti/t1_tumour_mask.nii.gz")).data > 0
    t1 = real_report.mri_figures[0]
    assert t1.sequence == "T1-pre" and t1.slice_reason == "largest tumour cross-section"
    assert t1.slice_index == int(np.argmax(mask.sum(axis=(1, 2))))
    assert np.array_equal(t1.mask, mask[t1.slice_index])
    assert real_report.mri_figures[1].slice_reason == "volume centre"  # T2: no mask, no Grad-CAM


def test_pdf_has_four_non_blank_pages_with_the_numbers(real_report, tmp_path):
    from napari_harm3.core.report.render_pdf import write_report_pdf

    path = write_report_pdf(real_report, tmp_path / "report.pdf")
    pages, texts = _page_images(path)
    assert len(pages) == 4
    for page in pages:
        assert page.std() > 5, "page looks blank"
        assert (page < 128).mean() > 0.002, "page has almost no ink"
    # the figure pages carry real pictures: MRI and slide pages are far darker than text pages
    assert (pages[1] < 100).mean() > 0.05 and (pages[2] < 200).mean() > 0.05
    flat = [t.replace("\r", "").replace("\n", " ") for t in texts]
    for text in flat:
        assert "RESEARCH USE ONLY" in text.upper() and "NOT FOR DIAGNOSTIC USE" in text.upper()
    assert "0.620 \u00b1 0.047" in flat[0] and "0.550, 0.600, 0.620, 0.660, 0.670" in flat[0]
    assert f"{real_report.survival.risk:.3f}" in flat[0]
    for entry in real_report.inputs:
        assert entry.sha256 in flat[3]
    assert "2024-05-17" in flat[3]


def test_json_has_the_report_object_numbers(real_report, tmp_path):
    from napari_harm3.core.report.render_json import write_report_json

    path = write_report_json(real_report, tmp_path / "report.json")
    data = json.loads(path.read_text())
    assert set(data) == {"schema", "research_use_notice", "deidentified", "created", "software_version", "case",
                         "pcr", "survival", "models", "inputs", "notes", "tumour_response", "figures"}
    assert data["pcr"]["probability"] == real_report.pcr.probability
    assert data["pcr"]["fold_probabilities"] == list(real_report.pcr.fold_probabilities)
    assert data["pcr"]["gradcam_method"] == "hirescam, evidence both"
    assert data["survival"]["risk"] == real_report.survival.risk
    assert data["survival"]["survival"] == list(real_report.survival.survival)
    assert data["survival"]["times_months"] == [0.0, 12.0, 24.0, 36.0]
    assert [i["sha256"] for i in data["inputs"]] == [i.sha256 for i in real_report.inputs]
    assert data["created"] == "2024-05-17T09:30:00+00:00"
    mri = data["figures"]["mri"][0]
    assert mri["slice_index"] == real_report.mri_figures[0].slice_index
    assert mri["image"]["shape"] == list(real_report.mri_figures[0].image.shape)
    assert max(mri["image"]["preview_shape"]) <= 64
    slide = data["figures"]["slide"]
    labels = {"CrossFusion 5x attention", "CrossFusion 10x attention", "CrossFusion 20x attention"}
    assert set(slide["heatmaps"]) == labels
    for label in labels:  # every map covers the tissue it scored, on the thumbnail's grid
        assert slide["heatmaps"][label]["tissue_coverage"] >= 0.8, (label, slide["heatmaps"][label]["tissue_coverage"])
    top = slide["top_patches"]["CrossFusion 20x attention"]
    attention = real_report.slide_figure.top_patches["CrossFusion 20x attention"]
    assert [t["score"] for t in top] == [t.score for t in attention]
    assert top[0]["score"] == max(t["score"] for t in top)
    assert path.stat().st_size < 1_000_000


def test_deidentified_report_has_no_ids_names_or_dates(real_report, tmp_path):
    from napari_harm3.core.report.deidentify import pseudonym
    from napari_harm3.core.report.render_json import write_report_json
    from napari_harm3.core.report.render_pdf import write_report_pdf

    clean = real_report.deidentified()
    assert clean.case.case_id == pseudonym("STS_001") == real_report.deidentified().case.case_id
    assert clean.case.case_id != pseudonym("STS_001", salt="secret")
    json_text = write_report_json(clean, tmp_path / "clean.json").read_text()
    pdf = write_report_pdf(clean, tmp_path / "clean.pdf")
    _, texts = _page_images(pdf)
    raw_pdf = pdf.read_bytes()
    for text in [json_text, " ".join(texts)]:
        assert "STS_001" not in text and "sts_001" not in text.lower()
        assert "2000-09-03" not in text and "20000903" not in text
        assert "2024-05-17" not in text
        assert "/work/" not in text and str(real_report.inputs[0].path) not in text
        assert clean.case.case_id in text
    assert b"STS_001" not in raw_pdf and b"D:2024" not in raw_pdf  # nor in the PDF metadata
    assert [i.sha256 for i in clean.inputs] == [i.sha256 for i in real_report.inputs]
    assert clean.pcr == real_report.pcr and clean.survival == real_report.survival


def test_failure_mid_render_leaves_no_file(real_report, tmp_path, monkeypatch):
    from napari_harm3.core.report import render_pdf

    def broken_page(figure, report):
        raise RuntimeError("disk full while drawing page 3")

    monkeypatch.setattr(render_pdf, "slide_page", broken_page)
    target = tmp_path / "report.pdf"
    with pytest.raises(RuntimeError, match="page 3"):
        render_pdf.write_report_pdf(real_report, target)
    assert list(tmp_path.iterdir()) == []


def test_existing_report_is_not_overwritten_silently(real_report, tmp_path):
    from napari_harm3.core.errors import Harm3Error
    from napari_harm3.core.report.render_json import write_report_json
    from napari_harm3.core.report.render_pdf import write_report_pdf

    for write, name in ((write_report_pdf, "r.pdf"), (write_report_json, "r.json")):
        target = tmp_path / name
        target.write_bytes(b"previous report")
        with pytest.raises(Harm3Error, match="--overwrite"):
            write(real_report, target)
        assert target.read_bytes() == b"previous report"
        write(real_report, target, overwrite=True)
        assert target.read_bytes() != b"previous report"


def _broken_slide_page(figure, report):
    raise RuntimeError("renderer crashed drawing page 3")


def test_a_failed_re_export_leaves_the_previous_pair_untouched(real_report, tmp_path, monkeypatch):
    """overwrite=True over an old report whose new PDF fails mid-render: both old files stay as
    they were (not a new JSON beside the old PDF), no temporary is left, "report written" is not said."""
    from napari_harm3.core.report import render_pdf
    from napari_harm3.core.report.write import write_report_files

    pdf, json_file = write_report_files(real_report, tmp_path / "r.pdf")
    old_pdf, old_json = pdf.read_bytes(), json_file.read_bytes()
    newer = real_report.with_notes("re-exported after a model update")

    monkeypatch.setattr(render_pdf, "slide_page", _broken_slide_page)  # stands in for a crash mid-render
    messages = []
    with pytest.raises(RuntimeError, match="page 3"):
        write_report_files(newer, pdf, overwrite=True, progress=lambda f, m: messages.append(m))
    assert "report page 3/4" in messages and "report written" not in messages  # it really got to page 3
    assert pdf.read_bytes() == old_pdf and json_file.read_bytes() == old_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.pdf"]

    monkeypatch.undo()  # the renderer fixed: the same re-export replaces both
    write_report_files(newer, pdf, overwrite=True)
    assert pdf.read_bytes() != old_pdf and json_file.read_bytes() != old_json
    assert "re-exported after a model update" in json_file.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.pdf"]


def test_a_refused_pdf_rename_leaves_the_previous_json(real_report, tmp_path):
    """A real failure at the PDF's last step (its name is taken by a folder, so the rename is
    refused by the OS after both files were rendered): the old JSON is not replaced."""
    from napari_harm3.core.report.write import write_report_files

    json_file = tmp_path / "r.json"
    json_file.write_bytes(b'{"previous": "report"}\n')
    taken = tmp_path / "r.pdf"
    taken.mkdir()
    (taken / "kept.txt").write_text("not a report")
    with pytest.raises(OSError):
        write_report_files(real_report, taken, overwrite=True)
    assert json_file.read_bytes() == b'{"previous": "report"}\n'
    assert taken.is_dir() and (taken / "kept.txt").read_text() == "not a report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.pdf"]


def test_without_overwrite_a_pair_is_refused_whole_and_a_failure_leaves_nothing(real_report, tmp_path, monkeypatch):
    from napari_harm3.core.errors import Harm3Error
    from napari_harm3.core.report import render_pdf
    from napari_harm3.core.report.write import write_report_files

    old = tmp_path / "old"
    old.mkdir()
    (old / "r.pdf").write_bytes(b"previous pdf")
    (old / "r.json").write_bytes(b"previous json")
    with pytest.raises(Harm3Error, match=r"r\.pdf, .*r\.json exists.*--overwrite"):
        write_report_files(real_report, old / "r.pdf")
    assert (old / "r.pdf").read_bytes() == b"previous pdf" and (old / "r.json").read_bytes() == b"previous json"
    assert sorted(p.name for p in old.iterdir()) == ["r.json", "r.pdf"]

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.setattr(render_pdf, "slide_page", _broken_slide_page)
    with pytest.raises(RuntimeError, match="page 3"):
        write_report_files(real_report, fresh / "r.pdf")
    assert list(fresh.iterdir()) == []  # never a JSON without its PDF, nor a temporary


def test_the_viewers_report_process_writes_the_same_pair_in_another_process(real_report, tmp_path):
    """Export in the viewer renders in a child process (the window's GIL stays free): the same
    JSON text and the same rendered pages as in this process; refusals come back as they are."""
    import os

    from test_qt_workflow import rendered_pages

    from napari_harm3.core.errors import Harm3Error
    from napari_harm3.core.report.write import write_report_files
    from napari_harm3.core.report.writer_process import ReportWriterProcess

    here = write_report_files(real_report, tmp_path / "here.pdf")
    writer = ReportWriterProcess()
    try:
        assert writer.child_pid() != os.getpid()
        progress = []
        there = writer.write(real_report, tmp_path / "there.pdf", progress=lambda f, m: progress.append((f, m)))
        assert there == (tmp_path / "there.pdf", tmp_path / "there.json")
        assert there[1].read_text(encoding="utf-8") == here[1].read_text(encoding="utf-8")
        ours, theirs = rendered_pages(here[0]), rendered_pages(there[0])
        assert len(ours) == len(theirs) >= 3 and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        assert progress[0][0] == 0.0 and progress[-1] == (1.0, "report written")
        stamp = there[0].stat().st_mtime_ns
        with pytest.raises(Harm3Error, match="exists"):  # raised in the child, the same error here
            writer.write(real_report, tmp_path / "there.pdf")
        assert there[0].stat().st_mtime_ns == stamp
        assert sorted(p.name for p in tmp_path.iterdir()) == ["here.json", "here.pdf", "there.json", "there.pdf"]

        # the child killed (out of memory, say): one readable error, nothing written; the next
        # export gets a new child
        import signal

        os.kill(writer.child_pid(), signal.SIGKILL)
        with pytest.raises(Harm3Error, match="stopped before it finished"):
            writer.write(real_report, tmp_path / "lost.pdf")
        assert not list(tmp_path.glob("lost*"))
        assert writer.write(real_report, tmp_path / "again.pdf")[0].is_file()
    finally:
        writer.close()
