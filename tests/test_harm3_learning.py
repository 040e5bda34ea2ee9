"""HARM3-Fusion learns what is planted (tiny config of the real classes, small crops).

Cohorts come from ``harm3_data.planted_samples`` (labels by core.synth's rule); cross-validation is
patient-level and stratified, with 3 folds (not the spec's 5) to keep the file within minutes on 2
shared cores. On the 90-case fusion cohort a logistic regression on hand-made oracle features (post/pre
tumour volume ratio, dot fraction) reaches a cross-validated AUC of about 0.94; each modality alone
about 0.80 (MRI) and 0.78 (slide). Trained models are cached per session and reused by the Grad-CAM,
model-folder and prediction tests.
"""

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_harm3.core.explain.gradcam import mass_inside, maps_on_volumes, mri_gradcam  # noqa: E402
from napari_harm3.core.models.harm3_fusion import create_model, model_config  # noqa: E402
from napari_harm3.core.models.zoo import read_model_folder  # noqa: E402
from napari_harm3.core.models.registry import load_ensemble  # noqa: E402
from napari_harm3.core.predict.pcr import predict_case  # noqa: E402
from napari_harm3.core.train.harm3_data import PLANTED_PREP, collate, planted_samples  # noqa: E402
from napari_harm3.core.train.harm3_train import TrainConfig, cross_validate, model_card, write_harm3_model  # noqa: E402

# the final epoch of the cosine schedule is kept: a 12-case inner validation split is too noisy to pick an epoch
TCFG = TrainConfig(epochs=20, lr=3e-3, lr_schedule="cosine", warmup_epochs=2, folds=3, patience=10, batch_size=8,
                   seed=0, device="cpu", selection="last")
N_FUSION = 90


@pytest.fixture(scope="session")
def one_thread():
    # 2 cores shared by many test runs: one thread is faster than two contending ones here
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fusion_cohort():
    return planted_samples(N_FUSION, seed=1, signal="fusion")


@pytest.fixture(scope="session")
def cv_results(one_thread, fusion_cohort):
    base = model_config("harm3_fusion_tiny")
    return {name: cross_validate(fusion_cohort, model_config("harm3_fusion_tiny", name), TCFG)
            for name in ("full", "mri_only", "slide_only")} | {"_base": base}


@pytest.mark.slow
def test_full_model_reaches_auc_085_and_beats_each_modality_alone(cv_results):
    full, mri, slide = (cv_results[k] for k in ("full", "mri_only", "slide_only"))
    print(f"\ncross-validated AUC: full {full.auc:.3f}, MRI only {mri.auc:.3f}, slide only {slide.auc:.3f}")
    print("AUC per fold (full):", [round(f.metrics_05["auc"], 3) for f in full.folds])
    assert full.auc >= 0.85
    assert full.auc > mri.auc
    assert full.auc > slide.auc
    # every fold's metrics are complete and the Youden threshold was chosen on training data
    for f in full.folds:
        assert set(f.metrics_05) >= {"auc", "accuracy", "f1", "sensitivity", "specificity", "brier"}
        assert 0.0 <= f.threshold_youden <= 1.0
        assert len(set(f.test_ids)) == len(f.test_ids)
    ids = [i for f in full.folds for i in f.test_ids]
    assert len(ids) == len(set(ids)) == N_FUSION                      # each patient tested exactly once


@pytest.mark.slow
def test_removing_the_ldvae_costs_auc_when_the_signal_is_the_change(one_thread):
    cohort = planted_samples(60, seed=2, signal="change")
    with_vae = cross_validate(cohort, model_config("harm3_fusion_tiny", "full", use_slide=False), TCFG)
    without = cross_validate(cohort, model_config("harm3_fusion_tiny", "no_ldvae", use_slide=False), TCFG)
    print(f"\nchange cohort AUC: LD-VAE {with_vae.auc:.3f}, no LD-VAE {without.auc:.3f}")
    assert with_vae.auc > without.auc


@pytest.fixture(scope="session")
def model_folder(cv_results, tmp_path_factory):
    cv = cv_results["full"]
    prep = PLANTED_PREP
    card = model_card(cv, prep, name="harm3-test", training_data={"cohort": "planted", "n_patients": N_FUSION},
                      encoder="planted", slide_feature_dim=16, warning="test model on planted phantoms")
    return write_harm3_model(tmp_path_factory.mktemp("models") / "harm3-test", cv, card)


@pytest.mark.slow
def test_model_folder_card_weights_and_plots(model_folder, cv_results):
    folder = read_model_folder(model_folder.path)
    assert folder.kind == "harm3-fusion" and len(folder.weight_files) == 3
    states = folder.load_state_dicts(verify=True)                # sha256 checked
    assert len(states) == 3
    card = folder.card.raw
    assert card["config"]["model"]["use_ldvae"] is True and card["config"]["train"]["lr"] == TCFG.lr
    assert card["inputs"]["slide"]["patch_size"] == 224 and card["inputs"]["slide"]["magnification"] == 20
    assert card["preprocessing"]["clip_percentiles"] == [0.5, 99.5]
    assert abs(card["metrics"]["summary_at_0.5"]["auc"]["mean"] - cv_results["full"].auc) < 1e-9
    for name in ("roc.png", "calibration.png", "README.md", "SHA256SUMS"):
        assert (folder.path / name).stat().st_size > 0


@pytest.mark.slow
def test_predict_case_is_the_fold_ensemble_and_flags_missing_inputs(model_folder, fusion_cohort):
    ensemble = load_ensemble(model_folder.path, "cpu")
    sample = fusion_cohort[0]
    pred = predict_case(ensemble, sample, gradcam=False)
    inputs, _ = collate([sample])
    with torch.no_grad():
        direct = [float(m(**inputs).probability[0]) for m in ensemble.models]
    np.testing.assert_allclose(pred.fold_probabilities, direct, rtol=1e-5)
    assert pred.probability == pytest.approx(np.mean(direct))
    assert pred.spread == pytest.approx(np.std(direct, ddof=1))
    assert pred.missing_inputs == ()
    images = sample.images.copy()
    images[3] = 0
    partial = replace(sample, images=images, present=(True, True, True, False), features=None, coords=None)
    pred2 = predict_case(ensemble, partial, gradcam=False)
    assert pred2.missing_inputs == ("t2_post", "slide")
    assert 0.0 < pred2.probability < 1.0


@pytest.mark.slow
def test_gradcam_mass_falls_inside_the_tumour(model_folder, cv_results, fusion_cohort):
    """The default map (HiResCAM of the pCR logit, evidence for and against: ``core/explain/gradcam.py``)
    puts most of its mass inside the phantom's tumour; the classic pCR-only Grad-CAM does not (figures there)."""
    ensemble = load_ensemble(model_folder.path, "cpu")
    fold_of = {cid: f.index for f in cv_results["full"].folds for cid in f.test_ids}
    inside = {(kind, seq): [] for kind in ("default", "classic") for seq in ("t1_pre", "t1_post", "t2_pre", "t2_post")}
    shares = []
    for sample in fusion_cohort[:12]:
        model = ensemble.models[fold_of[sample.case_id]]              # the model that never saw this case
        assert (model.config.gradcam_method, model.config.gradcam_evidence) == ("hirescam", "both")
        inputs, _ = collate([sample])
        args = [inputs[k] for k in ("mri", "present", "slide", "slide_mask", "slide_present")]
        tumour = sample.mask.data > 0                                 # the phantom's known tumour (T1-pre grid)
        for kind, options in (("default", {}), ("classic", {"method": "gradcam", "evidence": "for"})):
            cams = mri_gradcam(model, *args, **options)[0]            # (4, D, H, W) on the crop
            assert cams.shape == (4, 16, 32, 32) and cams.min() >= 0 and cams.max() <= 1
            maps = maps_on_volumes(cams, sample.prep, sample.volumes)
            for seq, vm in maps.items():
                assert vm.data.shape == sample.volumes[seq].data.shape
                assert np.array_equal(vm.affine, sample.volumes[seq].affine)
                inside[kind, seq].append(mass_inside(vm.data, tumour))
        shares.append(tumour[maps["t1_pre"].data > 0].mean())
    mean = {key: float(np.mean(v)) for key, v in inside.items()}
    t1 = np.mean([mean["default", "t1_pre"], mean["default", "t1_post"]])
    every = np.mean([v for (kind, _), v in mean.items() if kind == "default"])
    classic = np.mean([v for (kind, _), v in mean.items() if kind == "classic"])
    print(f"\nmass in tumour (tumour is {np.mean(shares):.2f} of the crop box): "
          + ", ".join(f"{seq} {mean['default', seq]:.2f}" for seq in ("t1_pre", "t1_post", "t2_pre", "t2_post"))
          + f"; T1 {t1:.2f}, all {every:.2f}; classic pCR-only Grad-CAM {classic:.2f}")
    assert t1 > 0.5                                                   # most of the T1 maps' mass
    assert every > 1.5 * np.mean(shares)                              # every volume well above chance
    assert every > classic + 0.1
