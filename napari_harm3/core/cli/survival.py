"""``harm3 survival MODEL_DIR --x5 F --x10 F --x20 F`` — one slide's risk and S(t) from its feature files.

Feature files are ``.pt`` (N, D) tensors or CLAM ``h5_files`` ``.h5``. Every fold model of the
folder runs; the ensemble's mean and spread are printed (and written with ``--json``).
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("survival", help="CrossFusion survival prediction for one slide",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL_DIR", help="CrossFusion model folder")
    parser.add_argument("--x5", required=True, help="5x feature file (.pt or CLAM .h5)")
    parser.add_argument("--x10", required=True, help="10x feature file")
    parser.add_argument("--x20", required=True, help="20x feature file")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the prediction as JSON")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..atomic import atomic_path
    from ..device import pick_device
    from ..errors import Harm3Error
    from ..models.crossfusion import load_ensemble
    from ..survival.ensemble import predict_slide
    from ..train.bags import load_bag

    models, card = load_ensemble(args.model, device=pick_device(args.device))
    bags = [load_bag(p) for p in (args.x5, args.x10, args.x20)]
    want = models[0].cfg.backbone_dim
    for bag, path in zip(bags, (args.x5, args.x10, args.x20)):
        if bag.shape[1] != want:
            raise Harm3Error(f"{path}: {bag.shape[1]}-d features, but the model expects {want}-d "
                             f"({card.get('inputs', {}).get('encoder', 'its encoder')})")
    pred = predict_slide(models, card, *bags)
    print(f"risk (−ΣS): {pred.risk:.4f} ± {pred.risk_sd:.4f} over {len(models)} fold model(s)")
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
        with atomic_path(args.json, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(payload, indent=2))
    return 0
