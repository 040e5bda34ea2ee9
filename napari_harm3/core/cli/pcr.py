"""``harm3 pcr MODEL_DIR CASE [--json OUT]`` — pCR probability of one case with HARM3-Fusion."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("pcr", help="predict pathological complete response (HARM3-Fusion ensemble)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL_DIR", help="HARM3-Fusion model folder (card.json, weights/)")
    parser.add_argument("case", metavar="CASE", help="case folder or case manifest")
    parser.add_argument("--json", metavar="OUT", default=None, help="write the prediction as JSON")
    parser.add_argument("--features", default=None, help="slide features root (default: <cohort>/features)")
    parser.add_argument("--no-gradcam", action="store_true", help="skip the Grad-CAM maps (faster)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..atomic import atomic_path
    from ..predict.pcr import predict_case

    prediction = predict_case(args.model, args.case, gradcam=not args.no_gradcam, features_root=args.features,
                             device=args.device)
    verdict = "pCR likely" if prediction.probability >= prediction.threshold else "pCR unlikely"
    print(f"{prediction.case_id}: p(pCR) = {prediction.probability:.3f} ± {prediction.spread:.3f} "
          f"({len(prediction.fold_probabilities)} fold models; {verdict} at {prediction.threshold:.2f})")
    if prediction.missing_inputs:
        print(f"missing inputs (placeholders used): {', '.join(prediction.missing_inputs)}")
    print("research use only; not for treatment decisions")
    if args.json:
        with atomic_path(args.json, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(prediction.to_dict(), indent=2))
        print(f"written: {args.json}")
    return 0
