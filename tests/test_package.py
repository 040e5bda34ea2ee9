"""Package-level guarantees: the pure core never imports Qt or napari; the manifest validates."""

import subprocess
import sys


def test_core_imports_no_qt_or_napari():
    code = (
        "import sys, importlib, pkgutil, napari_harm3.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'napari_harm3.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'napari'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_npe2_manifest_validates():
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-harm3"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in (result.stdout + result.stderr).lower()


def test_cli_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "harm3" in result.stdout
