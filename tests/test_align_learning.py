"""HARM3-Fusion learns the treatment response only when the sessions are registered.

A phantom cohort whose patients lie differently at the post-treatment session (10–20° about a
random axis, 10–20 mm; ``make_cohort(motion=True)``). The pCR label is made to depend on the MRI
response only (slide score and label noise fixed at 0, so pCR = 1[m > −0.35]): the model must
compare the tumour before and after. The same cohort is prepared twice — through the manifest
transforms ``harm3 align`` wrote (Dask, two workers, one coarse 8 mm level) and without them —
and the tiny config of the real HARM3-Fusion class (MRI only) is cross-validated on each with the
same folds, seed and schedule. On the tight crop around the T1-pre tumour, unregistered
post-treatment crops show the tumour displaced by 10–30 mm; registered ones show it in place.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_harm3.core.cli.main import main  # noqa: E402
from napari_harm3.core.io.cohort import load_cohort  # noqa: E402
from napari_harm3.core.mri.prep import MriPrepConfig  # noqa: E402
from napari_harm3.core.models.harm3_fusion import model_config  # noqa: E402
from napari_harm3.core.synth.cohort import make_cohort  # noqa: E402
from napari_harm3.core.train.classification_metrics import roc_auc  # noqa: E402
from napari_harm3.core.train.harm3_data import sample_from_case  # noqa: E402
from napari_harm3.core.train.harm3_train import TrainConfig, cross_validate  # noqa: E402

N_CASES = 48
TIGHT = MriPrepConfig(size=(16, 32, 32), margin_mm=3.0, min_extent_mm=(16.0, 20.0, 20.0))
TCFG = TrainConfig(epochs=20, lr=3e-3, lr_schedule="cosine", warmup_epochs=2, folds=3, patience=100, batch_size=8,
                   seed=0, device="cpu", selection="last")


@pytest.mark.slow
def test_registration_lets_harm3_fusion_learn_the_response(tmp_path, capsys):
    start = time.perf_counter()
    table = make_cohort(tmp_path / "cohort", N_CASES, seed=5, motion=True, slide=False,
                        latents={"s": 0.0, "eps": 0.0}, workers=2)
    generated = time.perf_counter()
    assert main(["align", str(table), "--workers", "2", "--levels", "8", "--search", "20,20"]) == 0
    aligned = time.perf_counter()
    cases = load_cohort(table).cases
    assert all(set(c.transforms) == {"t1_post", "t2_pre", "t2_post"} for c in cases)
    before = torch.get_num_threads()
    torch.set_num_threads(1)                      # 2 shared cores: one thread beats two contending ones
    try:
        results = {}
        for name, chosen in (("registered", cases), ("not registered", [dataclasses.replace(c, transforms={}) for c in cases])):
            samples = [sample_from_case(c, TIGHT, use_slide=False) for c in chosen]
            results[name] = cross_validate(samples, model_config("harm3_fusion_tiny", "mri_only"), TCFG)
    finally:
        torch.set_num_threads(before)
    pooled = {k: roc_auc(*r.out_of_fold()) for k, r in results.items()}
    with capsys.disabled():
        print(f"\nmotion cohort n={N_CASES} (pCR {np.mean([c.labels.pcr for c in cases]):.2f}): AUC registered "
              f"{results['registered'].auc:.3f} (pooled {pooled['registered']:.3f}), not registered "
              f"{results['not registered'].auc:.3f} (pooled {pooled['not registered']:.3f}); "
              f"generate {generated - start:.0f} s, align {aligned - generated:.0f} s, "
              f"train both {time.perf_counter() - aligned:.0f} s")
    assert results["registered"].auc >= 0.8
    assert results["registered"].auc > results["not registered"].auc + 0.1
    assert pooled["registered"] > pooled["not registered"] + 0.1
