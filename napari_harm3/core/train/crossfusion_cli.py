"""``harm3 train crossfusion COHORT --out MODEL_DIR`` — cross-validated CrossFusion training.

COHORT is a cohort CSV (case id, survival time in months, event; see ``bags.py``). Features are
read from ``<cohort dir>/features/<encoder>/x{5,10,20}/pt_files/<case>.pt`` (``--features``) and
computed with the slide pipeline when missing (CLAM's ``biopsy`` tissue preset unless
``--tissue-preset``; recorded in the card so prediction computes a new slide's features the same
way). ``--config FILE`` (JSON or YAML) sets any
``TrainConfig`` field (``model``, ``model_overrides``, ``epochs``, ``accumulation`` …); command
line options win over the file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import Harm3Error
from ..hashing import sha256_file
from ..models.crossfusion import create_model
from .bags import TISSUE_PRESET, ensure_features, load_cohort_bags, read_cohort, usable_cases
from .config_file import read_config_file
from .crossfusion_model_folder import crossfusion_card, save_cv_model
from .crossfusion_train import TrainConfig, cross_validate


def add_arguments(parser) -> None:
    parser.add_argument("cohort", help="cohort CSV (case_id, survival_months, event[, patient_id, slide])")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fold (default 20)")
    parser.add_argument("--config", default=None, help="JSON/YAML file with training options")
    parser.add_argument("--features", default=None, help="feature root (default: <cohort dir>/features)")
    parser.add_argument("--encoder", default=None, help="feature encoder name (default: texture_stats)")
    parser.add_argument("--tissue-preset", default=None, choices=("biopsy", "tcga", "resection"),
                        help="CLAM tissue preset for slides without features (default: biopsy)")
    parser.add_argument("--intended-use", default=None, help="intended-use statement for the model card")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    parser.add_argument("--name", default=None, help="model name for the card (default: the folder name)")
    parser.add_argument("--warning", default=None, help="a warning printed at the top of the model card")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")


def run(args) -> int:
    values = read_config_file(args.config) if args.config else {}
    encoder = args.encoder or values.pop("encoder", "texture_stats")
    values.pop("encoder", None)
    warning = args.warning or values.pop("warning", None)
    intended_use = args.intended_use or values.pop("intended_use", None)
    preset = args.tissue_preset or values.pop("tissue_preset", None) or TISSUE_PRESET
    for key in ("warning", "intended_use", "tissue_preset"):
        values.pop(key, None)
    for key in ("folds", "epochs", "seed", "device"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    cfg = TrainConfig.from_dict(values)
    cohort = read_cohort(args.cohort)
    root = Path(args.features) if args.features else cohort.root / "features"

    def progress(fraction, message):
        print(f"[{100 * fraction:5.1f}%] {message}", flush=True)

    done = ensure_features(cohort, root, encoder, progress=progress, tissue_preset=preset, workers=cfg.workers)
    if done:
        print(f"computed features for {done} case(s) under {root / encoder}")
    cohort, dropped = usable_cases(cohort, root, encoder)
    for case_id, why in dropped:
        print(f"warning: case {case_id} left out: {why}")
    if len(cohort) == 0:
        raise Harm3Error(f"no case of {args.cohort} has patches at 5x, 10x and 20x (tissue preset {preset!r})")
    bags = load_cohort_bags(cohort, root, encoder)
    if cohort.events.sum() < cfg.folds * 2:
        raise Harm3Error(f"only {cohort.events.sum()} events in the cohort: too few for {cfg.folds}-fold cross-validation")
    result = cross_validate(bags, cohort.times, cohort.events, cfg,
                            patient_ids=[c.patient_id for c in cohort.cases], progress=progress)
    model_config = create_model(cfg.model, backbone_dim=bags[0].dim, n_bins=cfg.n_bins, **cfg.model_overrides).cfg.to_dict()
    training_data = {"cohort": cohort.path.name, "cohort_sha256": sha256_file(cohort.path), "n_cases": len(cohort),
                     "n_patients": len({c.patient_id for c in cohort.cases}), "n_events": int(cohort.events.sum()),
                     "feature_root": _shown_path(root, cohort.root), "folds": cfg.folds,
                     "excluded_cases": [{"case_id": c, "reason": why} for c, why in dropped]}
    card = crossfusion_card(args.name or Path(args.out).name, model_config, cfg, encoder, training_data, warning=warning,
                            intended_use=intended_use, tissue_preset=preset)
    folder = save_cv_model(args.out, result, card, overwrite=args.overwrite, bags=bags)
    mean, sd = result.cindex_mean_sd
    for f in result.folds:
        print(f"fold {f.index}: test C-index {f.test_cindex:.3f} (validation {f.validation_cindex:.3f}, epoch {f.best_epoch})")
    print(f"C-index {mean:.3f} ± {sd:.3f} over {cfg.folds} folds; model written to {folder.path}")
    return 0


def _shown_path(path: Path, base: Path) -> str:
    """``path`` relative to the cohort folder when inside it (model cards travel; /tmp paths mean nothing)."""
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)
