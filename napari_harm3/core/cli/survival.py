"""``harm3 survival MODEL_DIR (CASE | --x5 F --x10 F --x20 F)`` — risk and S(t) with CrossFusion.

With a CASE the case is opened in a case session and its slide's features are computed (or
read from the case's cache), as in the viewer. With feature files (``.pt`` (N, D) tensors or CLAM
``h5_files`` ``.h5``) one slide's bags go straight through the fold ensemble. Every fold model
runs; the ensemble's mean and spread are printed (and written with ``--json``).
"""

from __future__ import annotations

import json

from ..atomic import atomic_path
from ..errors import Harm3Error
from ..models.registry import load_ensemble
from ..session import CaseSession
from ..session.reporting import RESEARCH_LINE, survival_lines
from ..survival.ensemble import predict_slide
from ..train.bags import load_bag


def register(subparsers) -> None:
    parser = subparsers.add_parser("survival", help="CrossFusion survival prediction for a case or one slide's features",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL_DIR", help="CrossFusion model folder")
    parser.add_argument("case", metavar="CASE", nargs="?", help="case folder or manifest (else give --x5/--x10/--x20)")
    parser.add_argument("--x5", help="5x feature file (.pt or CLAM .h5)")
    parser.add_argument("--x10", help="10x feature file")
    parser.add_argument("--x20", help="20x feature file")
    parser.add_argument("--mpp", type=float, default=None, help="µm/px of a slide whose metadata lacks it (with CASE)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the prediction as JSON")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(handler=run)


def _write_json(path, payload: dict, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))
    print(f"written: {path}")


def run_case(args) -> int:
    session = CaseSession(device=args.device)
    session.open(args.case)
    if args.mpp is not None and session.opened.slide is not None:
        session.set_slide_mpp(args.mpp)
    prediction = session.predict("survival", args.model)
    print(f"{prediction.case_id}:")
    for line in survival_lines(prediction):
        print(f"  {line}")
    print(RESEARCH_LINE)
    if args.json:
        _write_json(args.json, prediction.to_dict(), args.overwrite)
    session.close()
    return 0


def run(args) -> int:
    files = (args.x5, args.x10, args.x20)
    if args.case is not None:
        if any(files):
            raise Harm3Error("give a CASE or the three feature files --x5/--x10/--x20, not both")
        return run_case(args)
    if not all(files):
        raise Harm3Error("give a CASE, or all three feature files --x5, --x10 and --x20")
    ensemble = load_ensemble(args.model, args.device, analysis="survival")
    bags = [load_bag(p) for p in files]
    want = ensemble.models[0].cfg.backbone_dim
    for bag, path in zip(bags, files):
        if bag.shape[1] != want:
            raise Harm3Error(f"{path}: {bag.shape[1]}-d features, but the model expects {want}-d ({ensemble.card.encoder})")
    pred = predict_slide(list(ensemble.models), ensemble.card, *bags)
    print(f"risk (−ΣS): {pred.risk:.4f} ± {pred.risk_sd:.4f} over {len(ensemble.models)} fold model(s)")
    low, high = pred.curve_range
    if pred.times is None:
        print("  (the model card has no bin edges: survival per bin, not per month)")
        print("  bin       S mean      [min, max]")
        for k, (s, lo, hi) in enumerate(zip(pred.curve, low, high)):
            print(f"  {k:7d}   {s:.3f}       [{lo:.3f}, {hi:.3f}]")
    else:
        print("  months    S(t) mean   [min, max]")
        for t, s, lo, hi in zip(pred.times, pred.curve, low, high):
            print(f"  {t:7.1f}   {s:.3f}       [{lo:.3f}, {hi:.3f}]")
    if args.json:
        payload = {"model": str(args.model), "inputs": {"x5": args.x5, "x10": args.x10, "x20": args.x20},
                   "n_patches": {"x5": int(bags[0].shape[0]), "x10": int(bags[1].shape[0]), "x20": int(bags[2].shape[0])},
                   **pred.to_dict()}
        _write_json(args.json, payload, args.overwrite)
    return 0
