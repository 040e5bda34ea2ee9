"""Cross-validated training of CrossFusion (the paper's recipe, without its bin leak).

Per fold of a patient-level K-fold split (stratified on the event): survival bins are the
quartiles of the *training* part's uncensored times; the model is trained with the
discrete-time NLL loss (α = 0.2), Adam (lr 1e-4, weight decay 4e-6), batch 1 with gradient
accumulation; the epoch kept is the one with the best C-index on the inner validation split
(never the test fold), which is then scored once on the test fold.

Feature standardisation (``standardise``, on by default): each magnification's features are
centred and scaled by the *training* part's per-dimension mean and sd while training, and the
affine map is then folded exactly into that magnification's projection layer (Linear(Db→D)), so
the saved weights take raw encoder features like any CrossFusion checkpoint. Without it, small
encoder-feature differences between patients (texture statistics vary by a few hundredths)
hardly move the LayerNorm-ed projections and training stalls.

Class token (``cls_token_lr``, 0 by default: the token stays at its N(0, 1e-6) init; a deviation
from the authors' recipe, the model itself is unchanged). The final Pad-Transformer is post-norm
with the residual taken *after* the norm, so the class token's row is ``LN1(cls) + attn`` where
the attention part, through two Linear layers of init std 0.02, is ~1e-3 of a unit vector. While
the token is ~1e-6, LN1(cls) ≈ 0 (LayerNorm's eps dominates) and the token row is the attention
pooling of the slide's tokens, i.e. input-dependent. Trained, the token's gradient is ~10⁹ times its
size, Adam moves it by ~lr per step, and within a few steps LN1(cls) is a fixed vector of norm
≈ √D that swamps the attention part: every patient then gets (nearly) the same logits and the
risk output stays flat for hundreds of updates (measured: train-fold risk sd ~1e-4 over the first
5 epochs, train C-index ≈ 0.5). Keeping the token at its init keeps the readout an attention pool
(measured: risk sd 1e-3..0.25 by epoch 2..5).

What made the synthetic cohort learnable (a sweep of 16 configurations × 5 folds per round on a
16-core machine, README): width and data, not the schedule. With 58 cases every configuration
(embed 8-64, lr 1e-3..1e-2, 16-48 epochs, accumulation 1/4, dropout on/off, selection by C, by loss
or last, larger init) landed between 0.56 and 0.73 with fold sd 0.04-0.2; with 137 cases, embed 64
with the paper's dropouts and lr 1e-3 reached 0.754-0.768 at the old planted hazard and 0.784-0.807
(three seeds) at the current one, where embed 16 stayed at 0.68-0.71.

Schedule (``schedule="cosine"``): linear warm-up over ``warmup_epochs`` then cosine decay to 0,
stepped once per optimiser update. Selection (``selection``): with ~9 inner-validation cases the
best-validation-C epoch is noise (and the validation NLL barely moves), so ``"last"`` with the
cosine schedule is the stable choice for small cohorts.
"""

from __future__ import annotations

import copy
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..device import pick_device
from ..errors import Harm3Error
from ..models.crossfusion import create_model
from ..progress import ProgressFn, report, scaled
from ..survival.bins import assign_bins, quantile_cuts
from ..survival.loss import nll_survival_loss
from ..survival.metrics import concordance_index, mean_sd
from .cv import Fold, patient_folds


@dataclass(frozen=True)
class TrainConfig:
    model: str = "crossfusion"           # a name of crossfusion.MODEL_CONFIGS
    model_overrides: dict = field(default_factory=dict)  # e.g. {"embed_dim": 32, "scales": "source"}
    epochs: int = 20
    lr: float = 1e-4
    weight_decay: float = 4e-6
    accumulation: int = 32               # gradient accumulation steps (batch 1)
    alpha: float = 0.2                   # weight of the uncensored term in the NLL loss
    n_bins: int = 4
    folds: int = 5
    validation_fraction: float = 0.2
    standardise: bool = True             # training-fold feature standardisation, folded into the projections
    seed: int = 0
    device: str = "auto"
    threads: int = 0                     # CPU threads for torch (0: torch's default); 1 is fastest for tiny models on a busy machine
    workers: int = 1                     # folds trained at once in worker processes (CPU only; each uses ``threads`` or 1 thread);
                                         # the command line also computes missing features with this many processes
    schedule: str = "constant"           # "constant" lr, or "cosine": linear warm-up then cosine decay to 0
    warmup_epochs: float = 0.0           # linear warm-up length (epochs) for the cosine schedule
    cls_token_lr: float = 0.0            # lr multiplier of the class token (0: kept at its N(0, 1e-6) init, see module doc)
    selection: str = "cindex"            # epoch kept: "cindex" (best inner-validation C), "loss" (lowest validation NLL) or "last"

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise Harm3Error(f"schedule must be 'constant' or 'cosine', not {self.schedule!r}")
        if self.selection not in ("cindex", "loss", "last"):
            raise Harm3Error(f"selection must be 'cindex', 'loss' or 'last', not {self.selection!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise Harm3Error(f"unknown training option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass(frozen=True)
class FoldResult:
    index: int
    cuts: np.ndarray            # bin edges (months) from the training part
    t_max: float                # longest follow-up in the training part
    best_epoch: int
    validation_cindex: float
    test_cindex: float
    test_index: np.ndarray      # case indices of the test fold
    test_risk: np.ndarray       # (n_test,) −ΣS
    test_survival: np.ndarray   # (n_test, n_bins)
    history: tuple              # per epoch: {"epoch", "train_loss", "validation_cindex"}
    state_dict: dict = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class CVResult:
    folds: tuple
    times: np.ndarray
    events: np.ndarray

    @property
    def cindices(self) -> list:
        return [f.test_cindex for f in self.folds]

    @property
    def cindex_mean_sd(self) -> tuple:
        return mean_sd(self.cindices)

    def out_of_fold_risk(self) -> np.ndarray:
        """Each case's risk from the fold model that did not see it."""
        risk = np.full(len(self.times), np.nan)
        for f in self.folds:
            risk[f.test_index] = f.test_risk
        return risk


def _to_device(bags, device):
    return [(b.x5.to(device), b.x10.to(device), b.x20.to(device)) for b in bags]


def predict_risk(model, tensors, bins=None, censored=None, alpha: float = 0.2) -> tuple:
    """(risk (N,), survival (N, n_bins), mean NLL loss or nan) for a list of (x5, x10, x20) bags,
    in eval mode; the loss needs the cases' ``bins`` and ``censored`` tensors."""
    model.eval()
    risks, survs, losses = [], [], []
    with torch.inference_mode():
        for k, (x5, x10, x20) in enumerate(tensors):
            out = model(x5[None], x10[None], x20[None])
            risks.append(float(out.risk[0]))
            survs.append(out.survival[0].cpu().numpy())
            if bins is not None:
                losses.append(float(nll_survival_loss(out.hazards, bins[k:k + 1], censored[k:k + 1], alpha)))
    loss = float(np.mean(losses)) if losses else float("nan")
    return np.asarray(risks), np.stack(survs) if survs else np.zeros((0, 0)), loss


#: which bag feeds which projection of the model
_PROJECTION_INPUT = {"coarse": 0, "source": 1, "fine": 2}


def feature_statistics(tensors, indices) -> list:
    """[(mean (Db,), sd (Db,))] per magnification (5×, 10×, 20×) over every patch of ``indices``;
    sd floored at 1e-3 (near-constant features are not blown up)."""
    out = []
    for k in range(3):
        stacked = torch.cat([tensors[i][k] for i in indices])  # (ΣN, Db)
        out.append((stacked.mean(0), stacked.std(0).clamp_min(1e-3)))
    return out


def standardised(tensors, stats) -> list:
    """Each case's bags with ``(x − mean) / sd`` per magnification."""
    return [tuple((x - m) / s for x, (m, s) in zip(bags, stats)) for bags in tensors]


def fold_standardisation(state: dict, stats) -> dict:
    """Weights that take raw features: Linear(W, b) on (x − μ)/σ = Linear(W/σ, b − W·μ/σ)."""
    out = dict(state)
    for scale, k in _PROJECTION_INPUT.items():
        key = f"project.{scale}.0"
        if f"{key}.weight" not in state:
            continue
        mean, sd = (t.to(state[f"{key}.weight"].device) for t in stats[k])
        weight = state[f"{key}.weight"]                       # (D, Db)
        out[f"{key}.weight"] = weight / sd                    # (D, Db)
        out[f"{key}.bias"] = state[f"{key}.bias"] - (weight / sd) @ mean  # (D,)
    return out


def _safe_cindex(times, risk, events) -> float:
    if np.sum(events) == 0 or len(times) < 2:
        return float("nan")
    return concordance_index(times, risk, events)


def train_fold(tensors, times, events, fold, cfg: TrainConfig, backbone_dim: int,
               progress: ProgressFn | None = None, device=None) -> FoldResult:
    """Train one fold; ``tensors`` are all cases' (x5, x10, x20) on ``device``."""
    train, val, test = fold.train, fold.validation, fold.test
    cuts = quantile_cuts(times[train], events[train], cfg.n_bins)
    bins = torch.as_tensor(assign_bins(times, cuts), device=device)
    censored = torch.as_tensor(1 - events, device=device, dtype=torch.float32)
    torch.manual_seed(cfg.seed * 1000 + fold.index)
    rng = np.random.default_rng([cfg.seed, fold.index])
    model = create_model(cfg.model, backbone_dim=backbone_dim, n_bins=cfg.n_bins, **cfg.model_overrides).to(device)
    raw = tensors
    stats = None
    if cfg.standardise:
        if isinstance(model.project["source"], torch.nn.Identity):
            raise Harm3Error("standardise needs projection layers to fold into (backbone_dim ≠ embed_dim)")
        stats = feature_statistics(tensors, train)
        tensors = standardised(tensors, stats)
    cls_params = [p for n, p in model.named_parameters() if n == "cls_token"]
    other_params = [p for n, p in model.named_parameters() if n != "cls_token"]
    groups = [{"params": other_params}]
    if cls_params and cfg.cls_token_lr > 0:
        groups.append({"params": cls_params, "lr": cfg.lr * cfg.cls_token_lr})
    elif cls_params:
        for p in cls_params:
            p.requires_grad_(False)
    optimiser = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(train) // cfg.accumulation)
    scheduler = None
    if cfg.schedule == "cosine":
        total_steps = max(1, steps_per_epoch * cfg.epochs)
        warmup = int(round(cfg.warmup_epochs * steps_per_epoch))

        def factor(step):  # lr multiplier before optimiser step ``step`` (0-based)
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total_steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    best = (-np.inf, np.inf)
    best_state, best_epoch, best_val, history = None, -1, float("nan"), []
    for epoch in range(cfg.epochs):
        model.train()
        optimiser.zero_grad()
        order = rng.permutation(train)
        total = 0.0
        for step, i in enumerate(order):
            x5, x10, x20 = tensors[i]
            out = model(x5[None], x10[None], x20[None])
            loss = nll_survival_loss(out.hazards, bins[i:i + 1], censored[i:i + 1], cfg.alpha)
            (loss / cfg.accumulation).backward()
            total += float(loss.detach())
            if (step + 1) % cfg.accumulation == 0 or step + 1 == len(order):
                optimiser.step()
                optimiser.zero_grad()
                if scheduler is not None:
                    scheduler.step()
        val_risk, _, val_loss = predict_risk(model, [tensors[i] for i in val], bins[val], censored[val], cfg.alpha)
        val_c = _safe_cindex(times[val], val_risk, events[val])
        history.append({"epoch": epoch, "train_loss": total / len(order), "validation_cindex": val_c,
                        "validation_loss": val_loss})
        c_key = val_c if np.isfinite(val_c) else -np.inf
        l_key = val_loss if np.isfinite(val_loss) else np.inf
        if cfg.selection == "cindex":
            better = c_key > best[0] or (c_key == best[0] and l_key < best[1])
        elif cfg.selection == "loss":
            better = l_key < best[1] or (l_key == best[1] and c_key > best[0]) or best_state is None
        else:
            better = True
        key = (c_key, l_key)
        if better:
            best, best_epoch, best_val = key, epoch, val_c
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        report(progress, (epoch + 1) / cfg.epochs,
               f"fold {fold.index}: epoch {epoch + 1}/{cfg.epochs}, loss {total / len(order):.4f}, validation C {val_c:.3f}")
    if stats is not None:
        best_state = fold_standardisation(best_state, [(m.cpu(), sd.cpu()) for m, sd in stats])
    model.load_state_dict(best_state)
    test_risk, test_surv, _ = predict_risk(model, [raw[i] for i in test])  # saved weights, raw features
    return FoldResult(index=fold.index, cuts=cuts, t_max=float(times[train].max()), best_epoch=best_epoch,
                      validation_cindex=best_val, test_cindex=_safe_cindex(times[test], test_risk, events[test]),
                      test_index=np.asarray(test), test_risk=test_risk, test_survival=test_surv,
                      history=tuple(history), state_dict=best_state)


def case_folds(patient_ids, events, n_folds: int, seed: int, validation_fraction: float) -> list:
    """Patient-level folds (``cv.patient_folds`` over unique patients, stratified on having an
    event), expanded to case indices."""
    patient_ids = np.asarray(patient_ids)
    events = np.asarray(events)
    patients, inverse = np.unique(patient_ids, return_inverse=True)
    patient_event = np.zeros(len(patients), dtype=int)
    np.maximum.at(patient_event, inverse, events)
    try:
        folds = patient_folds(len(patients), n_folds, seed=seed, stratify=patient_event,
                              validation_fraction=validation_fraction)
    except ValueError as exc:
        raise Harm3Error(str(exc)) from exc

    def cases(pidx):
        return np.sort(np.flatnonzero(np.isin(inverse, pidx)))

    return [Fold(f.index, cases(f.train), cases(f.validation), cases(f.test)) for f in folds]


def cross_validate(bags, times, events, cfg: TrainConfig, patient_ids=None,
                   progress: ProgressFn | None = None) -> CVResult:
    """K-fold CV over patients; returns each fold's best model and test predictions."""
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=int)
    if len(bags) != len(times):
        raise Harm3Error("one bag set per case is needed")
    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    tensors = _to_device(bags, device)
    dims = {b.dim for b in bags}
    if len(dims) != 1:
        raise Harm3Error(f"cases have different feature sizes {sorted(dims)}; use one encoder for the cohort")
    patient_ids = np.arange(len(bags)) if patient_ids is None else patient_ids
    folds = case_folds(patient_ids, events, cfg.folds, cfg.seed, cfg.validation_fraction)
    if cfg.workers > 1 and device.type == "cpu" and len(folds) > 1:
        results = _train_folds_in_processes(tensors, times, events, folds, cfg, bags[0].dim, progress)
    else:
        results = []
        for k, fold in enumerate(folds):
            results.append(train_fold(tensors, times, events, fold, cfg, bags[0].dim,
                                      progress=scaled(progress, k / len(folds), (k + 1) / len(folds)), device=device))
    return CVResult(folds=tuple(results), times=times, events=events)


def _train_folds_in_processes(tensors, times, events, folds, cfg: TrainConfig, backbone_dim: int, progress) -> list:
    """Train the folds in ``cfg.workers`` spawned processes; same results as in one process
    (each fold seeds its own generators). Progress is reported as folds finish."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(folds)), mp_context=context) as pool:
        futures = [pool.submit(_train_fold_job, tensors, times, events, fold, cfg, backbone_dim) for fold in folds]
        results = []
        for k, future in enumerate(futures):
            results.append(future.result())
            report(progress, (k + 1) / len(folds), f"fold {k} done: test C {results[-1].test_cindex:.3f}")
    return results


def _train_fold_job(tensors, times, events, fold, cfg: TrainConfig, backbone_dim: int) -> FoldResult:
    torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
    return train_fold(tensors, times, events, fold, cfg, backbone_dim, device=torch.device("cpu"))
