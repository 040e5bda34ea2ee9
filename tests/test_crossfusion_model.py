"""CrossFusion model: the authors' reference vectors, converter, attention modes, ablations."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.models.crossfusion import (CrossFusion, CrossFusionConfig, create_model, grid_side,
                                                  load_state, square_pad)
from napari_harm3.core.models.crossfusion_convert import (infer_config, official_to_ours, read_checkpoint)

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"
REFERENCE = SPECS / "crossfusion-reference"


def _reference(case):
    from safetensors.torch import load_file

    if not (REFERENCE / f"{case}-io.safetensors").is_file():
        pytest.skip(f"reference vectors absent at {REFERENCE}")
    return load_file(str(REFERENCE / f"{case}-weights.safetensors")), load_file(str(REFERENCE / f"{case}-io.safetensors"))


@pytest.mark.parametrize("case", ["proj", "identity"])
def test_reproduces_reference_vectors(case):
    weights, io = _reference(case)
    cfg = infer_config(weights)
    assert (cfg.backbone_dim, cfg.embed_dim) == ((96, 64) if case == "proj" else (64, 64))
    model = load_state(CrossFusion(cfg), weights).eval()
    with torch.no_grad():
        fast = model(io["x5"], io["x10"], io["x20"])
        full = model(io["x5"], io["x10"], io["x20"], attention="maps")
    for out in (fast, full):
        for key in ("hazards", "survival", "logits"):
            assert torch.allclose(getattr(out, key), io[key], atol=1e-5, rtol=0), key
        assert torch.allclose(out.risk, -io["survival"].sum(1), atol=1e-5)
    att = full.attention
    assert torch.allclose(att.cross["coarse"], io["coarse_cross_attention"], atol=1e-5, rtol=0)
    assert torch.allclose(att.cross["fine"], io["fine_cross_attention"], atol=1e-5, rtol=0)
    assert torch.allclose(att.final[1], io["final_post_attention"], atol=1e-5, rtol=0)


def test_scores_mode_equals_the_summary_of_full_maps():
    weights, io = _reference("proj")
    model = load_state(CrossFusion(infer_config(weights)), weights).eval()
    for module in model.modules():  # force several query chunks
        if hasattr(module, "chunk_elements"):
            module.chunk_elements = 300
    with torch.no_grad():
        maps = model(io["x5"], io["x10"], io["x20"], attention="maps")
        scores = model(io["x5"], io["x10"], io["x20"], attention="scores")
    assert torch.allclose(maps.hazards, scores.hazards, atol=1e-6)
    full, summary = maps.attention, scores.attention
    for scale in ("coarse", "fine"):
        assert torch.allclose(summary.cross[scale].received, full.cross[scale].mean(dim=(1, 2)), atol=1e-6)
    for scale in ("coarse", "source", "fine"):
        for a, s in zip(full.branch[scale], summary.branch[scale]):
            assert torch.allclose(s.received, a.mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(summary.final[1].first_row, io["final_post_attention"][:, :, 0].mean(1), atol=1e-5)


def test_square_padding_repeats_the_first_tokens():
    x = torch.arange(10.0).view(1, 10, 1)
    assert grid_side(10) == 4 and grid_side(16) == 4 and grid_side(1) == 1
    assert square_pad(x, 4)[0, :, 0].tolist() == list(range(10)) + list(range(6))
    assert square_pad(torch.ones(1, 16, 2), 4).shape == (1, 16, 2)


def test_eval_is_deterministic_and_train_mode_uses_dropout():
    torch.manual_seed(0)
    model = create_model("crossfusion_tiny", backbone_dim=24)
    x5, x10, x20 = torch.randn(1, 5, 24), torch.randn(1, 17, 24), torch.randn(1, 70, 24)
    with torch.no_grad():
        a, b = model(x5, x10, x20).hazards, model(x5, x10, x20).hazards
        assert torch.equal(a, b)
        model.train()
        c, d = model(x5, x10, x20).hazards, model(x5, x10, x20).hazards
    assert not torch.equal(c, d)


@pytest.mark.parametrize("backbone", [1024, 512])
def test_converter_covers_every_official_parameter(backbone):
    path = SPECS / "crossfusion-official-state-dict.json"
    if not path.is_file():
        pytest.skip("official state-dict listing absent")
    shapes = json.loads(path.read_text())[f"backbone_dim_{backbone}"]
    official = {k: torch.zeros(v) for k, v in shapes.items()}
    ours = official_to_ours(official)
    assert len(ours) == len(official)
    model = create_model("crossfusion", backbone_dim=backbone)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert infer_config(official) == model.cfg


def test_converter_refuses_unknown_names():
    with pytest.raises(Harm3Error):
        official_to_ours({"mlp_head.0.weight": torch.zeros(4, 8), "something.else": torch.zeros(1)})


def test_authors_pt_checkpoint_loads_without_unpickling(tmp_path):
    weights, io = _reference("identity")
    ckpt = tmp_path / "s_0_checkpoint.pt"
    torch.save({f"module.{k}": v for k, v in weights.items()}, ckpt)
    state = read_checkpoint(ckpt)
    model = create_model("crossfusion_tiny", weights=state, backbone_dim=64, embed_dim=64)
    with torch.no_grad():
        assert torch.allclose(model(io["x5"], io["x10"], io["x20"]).hazards, io["hazards"], atol=1e-5)

    class Payload:  # an arbitrary object: weights_only must refuse to rebuild it
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(InputFileError):
        read_checkpoint(evil)


def test_wrong_architecture_is_a_readable_error():
    weights, _ = _reference("proj")
    with pytest.raises(Harm3Error, match="do not fit"):
        create_model("crossfusion_tiny", weights=weights, backbone_dim=96, embed_dim=32)


@pytest.mark.parametrize("overrides", [{"scales": "source"}, {"fusion": "linear"}, {"num_layers": 2}])
def test_ablations_run_and_train(overrides):
    torch.manual_seed(0)
    model = create_model("crossfusion_tiny", backbone_dim=12, **overrides).train()
    x10 = torch.randn(1, 9, 12)
    out = model(torch.randn(1, 3, 12), x10, torch.randn(1, 30, 12))
    out.risk.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    if overrides.get("scales") == "source":
        assert set(model.project) == {"source"} and len(model.cross) == 0
        assert model(None, x10, None).hazards.shape == (1, 4)
    # a state dict of this ablation round-trips through infer_config
    assert infer_config(model.state_dict(), num_layers=model.cfg.num_layers) == model.cfg


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        CrossFusionConfig(scales="both")
    with pytest.raises(Harm3Error):
        create_model("no-such-model")
