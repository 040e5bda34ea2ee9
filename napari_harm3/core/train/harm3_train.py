"""Cross-validated training of HARM3-Fusion (spec §6) and the model folder it leaves behind.

Loss = BCE (positive class weighted for imbalance) + w_recon·L_recon + w_contra·L_contra
+ l1·Σ|w| (L2 is Adam's weight decay). Adam, lr 1e-4, weight decay 1e-6, batch 8, ≤ 200 epochs.
Patient-level stratified K-fold (``cv.patient_folds``); each fold keeps the epoch chosen by
``TrainConfig.selection``: best inner-validation AUC (then loss), lowest inner-validation loss, or the
final epoch of the schedule (small cohorts, where a 12-case validation AUC is too noisy to pick an
epoch) — never by the test fold; the Youden
threshold is chosen on the fold's training data. The K fold models form the ensemble.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..atomic import atomic_path
from ..device import pick_device
from ..errors import Harm3Error
from ..models.harm3_fusion import ABLATIONS, INPUTS, Harm3Fusion
from ..models.zoo import write_model_folder
from ..progress import report, scaled
from .classification_metrics import binary_metrics, plot_calibration, plot_roc, roc_auc, summarise, youden_threshold
from .cv import patient_folds
from .harm3_data import collate


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 8
    lr: float = 1e-4
    lr_schedule: str = "constant"       # "constant" or "cosine" (linear warm-up, then cosine decay to 0)
    warmup_epochs: int = 0
    weight_decay: float = 1e-6          # L2 (Adam)
    l1: float = 1e-6                    # L1 on all weights
    w_recon: float = 0.1                # weight of LD-VAE L_recon (paper silent; 1.0 swamped the BCE in tests)
    w_contra: float = 0.1               # weight of LD-VAE L_contra (paper silent)
    pos_weight: float | None = None     # None: n_negative / n_positive of the training split
    folds: int = 5
    validation_fraction: float = 0.2
    patience: int = 40                  # epochs without a better validation score before stopping
    selection: str = "val_auc"          # which epoch a fold keeps: "val_auc" (best inner-validation AUC, then
                                        # loss), "val_loss" (lowest inner-validation loss), "last" (final epoch)
    max_patches: int = 2048             # patches per slide per training step (random subset)
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class FoldResult:
    index: int
    state_dict: dict
    best_epoch: int
    history: list                        # per epoch: train loss, val loss, val AUC
    threshold_youden: float              # chosen on the fold's training data
    test_ids: tuple
    test_labels: np.ndarray
    test_probabilities: np.ndarray
    metrics_05: dict
    metrics_youden: dict


@dataclass(frozen=True, eq=False)
class CvResult:
    folds: tuple
    summary_05: dict
    summary_youden: dict
    model_config: object
    train_config: TrainConfig
    extra: dict = field(default_factory=dict)

    @property
    def auc(self) -> float:
        return self.summary_05["auc"]["mean"]

    def out_of_fold(self):
        y = np.concatenate([f.test_labels for f in self.folds])
        p = np.concatenate([f.test_probabilities for f in self.folds])
        return y, p


def harm3_loss(out, labels, pos_weight: float, tcfg: TrainConfig, model=None):
    """Total loss and its parts (floats) for one batch."""
    bce = F.binary_cross_entropy_with_logits(out.logit, labels, pos_weight=torch.tensor(pos_weight, device=labels.device))
    total = bce + tcfg.w_recon * out.recon_loss + tcfg.w_contra * out.contra_loss
    l1 = torch.zeros((), device=labels.device)
    if model is not None and tcfg.l1 > 0:
        l1 = sum(p.abs().sum() for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1)
        total = total + tcfg.l1 * l1
    parts = {"bce": bce, "recon": out.recon_loss, "contra": out.contra_loss, "l1": l1}
    return total, {k: float(v.detach()) for k, v in parts.items()}


def predict_probabilities(model, samples, batch_size: int = 8, max_patches: int | None = None, device="cpu"):
    model.eval()
    probs = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            inputs, _ = collate(samples[start:start + batch_size], max_patches, device=device)
            probs.append(model(**inputs).probability.float().cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def _evaluate(model, samples, pos_weight, tcfg, device):
    model.eval()
    probs, losses = [], []
    with torch.no_grad():
        for start in range(0, len(samples), tcfg.batch_size):
            inputs, labels = collate(samples[start:start + tcfg.batch_size], tcfg.max_patches, device=device)
            out = model(**inputs)
            loss, _ = harm3_loss(out, labels, pos_weight, tcfg)
            losses.append(float(loss) * len(labels))
            probs.append(out.probability.cpu().numpy())
    y = np.array([s.label for s in samples])
    p = np.concatenate(probs)
    return roc_auc(y, p), sum(losses) / max(1, len(samples)), p


def lr_factor(tcfg: TrainConfig, steps_per_epoch: int):
    """Multiplier of the learning rate at a step (``LambdaLR``): constant, or linear warm-up then cosine."""
    if tcfg.lr_schedule not in ("constant", "cosine"):
        raise Harm3Error(f"unknown learning-rate schedule {tcfg.lr_schedule!r} (constant, cosine)")
    warm = tcfg.warmup_epochs * steps_per_epoch
    total = max(1, tcfg.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if tcfg.lr_schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return factor


def train_fold(model_config, train, validation, tcfg: TrainConfig, seed: int = 0, progress=None):
    """Train one model; returns (best state dict, best epoch, history)."""
    if len(train) < 2:
        raise Harm3Error("too few training cases to train HARM3-Fusion")
    device = pick_device(tcfg.device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if tcfg.selection not in ("val_auc", "val_loss", "last"):
        raise Harm3Error(f"unknown model selection {tcfg.selection!r} (val_auc, val_loss, last)")
    model = Harm3Fusion(model_config).to(device)
    if getattr(model_config, "slide_standardise", False) and model_config.use_slide:
        bags = [np.asarray(s.features, np.float64) for s in train if s.features is not None and len(s.features)]
        if bags:
            allp = np.concatenate(bags)
            model.set_slide_statistics(allp.mean(0), allp.std(0))
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    y = np.array([s.label for s in train])
    pos_weight = tcfg.pos_weight if tcfg.pos_weight is not None else float((y == 0).sum() / max(1, (y == 1).sum()))
    best = (-math.inf, -math.inf)
    best_state, best_epoch, history, stale = None, -1, [], 0
    steps_per_epoch = math.ceil(len(train) / tcfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(tcfg, steps_per_epoch))
    for epoch in range(tcfg.epochs):
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for start in range(0, len(order), tcfg.batch_size):
            batch = [train[i] for i in order[start:start + tcfg.batch_size]]
            inputs, labels = collate(batch, tcfg.max_patches, rng, device=device)
            out = model(**inputs)
            loss, _ = harm3_loss(out, labels, pos_weight, tcfg, model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch)
        val_auc, val_loss, _ = _evaluate(model, validation, pos_weight, tcfg, device) if validation else (math.nan, math.nan, None)
        history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss, "val_auc": val_auc})
        if tcfg.selection == "val_auc":
            score = (val_auc if np.isfinite(val_auc) else -math.inf, -val_loss)
        elif tcfg.selection == "val_loss":
            score = (-val_loss if np.isfinite(val_loss) else -math.inf, val_auc)
        else:
            score = (float(epoch), 0.0)
        if best_state is None or score[0] > best[0] or (score[0] == best[0] and score[1] > best[1]):
            best, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        report(progress, (epoch + 1) / tcfg.epochs, f"epoch {epoch + 1}: val AUC {val_auc:.3f}")
        if stale >= tcfg.patience and tcfg.selection != "last":
            break
    return best_state, best_epoch, history


def cross_validate(samples, model_config, tcfg: TrainConfig | None = None, progress=None) -> CvResult:
    """Patient-level stratified K-fold training and evaluation (one model per fold)."""
    tcfg = tcfg or TrainConfig()
    labels = np.array([s.label for s in samples])
    if np.any([s.label is None for s in samples]):
        raise Harm3Error("every training case needs a pCR label")
    if len(np.unique(labels)) < 2:
        raise Harm3Error("the cohort has only one pCR class; cannot train a classifier")
    folds = patient_folds(len(samples), tcfg.folds, seed=tcfg.seed, stratify=labels,
                          validation_fraction=tcfg.validation_fraction)
    results = []
    for fold in folds:
        sub = scaled(progress, fold.index / len(folds), (fold.index + 1) / len(folds))
        train = [samples[i] for i in fold.train]
        val = [samples[i] for i in fold.validation]
        test = [samples[i] for i in fold.test]
        state, best_epoch, history = train_fold(model_config, train, val, tcfg, seed=tcfg.seed + fold.index, progress=sub)
        model = Harm3Fusion(model_config)
        model.load_state_dict(state)
        p_train = predict_probabilities(model, train, tcfg.batch_size, tcfg.max_patches)
        y_train = labels[fold.train]
        threshold = youden_threshold(y_train, p_train)
        p_test = predict_probabilities(model, test, tcfg.batch_size, tcfg.max_patches)
        y_test = labels[fold.test]
        results.append(FoldResult(
            index=fold.index, state_dict=state, best_epoch=best_epoch, history=history, threshold_youden=threshold,
            test_ids=tuple(s.case_id for s in test), test_labels=y_test, test_probabilities=p_test,
            metrics_05=binary_metrics(y_test, p_test, 0.5), metrics_youden=binary_metrics(y_test, p_test, threshold)))
        report(progress, (fold.index + 1) / len(folds), f"fold {fold.index}: test AUC {results[-1].metrics_05['auc']:.3f}")
    return CvResult(folds=tuple(results), summary_05=summarise([r.metrics_05 for r in results]),
                    summary_youden=summarise([r.metrics_youden for r in results]),
                    model_config=model_config, train_config=tcfg)


def ablation_study(samples, base_config, ablations, tcfg: TrainConfig, progress=None) -> dict:
    """{ablation: CvResult} over the same folds, for Table 2."""
    out = {}
    for k, name in enumerate(ablations):
        cfg = replace(base_config, **ABLATIONS[name])
        out[name] = cross_validate(samples, cfg, tcfg, scaled(progress, k / len(ablations), (k + 1) / len(ablations)))
    return out


# ---------------------------------------------------------------------- model folder

CARD_INTENDED_USE = ("Research use only: estimates the probability of pathological complete response (pCR) "
                     "after neoadjuvant chemo-immunotherapy in head-and-neck squamous cell carcinoma from "
                     "T1/T2 MRI before and after treatment and the pre-treatment biopsy slide. Not a medical device; "
                     "not for treatment decisions.")


def model_card(cv: CvResult, prep_config, *, name: str, training_data: dict, encoder: str,
               slide_feature_dim: int, warning: str | None = None, recipe: str | None = None) -> dict:
    """The card of a HARM3-Fusion model folder: every config choice, the input and preprocessing
    contracts, training data, per-fold and summary metrics, intended use."""
    folds = [{"fold": f.index, "best_epoch": f.best_epoch, "threshold_youden": f.threshold_youden,
              "n_test": int(len(f.test_labels)), "at_0.5": f.metrics_05, "at_youden": f.metrics_youden}
             for f in cv.folds]
    card = {
        "name": name,
        "kind": "harm3-fusion",
        "version": "1",
        "summary": "HARM3-Fusion (Wang, Liu et al., MICCAI 2025): LD-VAE multi-temporal fusion, relative-position "
                   "self-attention over T1/T2, attention pooling of the slide's patch features, slide→MRI "
                   "cross-attention, Conv1d + MLP head; the K cross-validation fold models form an ensemble.",
        "intended_use": CARD_INTENDED_USE,
        "not_for": "Clinical decisions; populations, scanners or stainings unlike the training data.",
        "inputs": {
            "mri": {"sequences": list(INPUTS[:4]), "reader": "core.io.mri.read_volume (affine kept, LPS world)",
                    "tumour_mask": "optional; sets the region of interest"},
            "slide": {"encoder": encoder, "feature_dim": int(slide_feature_dim), "patch_size": 224,
                      "magnification": 20, "layout": f"<features root>/{encoder}/x20_p224/…",
                      "tissue_rule": "patch kept if one of its four corners lies in tissue (HSV saturation)"},
            "missing_inputs": "any sequence, time point or the slide may be missing: learned placeholders, "
                              "flagged in the prediction",
        },
        "preprocessing": asdict(prep_config),
        "config": {"model": cv.model_config.to_dict(), "train": cv.train_config.to_dict(),
                   "preprocessing": asdict(prep_config)},
        "training_data": training_data,
        "metrics": {"cross_validation": f"{len(cv.folds)}-fold, stratified at patient level; epoch selection: "
                                        f"{cv.train_config.selection} (never the test fold); Youden threshold chosen "
                                        "on each fold's training data",
                    "summary_at_0.5": cv.summary_05, "summary_at_youden": cv.summary_youden, "folds": folds},
        "deviations": [
            "Cross-attention adds the slide queries back and a feed-forward sub-layer (config "
            "cross_attention_residual); Eq. 7 alone is cross_attention_residual=false.",
            "LD-VAE acts token by token on the extractor's pooled feature grid; reconstruction targets are "
            "detached (detach_recon_target).",
            "Temporal fusion concatenates along the token axis (paper text), not the sum of Eq. 3 (option).",
        ] + ([f"Grad-CAM targets the extractor's {cv.model_config.gradcam_layer} output (config gradcam_layer), "
              "finer than its last conv layer."] if getattr(cv.model_config, "gradcam_layer", "last") != "last" else [])
          + (["Slide patch features are z-scored per dimension with the training folds' statistics "
              "(config slide_standardise; buffers slide_mean / slide_std in the weights)."]
             if getattr(cv.model_config, "slide_standardise", False) else []),
        "licence": "BSD-3-Clause (code); weights: same terms as the training data allow",
        "citation": "Wang, Liu et al. HARM3-Fusion. MICCAI 2025.",
    }
    if warning:
        card["warning"] = warning
    if recipe:
        card["recipe"] = recipe
    return card


def write_harm3_model(folder, cv: CvResult, card: dict, overwrite: bool = False):
    """Weights (one safetensors per fold, sha256 in SHA256SUMS), card, ROC and calibration plots."""
    written = write_model_folder(folder, card, [f.state_dict for f in cv.folds], overwrite=overwrite)
    y, p = cv.out_of_fold()
    for fname, draw in (("roc.png", lambda ax: plot_roc(ax, [(f.test_labels, f.test_probabilities) for f in cv.folds])),
                        ("calibration.png", lambda ax: plot_calibration(ax, y, p, n_bins=5))):
        fig = Figure(figsize=(4.5, 4.2), dpi=100)
        draw(fig.add_subplot(1, 1, 1))
        fig.tight_layout()
        with atomic_path(written.path / fname, overwrite=True) as tmp:
            fig.savefig(tmp, format="png")
    return written
