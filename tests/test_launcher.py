"""Without a display the viewer commands say so in one line (Qt would abort the process)."""

from __future__ import annotations

import os
import subprocess
import sys

from napari_harm3.core.synth.cohort import make_cohort


def test_view_without_a_display_is_one_readable_line(tmp_path):
    table = make_cohort(tmp_path / "cohort", 1, seed=5, slide=False)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for target in (table, table.parent / "SYN-0001"):  # a cohort (Worklist) and a case
        result = subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", "view", str(target)],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 2, result.stderr[-2000:]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("harm3: error: no display"), result.stderr
