"""``harm3 train {crossfusion,harm3} COHORT --out MODEL_DIR …`` — cross-validated training.

Each model kind's options and runner live next to its training code
(``core/train/crossfusion_cli.py``, ``core/train/harm3_cli.py``), each with
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import importlib

KINDS = {
    "crossfusion": ("napari_harm3.core.train.crossfusion_cli", "CrossFusion survival model (slide patches at 5x, 10x, 20x)"),
    "harm3": ("napari_harm3.core.train.harm3_cli", "HARM3-Fusion pCR model (4 MRI volumes + slide)"),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model with patient-level cross-validation",
                                   description=__doc__.splitlines()[0])
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    for kind, (module_name, help_text) in KINDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        sub = kinds.add_parser(kind, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
