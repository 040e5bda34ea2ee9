"""`harm3 train harm3` and `harm3 pcr` end to end on a small phantom cohort from core.synth
(MRI-only ablation, so no slide features are needed; one epoch: plumbing, not learning)."""

import json

import pytest

pytest.importorskip("torch")

from napari_harm3.core.cli.main import main  # noqa: E402
from napari_harm3.core.io.case import load_case  # noqa: E402
from napari_harm3.core.io.cohort import load_cohort  # noqa: E402
from napari_harm3.core.models.zoo import read_model_folder  # noqa: E402
from napari_harm3.core.predict.pcr import predict_case  # noqa: E402


@pytest.fixture(scope="session")
def synth_cohort(tmp_path_factory):
    from napari_harm3.core.synth import make_cohort

    root = tmp_path_factory.mktemp("harm3_cohort")
    make_cohort(root, 6, seed=3)
    labels = [c.labels.pcr for c in load_cohort(root).cases]
    assert 0 in labels and 1 in labels, labels
    return root


@pytest.fixture(scope="session")
def trained_folder(synth_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("harm3_models") / "harm3-cli"
    rc = main(["train", "harm3", str(synth_cohort), "--out", str(out), "--folds", "2", "--epochs", "1",
               "--model", "harm3_fusion_tiny", "--ablation", "mri_only", "--device", "cpu"])
    assert rc == 0
    return out


def test_train_cli_writes_a_complete_model_folder(trained_folder):
    folder = read_model_folder(trained_folder)
    assert folder.kind == "harm3-fusion" and len(folder.weight_files) == 2
    assert folder.card.config["model"]["use_slide"] is False
    assert folder.card.raw["training_data"]["n_patients"] == 6
    assert (trained_folder / "roc.png").is_file() and (trained_folder / "calibration.png").is_file()
    assert main(["train", "harm3", "x", "--out", str(trained_folder)]) == 2       # no silent overwrite


def test_pcr_cli_and_predict_case_on_a_case_folder(trained_folder, synth_cohort, tmp_path, capsys):
    case_dir = synth_cohort / "SYN-0001"
    out = tmp_path / "pred.json"
    assert main(["pcr", str(trained_folder), str(case_dir), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "p(pCR)" in printed and "research use only" in printed
    data = json.loads(out.read_text())
    assert 0.0 <= data["probability"] <= 1.0 and len(data["fold_probabilities"]) == 2
    assert data["missing_inputs"] == ["slide"]                     # MRI-only model: the slide is not used
    assert data["gradcam_method"] == "hirescam, evidence both"     # what the maps show, from the card's config
    pred = predict_case(trained_folder, load_case(case_dir))
    case = load_case(case_dir)
    for seq in ("t1_pre", "t2_post"):
        vm = pred.gradcam[seq]
        from napari_harm3.core.io.mri import read_volume

        vol = read_volume(case.mri_source(seq)[0])
        assert vm.data.shape == vol.data.shape and vm.data.min() >= 0 and vm.data.max() <= 1
    assert main(["pcr", str(trained_folder), str(tmp_path / "nope")]) == 2
