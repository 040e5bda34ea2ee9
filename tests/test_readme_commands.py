"""Every command in the README's command table runs, as a new user would type it, on a fresh
synthetic case (or on the real files / the test PACS where the command needs them) — or fails with
exactly one readable line when its inputs are missing. A README row without a recipe here fails,
so a documented command cannot rot unnoticed. The three commands that train models or open the
demo window are run by the tests named in COVERED_ELSEWHERE (checked to still call them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from napari_harm3.core.cli.main import main as harm3
from napari_harm3.core.synth.cohort import make_case, make_cohort

pytest_plugins = ("orthanc",)
ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

#: commands run by other tests (they take minutes): the test file and the argv words it must contain
COVERED_ELSEWHERE = {
    "harm3 demo": ("test_qt_demo_e2e.py", '"demo", "--headless"'),
    "harm3 train crossfusion COHORT": ("test_crossfusion_train.py", '"train", "crossfusion"'),
    "harm3 train harm3 COHORT": ("test_harm3_cli.py", '"train", "harm3"'),
    "harm3 import-crossfusion CKPT": ("test_crossfusion_train.py", '"import-crossfusion"'),
}


def documented_commands() -> list:
    """The literal start of each command in the README's command table (up to its first option)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        match = re.match(r"\|\s*`(harm3 [^`]+)`", line)
        if match:
            words = []
            for token in match.group(1).replace("\\|", "|").split():
                if token.startswith(("-", "[", "(")):
                    break
                words.append(token)
            commands.append(" ".join(words))
    return commands


@pytest.fixture(scope="module")
def world(tmp_path_factory, pacs):
    """A fresh synthetic cohort (2 cases), a case with a larger slide (survival needs 5x tissue),
    a case whose post session moved, one written as DICOM, the test PACS."""
    root = tmp_path_factory.mktemp("readme")
    table = make_cohort(root / "cohort", 2, seed=int.from_bytes(os.urandom(2), "little"))
    rich = make_case(root / "RICH", seed=3, case_id="RICH", slide_size=(8192, 6144))
    moved = make_case(root / "MOVED", seed=4, case_id="MOVED", motion=True, slide=False)
    assert harm3(["synth", "--n", "1", "--seed", "9", "--out", str(root / "dicom"), "--dicom"]) == 0
    return {"root": root, "table": table, "case": table.parent / "SYN-0001", "rich": rich.root, "moved": moved.root,
            "dicom_case": root / "dicom" / "SYN-0001", "pacs": pacs}


#: the commands run by test_every_documented_command_runs_on_a_fresh_case (its recipes' keys)
RUN_HERE = ("harm3 view CASE_OR_FILES…", "harm3 view COHORT", "harm3 info PATH…", "harm3 synth", "harm3 validate CASE_OR_COHORT",
            "harm3 register FIXED MOVING", "harm3 align CASE_OR_COHORT", "harm3 patch SLIDE…", "harm3 extract SLIDE…",
            "harm3 pcr MODEL_DIR CASE", "harm3 survival MODEL_DIR", "harm3 predict COHORT", "harm3 report CASE",
            "harm3 report COHORT", "harm3 export-dicom CASE", "harm3 pacs find", "harm3 pacs get STUDY_UID",
            "harm3 pacs send DIR")


def _recipes(w, tmp: Path):
    """command start → (argv, accepted exit statuses)."""
    case, rich, cohort = str(w["case"]), str(w["rich"]), str(w["table"])
    moved = w["moved"]
    config = str(w["pacs"].config_file(tmp))
    slide = str(Path(w["rich"]) / "slide" / "biopsy.tiff")
    return {
        "harm3 view CASE_OR_FILES…": (["__subprocess__", "view", case, "--screenshots", str(tmp / "shots")], {0}),
        "harm3 view COHORT": (["__subprocess__", "view", cohort, "--screenshots", str(tmp / "cohort-shots")], {0}),
        "harm3 info PATH…": (["info", str(Path(case) / "mri" / "t1_pre.nii.gz"), slide], {0}),
        "harm3 synth": (["synth", "--n", "1", "--seed", "5", "--out", str(tmp / "synth")], {0}),
        "harm3 validate CASE_OR_COHORT": (["validate", cohort], {0}),
        "harm3 register FIXED MOVING": (["register", str(moved / "mri" / "t1_pre.nii.gz"),
                                         str(moved / "mri" / "t1_post.nii.gz"), "--out", str(tmp / "t.tfm"),
                                         "--levels", "8,4"], {0}),
        "harm3 align CASE_OR_COHORT": (["align", str(moved), "--levels", "8,4"], {0}),
        "harm3 patch SLIDE…": (["patch", slide, "--out", str(tmp / "patches"), "--mag", "10"], {0}),
        "harm3 extract SLIDE…": (["extract", slide, "--patches", str(tmp / "patches"), "--out", str(tmp / "features"),
                                  "--encoder", "texture_stats", "--mags", "10"], {0}),
        "harm3 pcr MODEL_DIR CASE": (["pcr", str(MODELS / "harm3-demo"), case, "--json", str(tmp / "pcr.json")], {0}),
        "harm3 survival MODEL_DIR": (["survival", str(MODELS / "crossfusion-demo"), rich, "--json",
                                      str(tmp / "survival.json")], {0}),
        "harm3 predict COHORT": (["predict", cohort, "--out", str(tmp / "predictions.csv")], {0}),
        "harm3 report CASE": (["report", case, "--out", str(tmp / "r.pdf"), "--json", str(tmp / "r.json")], {0}),
        "harm3 report COHORT": (["report", cohort, "--out", str(tmp / "reports")], {0}),
        "harm3 export-dicom CASE": (["export-dicom", str(w["dicom_case"]), "--out", str(tmp / "dicom-out")], {0}),
        "harm3 pacs find": (["pacs", "find", "--patient", w["pacs"].synth_patient_id, "--config", config], {0}),
        "harm3 pacs get STUDY_UID": (["pacs", "get", w["pacs"].synth_study_uid, "--out", str(tmp / "from-pacs"),
                                      "--config", config], {0}),
        "harm3 pacs send DIR": (["pacs", "send", str(tmp / "dicom-out"), "--config", config], {0}),
    }


def test_the_readme_documents_the_commands_this_test_knows():
    documented = documented_commands()
    assert len(documented) >= 15, documented
    known = set(RUN_HERE) | set(COVERED_ELSEWHERE)
    missing = [c for c in documented if c not in known]
    assert not missing, f"README commands without a recipe in this test: {missing}"


@pytest.mark.parametrize("command", list(COVERED_ELSEWHERE))
def test_commands_covered_elsewhere_are_still_called_there(command):
    name, words = COVERED_ELSEWHERE[command]
    assert command in documented_commands()
    assert words in (ROOT / "tests" / name).read_text(encoding="utf-8"), (name, words)


@pytest.mark.gui
def test_every_documented_command_runs_on_a_fresh_case(world, tmp_path, capsys):
    recipes = _recipes(world, tmp_path)
    assert set(recipes) == set(RUN_HERE)
    # the order of the README's table: patch before extract, export-dicom before pacs send
    order = [c for c in documented_commands() if c in recipes]
    assert set(order) == set(recipes), set(recipes) - set(order)
    for command in order:
        argv, accepted = recipes[command]
        if argv[0] == "__subprocess__":  # the viewer: its own process, on pytest-xvfb's display
            result = subprocess.run([sys.executable, "-m", "napari_harm3.core.cli.main", *argv[1:]],
                                    capture_output=True, text=True, timeout=600, env={**os.environ, "QT_API": "pyqt6"})
            code, err = result.returncode, result.stderr
        else:
            code = harm3(argv)
            err = capsys.readouterr().err
        assert code in accepted, f"{command}: exit {code}\n{err[-2000:]}"
        if code != 0:
            assert err.count("harm3: error:") == 1, (command, err)
    assert json.loads((tmp_path / "survival.json").read_text())["risk"] is not None
    assert (tmp_path / "reports" / "summary.pdf").is_file() and (tmp_path / "dicom-out" / "SR.dcm").is_file()
