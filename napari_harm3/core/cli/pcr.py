"""``harm3 pcr MODEL_DIR CASE [--json OUT]`` — pCR probability of one case with HARM3-Fusion.

The case is opened in a case session (volumes through the registration seam, the slide's µm/px
from the manifest, the slide or ``--mpp``) and the model runs there, as in the viewer.
"""

from __future__ import annotations

import json

from ..atomic import atomic_path
from ..session import CaseSession
from ..session.reporting import RESEARCH_LINE, pcr_lines


def register(subparsers) -> None:
    parser = subparsers.add_parser("pcr", help="predict pathological complete response (HARM3-Fusion ensemble)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL_DIR", help="HARM3-Fusion model folder (card.json, weights/)")
    parser.add_argument("case", metavar="CASE", help="case folder or case manifest")
    parser.add_argument("--json", metavar="OUT", default=None, help="write the prediction as JSON")
    parser.add_argument("--mpp", type=float, default=None, help="µm/px of a slide whose metadata lacks it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    parser.set_defaults(handler=run)


def run(args) -> int:
    session = CaseSession(device=args.device)
    session.open(args.case)
    if args.mpp is not None and session.opened.slide is not None:
        session.set_slide_mpp(args.mpp)
    prediction = session.predict("pcr", args.model)
    print(f"{prediction.case_id}: " + " | ".join(pcr_lines(prediction)[1:4]))
    if prediction.missing_inputs:
        print(f"missing inputs (placeholders used): {', '.join(prediction.missing_inputs)}")
    print(RESEARCH_LINE)
    if args.json:
        with atomic_path(args.json, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(prediction.to_dict(), indent=2))
        print(f"written: {args.json}")
    session.close()
    return 0
