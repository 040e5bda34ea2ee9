"""The case panel's "Align volumes": a phantom whose post-treatment session moved is registered in a
worker, the transforms land in its manifest, the case opens again registered, and T1-pre can be
laid over the other panels to judge it."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from napari_harm3._qt.app import preload_torch

preload_torch()
pytestmark = pytest.mark.gui


def test_align_volumes_from_the_case_panel(make_napari_viewer, qtbot, tmp_path):
    from napari_harm3._qt.case_panel import CasePanel
    from napari_harm3.core.io.case import load_case
    from napari_harm3.core.synth.cohort import make_case

    case = make_case(tmp_path / "MOVED", seed=5, case_id="MOVED", motion=True)
    viewer = make_napari_viewer(show=True)
    panel = CasePanel(viewer)
    try:
        with qtbot.waitSignal(panel.case_loaded, timeout=120_000):
            panel.open_case(case.manifest)
        assert not panel.session.opened.volumes.transforms
        box = panel.align_box
        with qtbot.waitSignals([box.aligned, panel.case_loaded], timeout=300_000, order="strict") as both:
            box.align_button.click()
        alignment = both.all_signals_and_args[0].args[0]
        assert alignment.ok, alignment.line()
        assert set(load_case(case.manifest).transforms) == {"t1_post", "t2_pre", "t2_post"}
        volumes = panel.session.opened.volumes
        assert all(volumes.registered(s) for s in ("t1_post", "t2_pre", "t2_post"))
        # the recovered post-session motion is the phantom's own: points of T1-pre land within 2 mm
        truth = np.asarray(load_case(case.manifest).synthetic["motion"]["t1_pre_to_post_zyx"], float)
        ref = volumes.volumes["t1_pre"]
        low, high = ref.world_bounds()
        points = low + (high - low) * np.random.default_rng(0).uniform(0.25, 0.75, (50, 3))
        expected = points @ truth[:3, :3].T + truth[:3, 3]
        assert np.linalg.norm(volumes.transforms["t1_post"].apply(points) - expected, axis=1).max() < 2.0
        assert "Registered onto T1-pre" in box.status.text()
        box.compare.setChecked(True)
        assert len(box._compare_layers) == 3
        box.compare.setChecked(False)
        assert not box._compare_layers
    finally:
        panel.close_viewers()
        gc.collect()
