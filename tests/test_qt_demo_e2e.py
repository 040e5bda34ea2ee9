"""``harm3 demo --headless`` with the model steps: both models run on the demo patient, overlays are
in the screenshots, the report (PDF + JSON) is written; without models the demo says so and
still writes its screenshots. The real command, in a subprocess on pytest-xvfb's display."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _workflow_models import model_zoo

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def run_demo(out, models) -> subprocess.CompletedProcess:
    from napari_harm3.core.synth.demo import demo_case

    demo_case()  # the cached demo patient (generated once)
    assert os.environ.get("DISPLAY"), "pytest-xvfb provides the display"
    env = {**os.environ, "QT_API": "pyqt6", "HARM3_MODELS": str(models)}
    result = subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", "demo", "--headless", "--out", str(out)],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-4000:]
    return result


def image(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3] * 255.0


#: coloured fraction of the MRI grid screenshot's lit pixels that only a Grad-CAM overlay takes it above
NO_OVERLAY_COLOURED = 0.012


def coloured(rgb: np.ndarray) -> float:
    """Fraction of the picture's lit pixels that are clearly coloured (grey MRI has R = G = B),
    the panels' own canvas text left out (cyan edge letters, yellow titles): a fraction of the
    anatomy, not of the whole picture, which depends on how wide the panels are."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    text = ((r < 90) & (g > 150) & (b > 150)) | ((r > 150) & (g > 150) & (b < 90))
    lit = (rgb.max(axis=2) > 60) & ~text
    chroma = rgb.max(axis=2) - rgb.min(axis=2) > 60
    return float((chroma & lit).sum() / max(1, lit.sum()))


def test_demo_runs_both_models_and_writes_report_and_screenshots(tmp_path_factory, tmp_path, qapp):
    zoo = model_zoo(tmp_path_factory)
    out = tmp_path / "demo out"
    result = run_demo(out, zoo)
    assert "demo: running pCR" in result.stdout and "demo: running Survival" in result.stdout, result.stdout
    assert "not run" not in result.stdout, result.stdout
    pdf, json_path = out / "DEMO-0001_report.pdf", out / "DEMO-0001_report.json"
    for path in (pdf, json_path, out / "mri_grid.png", out / "slide_viewer.png", out / "window.png"):
        assert f"wrote {path}" in result.stdout and path.is_file()
    data = json.loads(json_path.read_text())
    assert data["case"]["case_id"] == "DEMO-0001" and data["pcr"] and data["survival"]
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000
    # Grad-CAM (inferno, additive) colours the grey MRI panels
    # Grad-CAM drawn on the grid: measured 0.024 of the lit pixels coloured, against 0.007 for the
    # tumour masks alone without models (next test)
    assert coloured(image(out / "mri_grid.png")) > NO_OVERLAY_COLOURED
    assert image(out / "slide_viewer.png").std() > 15


def test_demo_without_models_says_so_and_still_writes_screenshots(tmp_path):
    empty = tmp_path / "empty zoo"
    empty.mkdir()
    out = tmp_path / "out"
    result = run_demo(out, empty)
    assert "no pCR (HARM3-Fusion) model in the model zoo" in result.stdout
    assert "no Survival (CrossFusion) model in the model zoo" in result.stdout
    for name in ("mri_grid.png", "slide_viewer.png", "window.png"):
        assert (out / name).is_file() and image(out / name).std() > 15
    assert coloured(image(out / "mri_grid.png")) < NO_OVERLAY_COLOURED  # tumour outlines only
    assert not list(out.glob("*.pdf"))  # nothing to report: no report pretends otherwise
