"""The workflow tab end to end under Xvfb: run both models in workers, overlays aligned with their
images, results text and curve, patch view, report export (PDF pages rendered, not blank);
cancelling leaves the viewer usable; a missing modality is stated in the results and the report."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
import yaml


# torch/torchvision/grad-cam loaded at collection, before any viewer: loaded after napari's
# OpenGL context exists they crash the process here (see app.preload_torch)
from napari_harm3._qt.app import preload_torch  # noqa: E402

preload_torch()

pytestmark = [pytest.mark.gui, pytest.mark.slow]



@pytest.fixture
def make_workflow(make_napari_viewer, zoo):
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3._qt.workflow_panel import install_workflow

    made = []

    def factory():
        viewer = make_napari_viewer(show=True)
        panel = CasePanel(viewer)
        workflow = install_workflow(panel, zoo=zoo)
        viewer.window.add_dock_widget(panel, name="HARM3 case", area="right")
        made.append((panel, workflow))
        return viewer, panel, workflow

    yield factory
    for panel, workflow in made:
        workflow.close()
        panel.close_viewers()
    made.clear()
    gc.collect()  # the panels' reference cycles (Qt parents, results) may sit in the oldest generation


def click(qtbot, button):
    from qtpy.QtCore import Qt

    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_case(qtbot, panel, manifest):
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
        panel.open_case(manifest)


def press(qtbot, workflow, analysis, timeout=600_000):
    with qtbot.waitSignal(workflow.run_finished, timeout=timeout) as blocker:
        click(qtbot, workflow.buttons[analysis])
    assert blocker.args[0] == analysis
    return blocker.args[1]


def rendered_pages(pdf_path) -> list:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(pdf_path))
    try:
        return [np.asarray(pdf[i].render(scale=0.6).to_pil().convert("RGB")) for i in range(len(pdf))]
    finally:
        pdf.close()


def pdf_text(pdf_path) -> str:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(pdf_path))
    try:
        return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


def corners(layer) -> tuple:
    """World (top-left, bottom-right) of a 2D image layer's pixel edges (axis-aligned scale/translate)."""
    scale, translate = np.asarray(layer.scale[-2:]), np.asarray(layer.translate[-2:])
    shape = np.asarray((layer.data[0] if layer.multiscale else layer.data).shape[:2])
    return translate - scale / 2, translate + (shape - 0.5) * scale


def test_demo_patient_both_models_overlays_results_and_report(make_workflow, qtbot, tmp_path):
    from qtpy.QtWidgets import QApplication

    from napari_harm3.core.synth.demo import demo_case

    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, demo_case())
    assert panel.indexOf(workflow) >= 0 and panel.tabText(panel.indexOf(workflow)) == "Models"
    panel.setCurrentWidget(workflow)  # the user opens the Models tab

    # pCR: Grad-CAM in each MRI panel on exactly its volume's affine and grid
    pcr = press(qtbot, workflow, "pcr")
    assert 0.0 <= pcr.probability <= 1.0 and len(pcr.fold_probabilities) >= 2
    cams = {layer.metadata["harm3_sequence"]: layer for layer in workflow.overlays.layers["pcr"]
            if layer.metadata.get("harm3_kind") == "gradcam"}
    assert set(cams) == {"t1_pre", "t1_post", "t2_pre", "t2_post"}
    for seq, layer in cams.items():
        volume = panel.grid.panels[seq].volume_layer
        assert layer in panel.grid.layers(seq)
        np.testing.assert_allclose(layer.affine.affine_matrix, volume.affine.affine_matrix)
        assert layer.data.shape == volume.data.shape and 0.0 <= layer.data.min() and layer.data.max() <= 1.0
        assert layer.metadata["harm3_case"] == panel.session.ref  # every overlay says whose it is

    # survival: attention per scale over the slide, inside its extent and on the right patches
    survival = press(qtbot, workflow, "survival")
    slide = panel.slide_view.layer
    heat = {layer.metadata["harm3_map"]: layer for layer in workflow.overlays.layers["survival"]}
    assert set(heat) == {"5x", "10x", "20x", "final"} and all(layer in viewer.layers for layer in heat.values())
    s0, s1 = corners(slide)
    mpp = float(slide.scale[-1])
    for key, layer in heat.items():
        h0, h1 = corners(layer)
        assert np.all(h0 >= s0 - 1e-6 - layer.scale[-1]) and np.all(h1 <= s1 + layer.scale[-1]), (key, h0, h1, s0, s1)
        scores = survival.attention[key]
        best = int(np.argmax(scores.scores))
        x, y = scores.coords[best]
        size = scores.footprint
        for dx, dy in ((0.1, 0.1), (0.5, 0.5), (0.9, 0.9)):  # the whole footprint carries the patch's rank
            index = np.floor(layer.world_to_data(((y + dy * size) * mpp, (x + dx * size) * mpp)) + 0.5).astype(int)
            assert layer.data[tuple(index)] == pytest.approx(scores.ranks()[best], abs=1e-6), (key, dx)
        assert np.isnan(layer.data).any()  # glass is empty, not zero
        # the viewer's layer and the report's map are the same raster
        assert layer.data is panel.session.heatmap(key).data
    assert [heat[k].visible for k in ("5x", "10x", "20x", "final")] == [False, False, False, True]
    # the slide stays the chosen layer; napari's controls widgets are made for no map until one is picked
    controls = viewer.window._qt_viewer.controls
    assert viewer.layers.selection.active is slide and not any(layer in controls.widgets for layer in heat.values())

    # one control group styles every overlay: below the threshold is transparent
    workflow.overlay_controls.threshold.setValue(40)
    workflow.overlay_controls.opacity.setValue(30)
    workflow.overlay_controls.colormap.setCurrentText("viridis")
    qtbot.waitUntil(lambda: not workflow.overlays.restyling(), timeout=10_000)  # one layer per turn
    for layer in workflow.overlay_layers():
        assert layer.opacity == pytest.approx(0.3) and layer.colormap.name.startswith("viridis")
        rgba = layer.colormap.map(np.array([0.2, 0.39, 0.41, 0.9]))
        assert rgba[0, 3] == 0 and rgba[1, 3] == 0 and rgba[2, 3] > 0.99 and rgba[3, 3] > 0.99

    # results: copyable text with every number, the curve drawn
    text = workflow.results_view.text.toPlainText()
    assert f"p(pCR) = {pcr.probability:.3f} ± {pcr.spread:.3f}" in text and f"verdict: {pcr.verdict()}" in text
    assert f"risk = {survival.risk:.3f}" in text and "risk group:" in text and "S(12 months)" in text
    assert workflow.results_view.text.isReadOnly()
    click(qtbot, workflow.results_view.copy_button)
    assert QApplication.clipboard().text() == text
    from test_qt_survival_plot import blue_pixels, shown_rgba

    from napari_harm3._qt.results_view import PLOT_HEIGHT

    plot = workflow.results_view.plot  # drawn in a thread of its own, then shown
    qtbot.waitUntil(lambda: plot.up_to_date, timeout=20_000)
    picture = shown_rgba(plot)
    assert plot.isVisible() and picture.shape[0] >= PLOT_HEIGHT
    assert blue_pixels(picture).sum() > 100  # the curve (tab:blue), not a blank picture

    # a click on the heatmap: that patch at level 0; the gallery holds the top patches
    final = survival.attention["final"]
    best = int(np.argmax(final.scores))
    x, y = final.coords[best]
    size = final.footprint
    assert workflow.show_patch_at(((y + size / 2) * mpp, (x + size / 2) * mpp)) == ("final", best)
    assert workflow.patch_view.rgb.shape == (size, size, 3) and workflow.patch_view.rgb.std() > 5
    assert workflow.gallery.buttons and set(workflow.gallery_patches) == {"5x", "10x", "20x", "final"}
    click(qtbot, workflow.gallery.buttons[0])
    assert f"score {workflow.gallery_patches[workflow.gallery.scale.currentText()][0][3]:.3f}" in \
        workflow.patch_view.caption.text()

    # second press: cached features (not recomputed), same ensemble, same answer
    pt = survival.features_root / "texture_stats" / "x20" / "pt_files" / f"{survival.case_id}.pt"
    stamp = pt.stat().st_mtime_ns
    again = press(qtbot, workflow, "survival")
    assert pt.stat().st_mtime_ns == stamp and again.risk == pytest.approx(survival.risk, abs=1e-6)
    assert len(workflow.overlays.layers["survival"]) == 4  # replaced, not stacked

    # report from the held results: PDF + JSON; pages rendered are not blank; no silent overwrite
    out = tmp_path / "DEMO report.pdf"
    with qtbot.waitSignal(workflow.report_written, timeout=300_000) as blocker:
        workflow.export_report(out)
    pdf, json_path = blocker.args[0]
    assert pdf == out and json_path == out.with_suffix(".json")
    # said in the Models tab and napari's status bar, not in a pop-up (each froze the window ~0.15 s)
    assert workflow.status.text().startswith(f"Report written: {pdf}") and str(pdf) in workflow.viewer.status
    data = json.loads(json_path.read_text())
    assert data["pcr"]["probability"] == pytest.approx(pcr.probability)
    assert data["pcr"]["gradcam_method"] == "hirescam, evidence both"   # same conversion as the command line
    assert data["survival"]["risk"] == pytest.approx(survival.risk)
    pages = rendered_pages(pdf)
    assert len(pages) >= 3
    for number, page in enumerate(pages, 1):
        ink = (page.min(axis=2) < 200).mean()
        assert page.std() > 10 and ink > 0.01, (number, page.std(), ink)
    stamp = pdf.stat().st_mtime_ns
    with qtbot.waitSignal(workflow.report_failed, timeout=10_000) as refused:
        assert workflow.export_report(out) is None
    assert "exists" in refused.args[0] and pdf.stat().st_mtime_ns == stamp


def test_cancel_leaves_the_viewer_usable(make_workflow, qtbot, small_cohort):
    from napari_harm3.core.errors import Cancelled

    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, small_cohort / "SYN-0003" / "case.yaml")
    features = small_cohort / "SYN-0003" / "features"
    click(qtbot, workflow.buttons["survival"])
    assert not workflow.buttons["pcr"].isEnabled() and workflow.cancel_button.isEnabled()
    # cancel once the work reports progress (slide features being computed)
    qtbot.waitUntil(lambda: workflow.progress.value() > 0 or "patches" in workflow.status.text(), timeout=120_000)
    with qtbot.waitSignal(workflow.run_failed, timeout=120_000) as blocker:
        click(qtbot, workflow.cancel_button)
    assert blocker.args == ["survival", "cancelled"]
    assert isinstance(workflow.last_error, Cancelled)
    assert all(b.isEnabled() for b in workflow.buttons.values()) and not workflow.cancel_button.isEnabled()
    assert workflow.worker is None and "survival" not in workflow.results and not workflow.overlays.layers["survival"]
    assert viewer.layers and panel.slide_view.layer in viewer.layers  # the viewer still shows the case
    # a second run completes (features resumed or recomputed), and shows its overlays
    result = press(qtbot, workflow, "survival")
    assert result.case_id == "SYN-0003" and len(workflow.overlays.layers["survival"]) == 4
    assert (features / "texture_stats" / "x20" / "pt_files" / "SYN-0003.pt").is_file()


def test_missing_t2_post_is_stated_in_results_and_report(make_workflow, qtbot, small_cohort, tmp_path):
    source = small_cohort / "SYN-0004"
    manifest = yaml.safe_load((source / "case.yaml").read_text())
    manifest["case_id"] = "SYN-0004-NO-T2POST"
    del manifest["mri"]["t2_post"], manifest["masks"]["t2_post"]
    manifest["mri"] = {k: str(source / v) for k, v in manifest["mri"].items()}
    manifest["masks"] = {k: str(source / v) for k, v in manifest["masks"].items()}
    manifest["slide"] = str(source / manifest["slide"])
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "case.yaml").write_text(yaml.safe_dump(manifest))

    viewer, panel, workflow = make_workflow()
    open_case(qtbot, panel, tmp_path / "case" / "case.yaml")
    assert panel.grid.panels["t2_post"].volume_layer is None
    pcr = press(qtbot, workflow, "pcr")
    assert "t2_post" in pcr.missing_inputs
    text = workflow.results_view.text.toPlainText()
    assert "missing inputs: " in text and "t2_post" in text.split("missing inputs: ", 1)[1].splitlines()[0]
    assert "t2_post" in workflow.results_view.summary.text()
    assert {l.metadata["harm3_sequence"] for l in workflow.overlays.layers["pcr"] if "harm3_sequence" in l.metadata} == \
        {"t1_pre", "t1_post", "t2_pre"}

    with qtbot.waitSignal(workflow.report_written, timeout=300_000) as blocker:
        workflow.export_report(tmp_path / "report.pdf")
    pdf, json_path = blocker.args[0]
    data = json.loads(json_path.read_text())
    assert "t2_post" in data["case"]["missing_inputs"] and "t2_post" in data["pcr"]["missing_inputs"]
    assert any("Survival analysis not run" in note for note in data["notes"])
    assert "t2_post" in pdf_text(pdf).replace("\r", "")
    assert all(page.std() > 10 for page in rendered_pages(pdf))
