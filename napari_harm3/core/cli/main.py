"""``harm3`` — the command line of napari-harm3.

Each sub-command lives in its own module of this package with a ``register(subparsers)``
function. A :class:`~napari_harm3.core.errors.Harm3Error` becomes one readable line on stderr
and exit status 2; nothing half-written is left behind.

Imports (the house rule, also in the README, "Code layout and the import rule"):

- A module imports what it needs at its top — torch, h5py, openslide, matplotlib included. A
  library module is imported only when its work is needed, so it has no reason to defer.
- The command line stays quick because :func:`build_parser` imports **only the command that
  runs**: the others are listed from :data:`COMMANDS` (name and one-line help), so
  ``harm3 --help`` imports no command module at all, and a command module may import its
  heavy libraries at its top like any other module (``harm3 pcr --help`` then pays for torch,
  as ``harm3 pcr`` does). ``tests/test_imports_policy.py`` checks that the table's help texts
  are the modules' own and that ``harm3 --help`` imports no command module.
- A function-local import is a genuine exception with a ``# lazy: <reason>`` comment: an import
  cycle (naming it), an optional dependency that may be absent, the glue's Qt imports, and the
  command line's one upward edge — ``demo``/``view`` reaching ``napari_harm3.launcher``, which
  imports Qt. ``tests/test_imports_policy.py`` fails on any other, unless the module is on its
  ``ALLOWED`` list (with the reason) or, for now, its temporary ``PENDING`` list.
- Core never imports qtpy/napari, not even through matplotlib: use
  ``matplotlib.figure.Figure`` (it saves PNG and PDF by itself), never ``pyplot`` or
  ``matplotlib.use``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ... import __version__
from ..errors import Cancelled, Harm3Error, user_message

#: the commands, in the order ``harm3 --help`` lists them: module name -> one-line help. The
#: command is the module's name with ``-`` for ``_``; its module is imported only when it runs.
COMMANDS = {
    "demo": "open the demo patient (synthetic) in the linked viewers",
    "view": "open a case or files in the linked MRI grid and the slide viewer",
    "info": "summarise MRI volumes, DICOM folders, tumour masks and slides",
    "synth": "generate a synthetic phantom cohort (MRI + slide + labels)",
    "validate": "check a case manifest or a cohort table, listing every problem",
    "register": "register two MRI volumes (rigid or affine, mutual information)",
    "align": "register a case's (or cohort's) volumes onto T1-pre",
    "patch": "segment tissue and write CLAM patch coordinates",
    "extract": "patch features at several magnifications (CLAM files)",
    "train": "train a model with patient-level cross-validation",
    "pcr": "predict pathological complete response (HARM3-Fusion ensemble)",
    "survival": "CrossFusion survival prediction for a case or one slide's features",
    "import_crossfusion": "make a model folder from an authors' CrossFusion checkpoint",
    "report": "write a per-patient report (PDF + JSON)",
    "export_dicom": "write the case's results as DICOM SR, SEG, parametric maps, PDF",
    "pacs": "find, retrieve and send studies (DICOM C-FIND/C-GET/C-MOVE/C-STORE)",
    "predict": "predict pCR and survival for every case of a cohort (resumable)",
}

#: the command modules registered (tests narrow this to the one they exercise)
COMMAND_MODULES = tuple(COMMANDS)


def command_name(module_name: str) -> str:
    return module_name.replace("_", "-")


def command_in(argv) -> str | None:
    """The sub-command named on the command line: its first word that is not an option."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(load=None) -> argparse.ArgumentParser:
    """The ``harm3`` parser; the modules of the commands in ``load`` (``None``: all) register
    themselves in full, the others are listed by name and help only."""
    parser = argparse.ArgumentParser(
        prog="harm3",
        description="napari-harm3: head-and-neck cancer case viewer, models and reports (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"napari-harm3 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        name = command_name(module_name)
        if load is None or name in load:
            importlib.import_module(f"{__package__}.{module_name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=COMMANDS[module_name], add_help=False)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(load={command_in(argv)})
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    try:
        result = args.handler(args)
    except Harm3Error as exc:
        print(f"harm3: error: {user_message(exc, 'cli')}", file=sys.stderr)
        return 2
    except Cancelled:
        print("harm3: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("harm3: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
