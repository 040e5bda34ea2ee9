"""Encoder registry: shapes, weights from local files, random-init labelling, texture signals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.wsi.encoders import ENCODERS, create_encoder, list_encoders
from napari_harm3.core.wsi.texture_encoder import FEATURE_NAMES, TEXTURE_DIM

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def batch(n=2, size=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def test_registry_lists_the_encoders():
    assert {"resnet50_trunc", "vit_base_patch16_224", "vit_large_patch16_224", "texture_stats"} <= set(list_encoders())
    assert ENCODERS["resnet50_trunc"].input_size == 224 and ENCODERS["texture_stats"].input_size is None
    with pytest.raises(Harm3Error, match="unknown encoder"):
        create_encoder("resnet18_magic")


def test_resnet50_trunc_random_init_is_labelled_and_1024d():
    with pytest.warns(UserWarning, match="RANDOM-INITIALISED"):
        encoder = create_encoder("resnet50_trunc", input_size=64)
    assert encoder.name == "resnet50_trunc+random-init" and encoder.random_init
    assert encoder.provenance()["weights_sha256"] == ""
    with torch.inference_mode():
        out = encoder(batch())
    assert out.shape == (2, 1024) and out.dtype == torch.float32
    assert not hasattr(encoder.model, "layer4")
    with pytest.warns(UserWarning):
        again = create_encoder("resnet50_trunc", input_size=64)
    with torch.inference_mode():
        assert torch.equal(again(batch()), out)  # random-init is reproducible (resume-safe)


def test_resnet50_trunc_loads_a_torchvision_state_dict(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet50

    torch.manual_seed(3)
    full = resnet50(weights=None).state_dict()  # layer4 and fc too: ignored
    save_file({k: v.contiguous() for k, v in full.items()}, str(tmp_path / "r50.safetensors"))
    torch.save(full, tmp_path / "r50.pth")
    a = create_encoder("resnet50_trunc", weights=tmp_path / "r50.safetensors", input_size=64)
    b = create_encoder("resnet50_trunc", weights=tmp_path / "r50.pth", input_size=64)
    assert a.name == "resnet50_trunc" and len(a.weights_sha256) == 64
    assert torch.equal(a.model.conv1.weight, full["conv1.weight"])
    with torch.inference_mode():
        assert torch.allclose(a(batch()), b(batch()))


def test_weights_that_do_not_fit_are_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"conv1.weight": torch.zeros(3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InputFileError, match="do not fit"):
        create_encoder("resnet50_trunc", weights=tmp_path / "bad.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"garbage")
    with pytest.raises(InputFileError):
        create_encoder("resnet50_trunc", weights=tmp_path / "junk.bin")
    with pytest.raises(InputFileError, match="not found"):
        create_encoder("resnet50_trunc", weights=tmp_path / "absent.safetensors")


def test_tiny_vits_and_the_uni_layout(tmp_path):
    from safetensors.torch import save_file

    tiny = dict(depth=1, embed_dim=32, num_heads=2, input_size=32, img_size=32)
    with pytest.warns(UserWarning):
        base = create_encoder("vit_base_patch16_224", **tiny)
        uni = create_encoder("uni", **tiny)
    with torch.inference_mode():
        assert base(batch(size=48)).shape == (2, 32)
        assert uni(batch(size=48)).shape == (2, 32)
    assert base.spec.mean == (0.5, 0.5, 0.5) and uni.spec.mean[0] == pytest.approx(0.485)
    assert uni.model.dynamic_img_size and uni.model.num_classes == 0
    assert torch.allclose(uni.model.blocks[0].ls1.gamma, torch.full((32,), 1e-5))  # init_values
    save_file({k: v.contiguous() for k, v in uni.model.state_dict().items()}, str(tmp_path / "uni.safetensors"))
    loaded = create_encoder("vit_large_patch16_224", weights=tmp_path / "uni.safetensors", **tiny)
    with torch.inference_mode():
        assert torch.allclose(loaded(batch(size=48)), uni(batch(size=48)))


def test_texture_stats_is_weight_free_deterministic_and_native_size():
    encoder = create_encoder("texture_stats")
    assert encoder.name == "texture_stats" and not encoder.random_init and encoder.dim == TEXTURE_DIM
    with torch.inference_mode():
        a, b = encoder(batch(3, 96)), encoder(batch(3, 96))
    assert a.shape == (3, TEXTURE_DIM) and torch.equal(a, b) and torch.isfinite(a).all()
    with pytest.raises(Harm3Error):
        create_encoder("texture_stats", weights="x.safetensors")


def _pink(size=128):
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (220, 150, 190)
    return image


def _dots(count, size=128, seed=0):
    import cv2

    image, rng = _pink(size), np.random.default_rng(seed)
    for _ in range(count):
        cv2.circle(image, tuple(int(v) for v in rng.integers(4, size - 4, 2)), 3, (60, 30, 90), -1)
    return image


def _encode(*images):
    with torch.inference_mode():
        return create_encoder("texture_stats")(torch.from_numpy(np.stack(images))).numpy()


def test_texture_features_see_dot_density_nests_and_a_20x_only_checker():
    few, many = _encode(_dots(5), _dots(60))
    assert many[F["small_dark_9"]] > 3 * few[F["small_dark_9"]] > 0
    nest = _pink()
    nest[30:100, 30:100] = (90, 50, 110)  # a large dark nest: not "small dark"
    n = _encode(nest)[0]
    assert n[F["nest_dark"]] > 0.2 and n[F["small_dark_9"]] < 0.05
    checker = _pink(256).astype(np.int16)
    yy, xx = np.mgrid[:256, :256]
    checker += (((yy + xx) % 2) * 2 - 1)[..., None].astype(np.int16) * 12
    checker = checker.astype(np.uint8)
    at10x = checker.reshape(128, 2, 128, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)  # 2×2 box mean
    c20, plain20 = _encode(checker, _pink(256))
    c10 = _encode(at10x)[0]
    assert c20[F["checker_1"]] > 0.3 > 100 * plain20[F["checker_1"]]
    assert c10[F["checker_1"]] == pytest.approx(plain20[F["checker_1"]], abs=1e-6)
    assert c20[F["hf_gray_2"]] < 0.01 * c20[F["hf_gray_1"]]  # period 2: nothing at 2 px


def test_texture_features_carry_the_phantom_signals():
    synth = pytest.importorskip("napari_harm3.core.synth.slide_phantom")
    size = (512, 512)
    low = synth.generate_slide(np.random.SeedSequence(7), s=-1.5, c=0.0, f=-2.0, size=size).image
    high = synth.generate_slide(np.random.SeedSequence(7), s=1.5, c=0.0, f=2.0, size=size).image
    tiles = lambda img: np.stack([img[y:y + 256, x:x + 256] for y in (0, 256) for x in (0, 256)])  # noqa: E731
    lo, hi = _encode(*tiles(low)), _encode(*tiles(high))
    assert hi[:, F["checker_1"]].sum() > lo[:, F["checker_1"]].sum()
    assert hi[:, F["small_dark_9"]].sum() > lo[:, F["small_dark_9"]].sum()


# --- the copy prepared for inference (BatchNorm folded, channels-last, optionally compiled) ----

def _relative_error(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_inference_copy_gives_the_plain_features_and_leaves_the_encoder_alone():
    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    with pytest.warns(UserWarning):
        plain = create_encoder("resnet50_trunc", input_size=64)
    fast = inference_encoder(plain)
    assert fast is not plain and inference_encoder(plain) is fast  # made once, then cached
    assert inference_encoder(fast) is fast  # preparing twice changes nothing
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # folded
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())  # the plain model is untouched
    assert fast.provenance() == plain.provenance() and fast.name == plain.name
    with torch.inference_mode():
        expected, got = plain(batch(4, 80)), fast(batch(4, 80))
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert _relative_error(got, expected) < 1e-4
    texture = create_encoder("texture_stats")
    assert inference_encoder(texture) is texture  # no convolution: nothing to gain


def test_inference_copy_follows_weights_from_a_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet50

    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    torch.manual_seed(5)
    full = resnet50(weights=None)
    for module in full.modules():  # non-trivial BatchNorm statistics, so folding has work to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(tmp_path / "r50.safetensors"))
    loaded = create_encoder("resnet50_trunc", weights=tmp_path / "r50.safetensors", input_size=64)
    fast = inference_encoder(loaded)
    with torch.inference_mode():
        expected, got = loaded(batch(3, 64, seed=2)), fast(batch(3, 64, seed=2))
    assert fast.weights_sha256 == loaded.weights_sha256
    assert _relative_error(got, expected) < 1e-4
    with pytest.warns(UserWarning):
        other = create_encoder("resnet50_trunc", input_size=64)  # random init: other features
    with torch.inference_mode():
        assert _relative_error(inference_encoder(other)(batch(3, 64, seed=2)), expected) > 0.1
        other.model.load_state_dict(loaded.model.state_dict())  # new weights, same object
        assert _relative_error(inference_encoder(other)(batch(3, 64, seed=2)), expected) < 1e-4


def test_inference_copy_of_a_tiny_vit_gives_the_plain_features():
    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    with pytest.warns(UserWarning):
        vit = create_encoder("vit_base_patch16_224", depth=1, embed_dim=32, num_heads=2, input_size=32, img_size=32)
    with torch.inference_mode():
        assert _relative_error(inference_encoder(vit)(batch(2, 48)), vit(batch(2, 48))) < 1e-4


def _tiny_conv_encoder():
    from torch import nn

    from napari_harm3.core.wsi.encoders import EncoderSpec, PatchEncoder

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    model[1].running_mean.uniform_(-0.5, 0.5)
    return PatchEncoder(EncoderSpec("tiny_conv", 8, 16, needs_weights=False), model, None).eval()


def test_a_failing_compile_falls_back_to_the_eager_copy(monkeypatch):
    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    def broken_compiler(model, **options):
        def run(x):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compiler)
    plain = _tiny_conv_encoder()
    compiled = inference_encoder(plain, compile=True)
    with pytest.warns(UserWarning, match="torch.compile failed.*no C.. compiler"), torch.inference_mode():
        got = compiled(batch(3, 16))
    with torch.inference_mode():
        assert _relative_error(got, plain(batch(3, 16))) < 1e-4 and compiled.model.compiled is None


@pytest.mark.slow
def test_compiled_copy_gives_the_plain_features():
    """torch.compile on a small conv encoder (the real ones take a minute to compile)."""
    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    plain = _tiny_conv_encoder()
    compiled = inference_encoder(plain, compile=True)
    assert compiled is not inference_encoder(plain)
    with warnings.catch_warnings(record=True) as caught, torch.inference_mode():
        warnings.simplefilter("always")
        assert _relative_error(compiled(batch(4, 16)), plain(batch(4, 16))) < 1e-4  # compiled or its fallback
    failed = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
    if failed:
        pytest.skip(f"torch.compile cannot build here; the eager fallback gave the right features ({failed[0]})")
    assert compiled.model.compiled is not None and compiled.model.batch_size == 4


def test_a_compiled_copy_serves_one_batch_size_and_runs_others_eagerly(monkeypatch):
    from napari_harm3.core.wsi.encoder_inference import inference_encoder

    compiled_calls = []

    def recording_compiler(model, **options):
        def run(x):
            compiled_calls.append(len(x))
            return model(x)
        return run

    monkeypatch.setattr(torch, "compile", recording_compiler)
    plain = _tiny_conv_encoder()
    compiled = inference_encoder(plain, compile=True)
    with torch.inference_mode():
        for n in (4, 4, 3, 4):  # a slide's last, short batch must not be compiled again
            assert _relative_error(compiled(batch(n, 16)), plain(batch(n, 16))) < 1e-4
    assert compiled_calls == [4, 4, 4]
