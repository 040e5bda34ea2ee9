"""``harm3 train harm3 COHORT --out MODEL_DIR [--folds 5] [--epochs N] [--config FILE]``.

Reads the cohort (``core/io/case.py``), prepares the MRI and the slide features, trains HARM3-Fusion
with patient-level stratified cross-validation and writes a model folder (card, fold weights as
safetensors with sha256, ROC and calibration plots). ``--config`` is a JSON (or YAML) file with
optional sections ``model`` (Harm3Config fields), ``train`` (TrainConfig fields) and
``preprocessing`` (MriPrepConfig fields); command-line options win over the file.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from ..errors import Harm3Error
from ..hashing import sha256_path
from ..models.harm3_fusion import Harm3Config, model_config
from ..mri.prep import MriPrepConfig
from .classification_metrics import format_summary
from .config_file import read_config_file
from .harm3_data import samples_from_cohort
from .harm3_train import TrainConfig, cross_validate, model_card, write_harm3_model


def add_arguments(parser) -> None:
    parser.add_argument("cohort", help="cohort folder (manifest with 4 MRI volumes, slide and pCR label per case)")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per fold (default 200)")
    parser.add_argument("--config", default=None, help="JSON/YAML file with model / train / preprocessing sections")
    parser.add_argument("--model", default="harm3_fusion", help="base configuration (harm3_fusion, harm3_fusion_tiny)")
    parser.add_argument("--ablation", default="full",
                        help="Table 2 switch: full, no_ldvae, no_self_attention, no_cross_attention, mri_only, slide_only")
    parser.add_argument("--encoder", default="texture_stats", help="slide patch encoder (features at 20x, 224-px patches)")
    parser.add_argument("--features", default=None, help="slide features root (default COHORT/features)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    parser.add_argument("--name", default=None, help="model name in the card (default: the folder's name)")
    parser.add_argument("--warning", default=None, help="a warning printed at the top of the model card")
    parser.add_argument("--recipe", default=None, help="the command that re-creates this model (recorded in the card)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")


def build_configs(args):
    data = read_config_file(args.config, ("model", "train", "preprocessing")) if args.config else {}

    def tupled(values):
        return {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
                for k, v in values.items()}

    def check(cls, values, section):
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise Harm3Error(f"config section {section!r}: unknown field(s) {', '.join(unknown)}")
        return tupled(values)

    try:
        mcfg = model_config(args.model, args.ablation, **check(Harm3Config, data.get("model", {}), "model"))
    except ValueError as exc:
        raise Harm3Error(str(exc)) from exc
    train = check(TrainConfig, data.get("train", {}), "train")
    for key in ("folds", "epochs", "seed", "device"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    tcfg = replace(TrainConfig(), **train)
    prep = check(MriPrepConfig, data.get("preprocessing", {}), "preprocessing")
    prep.setdefault("size", mcfg.mri_size)
    pcfg = MriPrepConfig(**prep)
    if tuple(pcfg.size) != tuple(mcfg.mri_size):
        raise Harm3Error(f"preprocessing size {pcfg.size} differs from the model's mri_size {mcfg.mri_size}")
    return mcfg, tcfg, pcfg


def run(args) -> int:
    out = Path(args.out)
    if (out / "card.json").exists() and not args.overwrite:
        raise Harm3Error(f"{out} already holds a model; pass --overwrite or choose another folder")
    mcfg, tcfg, pcfg = build_configs(args)

    def progress(fraction, message=""):
        print(f"\r[{fraction * 100:5.1f}%] {message:<60}", end="", flush=True)

    print(f"harm3 train: reading {args.cohort}")
    samples = samples_from_cohort(args.cohort, pcfg, args.features, args.encoder, use_slide=mcfg.use_slide,
                                  progress=progress)
    print()
    widths = {s.features.shape[1] for s in samples if s.features is not None}
    if len(widths) > 1:
        raise Harm3Error(f"slide features of different widths in the cohort: {sorted(widths)}")
    if widths and mcfg.use_slide:
        mcfg = replace(mcfg, slide_dim=widths.pop())
    cv = cross_validate(samples, mcfg, tcfg, progress=progress)
    print()
    labels = [s.label for s in samples]
    training_data = {"cohort": str(Path(args.cohort).resolve().name), "n_patients": len(samples),
                     "n_pcr": int(sum(labels)), "n_non_pcr": int(len(labels) - sum(labels)),
                     "manifest_sha256": _manifest_hash(Path(args.cohort), sha256_path)}
    card = model_card(cv, pcfg, name=args.name or out.name, training_data=training_data, encoder=args.encoder,
                      slide_feature_dim=mcfg.slide_dim, warning=args.warning, recipe=args.recipe)
    folder = write_harm3_model(out, cv, card, overwrite=args.overwrite)
    fold_aucs = ', '.join(format(f.metrics_05['auc'], '.3f') for f in cv.folds)
    print(f"AUC per fold: {fold_aucs}")
    print(f"at 0.5:    {format_summary(cv.summary_05)}")
    print(f"at Youden: {format_summary(cv.summary_youden)}")
    print(f"model folder: {folder.path}")
    return 0


def _manifest_hash(cohort: Path, hasher):
    for name in ("cohort.csv", "cohort.json", "cohort.yaml", "manifest.json", "manifest.yaml", "cases.csv"):
        if (cohort / name).is_file():
            return hasher(cohort / name)
    return None
