"""The manifest and resources ship inside the wheel, not only in a checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_manifest_resources_and_entry_points(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-qq", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("napari_harm3-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        manifest = archive.read("napari_harm3/napari.yaml").decode()
    assert "name: napari-harm3" in manifest
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "resources").rglob("*") if p.is_file()}
    assert shipped and {f"napari_harm3/{name}" for name in shipped} <= names
    assert "napari-harm3 = napari_harm3:napari.yaml" in entry_points
    assert "harm3 = napari_harm3.core.cli.main:main" in entry_points
