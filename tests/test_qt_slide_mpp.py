"""µm/px in the viewer with the real TCGA slide, which records none: the files-one-by-one form's
µm/px field, and on a manifest without it the warning, a Predict that says (in the viewer's words)
where to enter the value, Set µm/px changing the scale bar, and both models running afterwards;
the survival map over the real tissue, thresholded, hides none of it (screenshots)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import real_file
from napari_harm3._qt.app import preload_torch

preload_torch()  # torch before any OpenGL context (see test_qt_workflow.py)

from test_qt_workflow import click, make_workflow, open_case, press  # noqa: E402,F401 (fixture)
from test_session_real_slide_mpp import tcga_case  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def shot(panel) -> np.ndarray:
    return panel.slide_view.screenshot()[..., :3].astype(int)


def same(a, b, tol: int = 12) -> np.ndarray:
    return np.abs(a - b).max(axis=2) <= tol


def check_tissue_visible_under_thresholded_map(panel, workflow, threshold: int = 50) -> None:
    """Screenshots of the slide viewer: where the shown map is below ``threshold`` (or empty) the
    slide's own colours stay, glass stays white; only the cells at or above it are painted."""
    controls, slide = workflow.overlay_controls, panel.slide_view.layer
    final = next(l for l in workflow.overlays.layers["survival"] if l.metadata["harm3_map"] == "final")
    assert final.visible and not any(l.visible for l in workflow.overlays.layers["survival"] if l is not final)
    controls.colormap.setCurrentText("viridis")  # its lowest colour is far from the black canvas
    controls.opacity.setValue(100)
    workflow.overlays.restyle_now()  # the style goes in one layer per turn: all of it, now
    final.visible = False
    slide_only = shot(panel)
    final.visible, slide.visible = True, False
    background = shot(panel)[0, 0]
    painted = {}
    for value in (0, threshold):
        controls.threshold.setValue(value)
        workflow.overlays.restyle_now()
        painted[value] = ~same(shot(panel), background[None, None, :], tol=6)
    slide.visible = True
    controls.opacity.setValue(55)
    workflow.overlays.restyle_now()
    with_map = shot(panel)  # at ``threshold``, the default opacity
    white = slide_only.min(axis=2) >= 215
    tissue = (slide_only.max(axis=2) - slide_only.min(axis=2) > 25) & ~white
    below = painted[0] & ~painted[threshold] & tissue  # tissue under a value below the threshold
    glass = ~painted[0] & white & (slide_only.sum(axis=2) > 0)
    assert below.sum() > 500 and painted[threshold].sum() > 500, (below.sum(), painted[threshold].sum())
    assert same(with_map, slide_only)[below].mean() > 0.98  # the slide's own colours
    assert (with_map[glass].min(axis=1) >= 215).mean() > 0.98  # glass stays white
    assert (~same(with_map, slide_only, tol=30))[painted[threshold] & tissue].mean() > 0.9  # the map shows


def viewer_words(message: str) -> None:
    assert "Case tab" in message, message
    assert "--mpp" not in message and "/features/" not in message and "pass " not in message, message


def test_tcga_slide_mpp_from_the_files_form_and_set_mpp(make_workflow, qtbot, shared_data, tmp_path):
    slide_path = real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")
    viewer, panel, workflow = make_workflow()

    # the files-one-by-one form: its µm/px field gives the slide its scale
    panel.file_edits["slide"].setText(str(slide_path))
    panel.files_mpp.setValue(0.25)
    with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
        click(qtbot, panel.open_files_button)
    assert tuple(panel.slide_view.layer.scale) == pytest.approx((0.25, 0.25))
    assert panel.session.scale.mpp == pytest.approx(0.25) and not panel.mpp_warning.isVisible()
    assert panel.mpp_spin.value() == pytest.approx(0.25)

    # a manifest without slide_mpp: warned, and Predict says where to enter the value
    open_case(qtbot, panel, tcga_case(tmp_path, slide_path))
    slide = panel.slide_view.layer
    assert panel.mpp_warning.isVisible() and tuple(slide.scale) == (1.0, 1.0)
    viewer_words(panel.mpp_warning.text())
    for analysis in ("pcr", "survival"):
        with qtbot.waitSignal(workflow.run_failed, timeout=120_000) as failed:
            click(qtbot, workflow.buttons[analysis])
        viewer_words(failed.args[1])
        viewer_words(workflow.status.text())

    # Set µm/px: the layer is in µm and the scale bar (only it) changes on screen
    before = panel.slide_view.screenshot()
    panel.mpp_spin.setValue(0.25)
    click(qtbot, panel.mpp_apply)
    assert tuple(slide.scale) == pytest.approx((0.25, 0.25)) and str(slide.units[0]) in ("micrometer", "µm", "um")
    assert viewer.canvas.overlays.scale_bar.visible and not panel.mpp_warning.isVisible()
    assert panel.session.scale.mpp == pytest.approx(0.25) and panel.mpp_source.text() == "entered by the user"
    after = panel.slide_view.screenshot()
    changed = np.abs(after[..., :3].astype(int) - before[..., :3].astype(int)).max(axis=2) > 40
    h, w = changed.shape
    assert changed[int(0.8 * h):, int(0.6 * w):].any()  # the scale bar's corner (bottom right)
    assert changed[: int(0.7 * h)].mean() < 0.01  # the slide stays where it was

    # both models now run on the user's value
    survival = press(qtbot, workflow, "survival")
    assert survival.case_ref == panel.session.ref and all(n > 0 for n in survival.n_patches.values())
    check_tissue_visible_under_thresholded_map(panel, workflow)
    pcr = press(qtbot, workflow, "pcr")
    assert pcr.slide_mpp == pytest.approx(0.25) and "slide" not in pcr.missing_inputs
    assert "slide scale: 0.25 µm/px (entered by the user)" in workflow.results_view.text.toPlainText()
