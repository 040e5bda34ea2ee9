"""Models and cases for the workflow GUI tests: the zoo's demo models when both are present,
else tiny ones made once per test session with the real training CLIs on a 6-patient
``harm3 synth`` cohort (one epoch, two folds: plumbing, not learning)."""

from __future__ import annotations

from pathlib import Path

_MADE: dict = {}

CROSSFUSION_TINY = """model: crossfusion_tiny
model_overrides: {embed_dim: 16, num_heads: 2}
n_bins: 2
epochs: 1
folds: 2
accumulation: 2
lr: 0.001
device: cpu
"""


def cohort(tmp_path_factory) -> Path:
    """Six small phantom patients (seed 3), made once per session."""
    if "cohort" not in _MADE:
        from napari_harm3.core.synth import make_cohort

        root = tmp_path_factory.mktemp("workflow_cohort")
        make_cohort(root, 6, seed=3)
        _MADE["cohort"] = root
    return _MADE["cohort"]


def model_zoo(tmp_path_factory) -> Path:
    """A zoo folder holding one pCR and one survival model."""
    if "zoo" in _MADE:
        return _MADE["zoo"]
    from napari_harm3.core.models.registry import zoo_models
    from napari_harm3.core.resources import models_dir

    if zoo_models("pcr") and zoo_models("survival"):
        _MADE["zoo"] = models_dir()
        return _MADE["zoo"]
    from napari_harm3.core.cli.main import main

    root = cohort(tmp_path_factory)
    zoo = tmp_path_factory.mktemp("workflow_zoo")
    assert main(["train", "harm3", str(root), "--out", str(zoo / "harm3-tiny"), "--folds", "2", "--epochs", "1",
                 "--model", "harm3_fusion_tiny", "--ablation", "mri_only", "--device", "cpu"]) == 0
    config = zoo / "crossfusion-tiny.yaml"
    config.write_text(CROSSFUSION_TINY)
    assert main(["train", "crossfusion", str(root / "cohort.csv"), "--out", str(zoo / "crossfusion-tiny"),
                 "--config", str(config)]) == 0
    config.unlink()
    _MADE["zoo"] = zoo
    return zoo
