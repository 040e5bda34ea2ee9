"""HARM3-Fusion model: shapes, the LD-VAE equations (Eqs. 4–5), attention, missing inputs, ablations."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from napari_harm3.core.models.harm3_blocks import CrossAttentionLayer, RelativePositionBias  # noqa: E402
from napari_harm3.core.models.harm3_fusion import (ABLATIONS, Harm3Config, create_model,  # noqa: E402
                                                   model_config)
from napari_harm3.core.models.ldvae import LdVae  # noqa: E402
from napari_harm3.core.models.zoo import load_weights, save_weights  # noqa: E402
from napari_harm3.core.train.harm3_train import TrainConfig, harm3_loss  # noqa: E402


def _inputs(B=2, N=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    mri = torch.randn(B, 4, 16, 32, 32, generator=g)
    slide = torch.randn(B, N, 16, generator=g)
    mask = torch.ones(B, N, dtype=torch.bool)
    if B > 1:
        mask[1, 7:] = False
    return mri, slide, mask


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_ablation_runs_and_backpropagates(ablation):
    torch.manual_seed(0)
    model = create_model("harm3_fusion_tiny", ablation=ablation)
    mri, slide, mask = _inputs()
    out = model(mri, None, slide, mask, return_attention=True)
    assert out.logit.shape == (2,) and out.probability.shape == (2,) and out.missing.shape == (2, 5)
    assert torch.allclose(out.probability, torch.sigmoid(out.logit))
    (out.logit.sum() + out.recon_loss + out.contra_loss).backward()
    cfg = model.config
    if cfg.use_slide:
        att = out.slide_attention                                    # (B, h, K, N)
        assert att.shape == (2, cfg.slide_heads, cfg.slide_tokens, 12)
        torch.testing.assert_close(att.sum(-1), torch.ones(2, cfg.slide_heads, cfg.slide_tokens))
        assert torch.all(att[1, :, :, 7:] == 0)                       # padding gets no attention
    if cfg.use_mri and cfg.use_self_attention:
        L = 4 * cfg.n_tokens
        assert out.mri_attention[0].shape == (2, cfg.heads, L, L)
    if cfg.use_mri and cfg.use_slide and cfg.use_cross_attention:
        assert out.cross_attention.shape == (2, cfg.heads, cfg.slide_tokens, 4 * cfg.n_tokens)
    if not cfg.use_ldvae or not cfg.use_mri:
        assert float(out.recon_loss) == 0.0 and float(out.contra_loss) == 0.0


def test_ablation_switches_change_the_architecture():
    full = create_model("harm3_fusion_tiny")
    assert hasattr(full, "ldvae") and hasattr(full, "self_attention") and hasattr(full, "cross")
    assert not hasattr(create_model("harm3_fusion_tiny", ablation="no_ldvae"), "ldvae")
    assert hasattr(create_model("harm3_fusion_tiny", ablation="no_self_attention"), "join")
    assert not hasattr(create_model("harm3_fusion_tiny", ablation="no_cross_attention"), "cross")
    assert not hasattr(create_model("harm3_fusion_tiny", ablation="mri_only"), "pool")
    assert not hasattr(create_model("harm3_fusion_tiny", ablation="slide_only"), "extractors")
    with pytest.raises(ValueError, match="ablation"):
        model_config("harm3_fusion_tiny", "no_head")


def test_default_config_follows_the_spec():
    cfg = Harm3Config()
    assert cfg.mri_size == (24, 128, 128) and len(cfg.extractor_channels) == 4
    assert cfg.d_model == 512 and cfg.heads == 8 and cfg.slide_tokens == 16 and cfg.slide_heads == 8
    assert cfg.contrastive_lambda == 0.5 and cfg.temporal_fusion == "concat"
    assert Harm3Config.from_dict(cfg.to_dict()) == cfg
    tcfg = TrainConfig()
    assert (tcfg.lr, tcfg.weight_decay, tcfg.batch_size, tcfg.folds) == (1e-4, 1e-6, 8, 5)


def test_ldvae_losses_follow_eqs_4_and_5():
    torch.manual_seed(1)
    vae = LdVae(dim=6, latent=5, inherent=3, variant=4, hidden=8, contrastive_lambda=0.5, kl_weight=1.0).eval()
    x_pre, x_post = torch.randn(2, 7, 6), torch.randn(2, 7, 6)
    out = vae(x_pre, x_post)
    br = {"pre": vae.pre, "post": vae.post}
    x = {"pre": x_pre, "post": x_post}
    mu, lv, inh, var = {}, {}, {}, {}
    for k, b in br.items():
        mu[k], lv[k] = b.encoder(x[k]).chunk(2, -1)
        inh[k], var[k] = b.to_inherent(mu[k]), b.to_variant(mu[k])    # Z = μ in inference
    recon = sum(((x[i] - br[i].decoder(torch.cat([inh[j], var[i]], -1))) ** 2).mean() for i in br for j in br)
    kl = sum((0.5 * (mu[k] ** 2 + lv[k].exp() - 1 - lv[k])).mean() for k in br)
    contra = 0.5 * F.cosine_similarity(var["pre"], var["post"], dim=-1).mean() + 0.5 * ((inh["pre"] - inh["post"]) ** 2).mean()
    torch.testing.assert_close(out.recon_loss, recon + kl)
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.contra_loss, contra)
    own = [br[k].decoder(torch.cat([inh[k], var[k]], -1)) for k in br]
    torch.testing.assert_close(out.fused, torch.cat(own, dim=1))     # concatenated along tokens
    summed = LdVae(6, 5, 3, 4, 8, fusion="sum")
    summed.load_state_dict(vae.state_dict())
    torch.testing.assert_close(summed.eval()(x_pre, x_post).fused, own[0] + own[1])
    # a patient whose post volume is missing contributes no cross or contrastive term
    only_pre = vae(x_pre, x_post, torch.tensor([True, True]), torch.tensor([False, False]))
    assert float(only_pre.contra_loss) == 0.0


def test_cross_attention_without_residual_is_eq_7():
    torch.manual_seed(2)
    layer = CrossAttentionLayer(dim=16, heads=1, residual=False, scale="model").eval()
    q_in, kv_in = torch.randn(1, 4, 16), torch.randn(1, 9, 16)
    out, weights = layer(q_in, kv_in)
    q = layer.attn.q(layer.norm_q(q_in))
    k, v = layer.attn.kv(layer.norm_kv(kv_in)).chunk(2, -1)
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(16), -1)     # softmax(Q Kᵀ / √d_k)
    torch.testing.assert_close(weights[:, 0], a)
    torch.testing.assert_close(out, layer.attn.out(a @ v))


def test_relative_position_bias_depends_on_offsets_and_tells_sequences_apart():
    rpb = RelativePositionBias((2, 2, 2), n_sequences=2, n_times=2, heads=3)
    with torch.no_grad():
        rpb.spatial.normal_()
        rpb.sequence.copy_(torch.arange(12.0).view(4, 3))
    bias = rpb()[0]                                                  # (h, L, L)
    assert bias.shape == (3, 32, 32)
    # tokens 0→1 and 2→3 have the same grid offset in the same sequence/time: same bias
    torch.testing.assert_close(bias[:, 0, 1], bias[:, 2, 3])
    # same grid positions, T1 vs T2 query: differ by the sequence-pair entries
    torch.testing.assert_close(bias[:, 0, 1] - bias[:, 16, 1], rpb.sequence[0] - rpb.sequence[2])


def test_missing_inputs_use_placeholders_and_are_flagged():
    torch.manual_seed(3)
    model = create_model("harm3_fusion_tiny").eval()
    mri, slide, mask = _inputs(B=1)
    present = torch.tensor([[True, True, True, False]])
    with torch.no_grad():
        a = model(mri, present, slide, mask, torch.tensor([False]))
        mri2 = mri.clone()
        mri2[:, 3] = torch.randn(1, 16, 32, 32) * 5
        b = model(mri2, present, torch.randn(1, 12, 16), mask, torch.tensor([False]))
    assert a.missing.tolist() == [[False, False, False, True, True]]
    # BatchNorm in eval mode is per-sample, so an absent volume's pixels cannot leak into the result
    torch.testing.assert_close(a.logit, b.logit)
    with torch.no_grad():
        c = model(mri, None, None)                                    # no slide at all
    assert c.missing[0, 4] and not c.missing[0, :4].any()


def test_modality_dropout_in_training_only():
    torch.manual_seed(4)
    model = create_model("harm3_fusion_tiny", drop_slide=1.0, drop_volume=0.0, drop_sequence=0.0, drop_timepoint=0.0)
    mri, slide, mask = _inputs()
    assert model.train()(mri, None, slide, mask).missing[:, 4].all()
    assert not model.eval()(mri, None, slide, mask).missing.any()
    # never everything: with every MRI volume dropped too, the inputs are kept
    model = create_model("harm3_fusion_tiny", drop_slide=1.0, drop_volume=1.0)
    assert not model.train()(mri, None, slide, mask).missing.all(1).any()


def test_weights_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(5)
    model = create_model("harm3_fusion_tiny").eval()
    digest = save_weights(tmp_path / "w.safetensors", model.state_dict())
    again = create_model("harm3_fusion_tiny", weights=tmp_path / "w.safetensors").eval()
    mri, slide, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(mri, None, slide, mask).logit, again(mri, None, slide, mask).logit)
    assert len(load_weights(tmp_path / "w.safetensors", expected_sha256=digest)) == len(model.state_dict())


def test_loss_is_weighted_bce_plus_ldvae_terms():
    torch.manual_seed(6)
    model = create_model("harm3_fusion_tiny").train()
    mri, slide, mask = _inputs()
    out = model(mri, None, slide, mask)
    y = torch.tensor([1.0, 0.0])
    tcfg = TrainConfig(l1=0.0, w_recon=0.3, w_contra=0.7)
    total, parts = harm3_loss(out, y, 2.5, tcfg)
    p = out.probability
    bce = -(2.5 * y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(total, bce + 0.3 * out.recon_loss + 0.7 * out.contra_loss, rtol=1e-4, atol=1e-5)
    assert parts["bce"] == pytest.approx(float(bce), rel=1e-4)
    with_l1, _ = harm3_loss(out, y, 2.5, TrainConfig(l1=1e-3, w_recon=0.3, w_contra=0.7), model)
    assert float(with_l1) > float(total)


def test_ldvae_passes_patient_differences_at_init():
    # with PyTorch's default Linear init the five layers X → Z → D(Z) shrank between-patient
    # differences ≈ 50× (sd 0.02 for unit-variance input), so the pCR loss could not train the extractor
    torch.manual_seed(0)
    vae = LdVae(16, 16, 8, 8, 32, kl_weight=0.01).eval()
    x_pre, x_post = torch.randn(32, 8, 16), torch.randn(32, 8, 16)              # (B, n, C), sd 1
    with torch.no_grad():
        fused = vae(x_pre, x_post).fused                                         # (B, 2n, C)
    assert float(fused.std(0).mean()) > 0.3


def test_batch_token_norm_keeps_what_layer_norm_erases():
    # tumour volume shows as the magnitude of a patient's tokens: per-token LayerNorm removes it
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 16)                                                  # (B, 4, n, C)
    x[1] = 3.0 * x[0]                                                            # same pattern, 3× stronger
    for kind, differs in (("batch", True), ("layer", False)):
        model = create_model("harm3_fusion_tiny", token_norm=kind).train()
        y = model.token_norm(x.reshape(-1, 16)).view_as(x)
        assert bool(torch.allclose(y[0], y[1], atol=1e-3)) is not differs
    with pytest.raises(ValueError, match="token norm"):
        create_model("harm3_fusion_tiny", token_norm="group")


def test_learning_rate_schedule_warms_up_then_decays_to_zero():
    from napari_harm3.core.train.harm3_train import lr_factor

    f = lr_factor(TrainConfig(epochs=10, lr_schedule="cosine", warmup_epochs=2), steps_per_epoch=5)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)             # linear warm-up over 10 steps
    assert f(10) == pytest.approx(1.0) and f(30) == pytest.approx(0.5)           # cosine: half-way at 30 of 50
    assert f(49) < 0.01
    assert lr_factor(TrainConfig(epochs=10), 5)(37) == 1.0                       # constant


def test_slide_standardisation_uses_stored_statistics_and_gradcam_layer_is_configurable():
    model = create_model("harm3_fusion_tiny").eval()
    assert model.config.slide_standardise and {"slide_mean", "slide_std"} <= set(model.state_dict())
    mri, slide, mask = _inputs()
    inputs = dict(mri=mri, slide=slide, slide_mask=mask)
    with torch.no_grad():
        before = model(**inputs).logit
        model.set_slide_statistics(torch.arange(16.0), torch.linspace(0.5, 2.0, 16))  # per dimension (LayerNorm follows)
        after = model(**inputs).logit
    assert not torch.allclose(before, after)                       # the statistics are applied …
    restored = create_model("harm3_fusion_tiny", weights=model.state_dict()).eval()
    with torch.no_grad():
        assert torch.allclose(restored(**inputs).logit, after)      # … and travel with the weights
    assert create_model("harm3_fusion_tiny", slide_standardise=False).state_dict().keys().isdisjoint({"slide_mean"})
    assert model.gradcam_layers == [model.extractors[0].stages[0]]
    last = create_model("harm3_fusion_tiny", gradcam_layer="last")
    assert last.gradcam_layers == [last.extractors[0].last_conv]
    with pytest.raises(ValueError, match="gradcam_layer"):
        _ = create_model("harm3_fusion_tiny", gradcam_layer="stage9").gradcam_layers


def test_gradcam_maps_are_upsampled_cell_centred_onto_the_crop():
    from scipy.ndimage import zoom

    from napari_harm3.core.explain.gradcam import mri_gradcam, upsample_cell_centred

    # a ramp over a 4-cell axis: each coarse value belongs at its cell's centre, (i + 0.5)·4 − 0.5 on a 16-voxel axis
    coarse = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (4, 4, 4))
    fine = upsample_cell_centred(coarse, (16, 8, 8))
    assert fine.shape == (16, 8, 8)
    centre_of = (np.arange(16) + 0.5) / 4 - 0.5                       # coarse coordinate of each fine voxel
    inner = (centre_of >= 0) & (centre_of <= 3)
    np.testing.assert_allclose(fine[inner, 3, 3], centre_of[inner], atol=1e-5)
    np.testing.assert_allclose(fine[~inner, 3, 3], np.clip(centre_of[~inner], 0, 3), atol=1e-5)   # edges held
    # the central 2×2×2 cells of a 4×4×4 map span fine voxels 4…11: most of the map stays there; the grad-cam
    # package's own resize (scipy zoom: cubic, corners aligned) stretches it outwards and overshoots
    hot = np.zeros((4, 4, 4), np.float32)
    hot[1:3, 1:3, 1:3] = 1.0
    ours = upsample_cell_centred(hot, (16, 16, 16))
    package = np.clip(zoom(hot, 4), 0, None)
    share = [m[4:12, 4:12, 4:12].sum() / m.sum() for m in (ours, package)]
    assert share[0] > 0.65 and share[1] < share[0] - 0.05 and ours.max() <= 1.0 < package.max()
    # end to end on a tiny model: one map per volume on the crop, in [0, 1], missing volumes zero
    model = create_model("harm3_fusion_tiny").eval()
    mri, slide, mask = _inputs(B=1)
    present = torch.tensor([[True, True, True, False]])
    cams = mri_gradcam(model, mri, present, slide, mask, torch.ones(1, dtype=torch.bool))
    assert cams.shape == (1, 4, 16, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    assert not cams[0, 3].any()


class _Logit:
    def __init__(self, sign=1.0):
        self.sign = sign

    def __call__(self, output):
        return self.sign * output[0]


def test_gradcam_methods_match_the_grad_cam_package_on_the_layer_grid():
    """Our maps from captured activations/gradients equal the package's GradCAM and HiResCAM (left on the
    layer's grid, then upsampled the same way); "against" is the package's map of the negated logit."""
    from pytorch_grad_cam import GradCAM, HiResCAM

    from napari_harm3.core.explain.gradcam import _logit_module, mri_gradcam, upsample_cell_centred

    torch.manual_seed(0)
    model = create_model("harm3_fusion_tiny").eval()
    mri, slide, mask = _inputs(B=2)
    present = torch.ones(2, 4, dtype=torch.bool)
    slide_present = torch.ones(2, dtype=torch.bool)
    for method, package in (("gradcam", GradCAM), ("hirescam", HiResCAM)):
        class OnLayerGrid(package):
            def get_target_width_height(self, input_tensor):
                return None

        for evidence, sign in (("for", 1.0), ("against", -1.0)):
            wrapper = _logit_module(model, present, slide, mask, slide_present)
            with OnLayerGrid(model=wrapper, target_layers=model.gradcam_layers) as cam:
                ref = cam(input_tensor=mri, targets=[_Logit(sign), _Logit(sign)])       # (B·4, d, h, w)
            ours = mri_gradcam(model, mri, present, slide, mask, slide_present, method=method, evidence=evidence)
            expected = upsample_cell_centred(ref, mri.shape[2:]).reshape(ours.shape)
            np.testing.assert_allclose(ours, expected, atol=1e-5, err_msg=f"{method}/{evidence}")
    with pytest.raises(ValueError, match="method"):
        mri_gradcam(model, mri, present, slide, mask, slide_present, method="gradcam++")


def test_evidence_modes_split_the_signed_map():
    from napari_harm3.core.explain.gradcam import evidence_map, signed_cam

    rng = np.random.default_rng(0)
    acts = rng.random((3, 5, 2, 4, 4)).astype(np.float32)
    grads = rng.normal(size=(3, 5, 2, 4, 4)).astype(np.float32)
    cam = signed_cam(acts, grads, "hirescam")
    np.testing.assert_allclose(cam, (acts * grads).sum(1), rtol=1e-6)
    np.testing.assert_allclose(signed_cam(acts, grads, "gradcam"),
                               (grads.mean(axis=(2, 3, 4), keepdims=True) * acts).sum(1), rtol=1e-5)
    pos, neg, both = (evidence_map(cam, e) for e in ("for", "against", "both"))
    assert not np.any((pos > 0) & (neg > 0))                          # for and against never overlap
    for m, raw in ((pos, np.maximum(cam, 0)), (neg, np.maximum(-cam, 0)), (both, np.abs(cam))):
        raw = raw - raw.min(axis=(1, 2, 3), keepdims=True)
        np.testing.assert_allclose(m, raw / raw.max(axis=(1, 2, 3), keepdims=True), atol=1e-6)
    assert np.allclose(both.max(axis=(1, 2, 3)), 1.0)
