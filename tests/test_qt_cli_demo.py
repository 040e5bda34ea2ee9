"""``harm3 demo --headless``: the real command, in a subprocess on pytest-xvfb's display."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_demo_headless_writes_screenshots_of_both_viewers(tmp_path, qapp):
    from napari_harm3.core.synth.demo import demo_case

    demo_case()  # reuse the cached demo patient (the command would generate it otherwise)
    assert os.environ.get("DISPLAY"), "pytest-xvfb provides the display"
    out = tmp_path / "demo out"
    result = subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", "demo", "--headless", "--out", str(out)],
                            capture_output=True, text=True, timeout=500, env={**os.environ, "QT_API": "pyqt6"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    import matplotlib.image

    for name in ("mri_grid.png", "slide_viewer.png", "window.png"):
        path = out / name
        assert f"wrote {path}" in result.stdout
        image = matplotlib.image.imread(path)[..., :3] * 255.0
        assert image.std() > 15 and image.mean() > 10, (name, image.std(), image.mean())
    grid = matplotlib.image.imread(out / "mri_grid.png")[..., :3] * 255.0
    h, w = grid.shape[:2]
    for r in range(2):
        for c in range(2):
            tile = grid[r * h // 2:(r + 1) * h // 2, c * w // 2:(c + 1) * w // 2]
            assert tile.std() > 10, (r, c)
