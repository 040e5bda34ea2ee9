"""Survival prediction for one synthetic case: slide → pipeline features → CrossFusion ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_harm3.core.errors import Harm3Error
from napari_harm3.core.predict.survival import predict_case

DEMO = Path(__file__).resolve().parents[1] / "models" / "crossfusion-demo"
TEXTURE_DIM = 42  # texture_stats feature size


def tiny_model_folder(folder: Path, seed: int = 0) -> Path:
    """A two-fold tiny CrossFusion folder (seeded random weights) with a full card: bin edges per
    fold, follow-up, training-risk threshold; the plumbing under test does not need a trained model."""
    from napari_harm3.core.models.crossfusion import create_model
    from napari_harm3.core.models.zoo import write_model_folder
    from napari_harm3.core.train.crossfusion_model_folder import crossfusion_card
    from napari_harm3.core.train.crossfusion_train import TrainConfig

    overrides = {"embed_dim": 16, "num_heads": 2}
    states = []
    for k in range(2):
        torch.manual_seed(seed + k)
        states.append(create_model("crossfusion_tiny", backbone_dim=TEXTURE_DIM, **overrides).state_dict())
    model_cfg = create_model("crossfusion_tiny", backbone_dim=TEXTURE_DIM, **overrides).cfg.to_dict()
    card = crossfusion_card("tiny-test", model_cfg, TrainConfig(model="crossfusion_tiny", model_overrides=overrides),
                            "texture_stats", {"cohort": "none (random weights)"})
    card.update({"bin_edges_months": [[10.0, 20.0, 40.0], [12.0, 24.0, 44.0]], "max_follow_up_months": [100.0, 110.0],
                 "t_max_months": 105.0, "risk_threshold": -2.5})
    write_model_folder(folder, card, states)
    return folder


@pytest.fixture(scope="module")
def synthetic_case(tmp_path_factory):
    from napari_harm3.core.synth.cohort import make_case

    return make_case(tmp_path_factory.mktemp("survival-case") / "case", seed=11, case_id="SYN-SURV")


def test_predict_case_from_the_slide(tmp_path, synthetic_case):
    from napari_harm3.core.models.registry import load_ensemble
    from napari_harm3.core.train.bags import case_bags
    from napari_harm3.core.wsi.slide_source import open_wsi

    torch.set_num_threads(1)
    model = tiny_model_folder(tmp_path / "model")
    messages = []
    pred = predict_case(model, synthetic_case.root / "case.yaml", progress=lambda f, m: messages.append(f), device="cpu")
    assert messages and messages[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in messages)

    # features cached under <case>/features and equal to what the ensemble saw
    root = synthetic_case.root / "features"
    assert pred.features_root == root
    bags = case_bags(root, "texture_stats", "SYN-SURV", with_coords=True)
    assert pred.n_patches == {5: len(bags.x5), 10: len(bags.x10), 20: len(bags.x20)} and len(bags.x5) >= 1
    models = load_ensemble(model, "cpu").models
    with torch.no_grad():
        direct = [float(m(bags.x5[None], bags.x10[None], bags.x20[None]).risk) for m in models]
    assert pred.fold_risks == pytest.approx(direct, abs=1e-6)
    assert pred.risk == pytest.approx(np.mean(direct), abs=1e-6)
    assert pred.risk_spread == pytest.approx(np.std(direct, ddof=1), abs=1e-6)
    assert pred.risk_group == ("high" if pred.risk >= -2.5 else "low") and pred.risk_threshold == -2.5

    # survival: per bin, bins = mean of the folds' edges, S(t) on the union of the edges with its band
    assert pred.cuts_months == pytest.approx((11.0, 22.0, 42.0))
    assert pred.survival.shape == (4,) and np.all(np.diff(pred.survival) <= 1e-7)
    assert pred.months.tolist() == [0, 10, 12, 20, 24, 40, 44, 100, 110]
    assert pred.survival_curve[0] == 1.0 and np.all(np.diff(pred.survival_curve) <= 1e-7)
    assert np.all(pred.survival_low <= pred.survival_curve + 1e-7) and np.all(pred.survival_curve <= pred.survival_high + 1e-7)
    assert pred.t_max_months == 105.0 and pred.missing_inputs == ()

    # attention per magnification at the patches' level-0 positions, on the slide's tissue
    assert set(pred.attention) == {"5x", "10x", "20x", "final"}
    slide = open_wsi(synthetic_case.slide)
    width, height = slide.level_dimensions[0]
    for key, mag, size in (("5x", 5, 1024), ("10x", 10, 512), ("20x", 20, 256), ("final", 10, 512)):
        scores = pred.attention[key]
        assert scores.footprint == size and scores.magnification == mag and scores.key == key
        assert scores.coords.shape == (pred.n_patches[mag], 2) and scores.scores.shape == (pred.n_patches[mag],)
        assert scores.scores.min() >= 0 and scores.scores.max() <= 1
        # top-left corners on the slide (CLAM pads patches that run over its edge)
        assert np.all(scores.coords >= 0) and np.all(scores.coords[:, 0] < width) and np.all(scores.coords[:, 1] < height)
        best = scores.top(1)[0]
        assert scores.scores[best] == pytest.approx(scores.scores.max())
        x, y = scores.coords[best]
        assert scores.patch_at(x + size - 1, y + size - 1) in {best} | set(np.flatnonzero(scores.scores == scores.scores[best]))

    # second call reads the cache; the report's integration takes the result as it is
    stamp = (root / "texture_stats" / "x20" / "pt_files" / "SYN-SURV.pt").stat().st_mtime_ns
    again = predict_case(model, synthetic_case, device="cpu")
    assert again.risk == pytest.approx(pred.risk, abs=1e-7)
    assert (root / "texture_stats" / "x20" / "pt_files" / "SYN-SURV.pt").stat().st_mtime_ns == stamp
    assert again.to_dict()["risk_group"] == pred.risk_group


def test_the_session_report_takes_the_prediction_as_it_is(tmp_path, synthetic_case):
    from napari_harm3.core.session import CaseSession

    torch.set_num_threads(1)
    model = tiny_model_folder(tmp_path / "model", seed=3)
    session = CaseSession(device="cpu")
    session.open(synthetic_case.root / "case.yaml")
    result = session.predict("survival", model)
    direct = predict_case(model, synthetic_case, device="cpu")
    assert result.risk == pytest.approx(direct.risk) and len(result.fold_risks) == 2
    assert result.case_ref == session.ref and direct.case_ref is None
    report = session.report()
    assert report.survival.risk == result.risk and report.survival.survival == tuple(result.survival_curve)
    assert report.survival.risk_group == result.risk_group
    assert set(report.slide_figure.heatmaps) == {result.attention[k].label for k in ("5x", "10x", "20x", "final")}
    session.close()


def test_a_case_without_its_slide_is_refused(tmp_path, synthetic_case):
    from dataclasses import replace

    model = tiny_model_folder(tmp_path / "model")
    no_slide = replace(synthetic_case, case_id="SYN-NOSLIDE", slide=None)
    with pytest.raises(Harm3Error, match="needs the biopsy slide"):
        predict_case(model, no_slide, device="cpu", features_root=tmp_path / "features")
    gone = replace(synthetic_case, case_id="SYN-GONE", slide=tmp_path / "missing.tiff")
    with pytest.raises(Harm3Error, match="needs the biopsy slide"):
        predict_case(model, gone, device="cpu", features_root=tmp_path / "features")


def test_features_of_another_encoder_are_refused(tmp_path, synthetic_case):
    from napari_harm3.core.models.crossfusion import create_model
    from napari_harm3.core.models.zoo import write_model_folder
    from napari_harm3.core.train.crossfusion_model_folder import crossfusion_card
    from napari_harm3.core.train.crossfusion_train import TrainConfig

    cfg = create_model("crossfusion_tiny", backbone_dim=64, embed_dim=16, num_heads=2).cfg.to_dict()
    card = crossfusion_card("wide", cfg, TrainConfig(), "texture_stats", {})
    write_model_folder(tmp_path / "wide", card, [create_model("crossfusion_tiny", backbone_dim=64, embed_dim=16,
                                                              num_heads=2).state_dict()])
    with pytest.raises(Harm3Error, match="expects 64-d"):
        predict_case(tmp_path / "wide", synthetic_case, device="cpu")


@pytest.mark.slow
def test_demo_model_ranks_a_high_risk_phantom_above_a_low_risk_one(tmp_path):
    """The demo model (trained on other phantoms) must order two new phantoms whose true
    log-hazards differ by 12 (c = f = ±2) — through the whole slide → features → ensemble path."""
    from napari_harm3.core.synth.cohort import make_case

    if not (DEMO / "card.json").is_file():
        pytest.skip("models/crossfusion-demo has not been trained (run models/crossfusion-demo/recipe.sh)")
    torch.set_num_threads(1)
    high = make_case(tmp_path / "high", seed=101, case_id="SYN-HIGH", latents={"c": 2.0, "f": 2.0, "m": 0.0, "s": 0.0})
    low = make_case(tmp_path / "low", seed=102, case_id="SYN-LOW", latents={"c": -2.0, "f": -2.0, "m": 0.0, "s": 0.0})
    p_high, p_low = predict_case(DEMO, high, device="cpu"), predict_case(DEMO, low, device="cpu")
    print(f"demo risk: high-hazard phantom {p_high.risk:.3f} ({p_high.risk_group}), "
          f"low-hazard phantom {p_low.risk:.3f} ({p_low.risk_group})")
    assert p_high.risk > p_low.risk
    assert p_high.risk_group == "high" and p_low.risk_group == "low"
    assert p_high.survival_curve[-1] < p_low.survival_curve[-1]
