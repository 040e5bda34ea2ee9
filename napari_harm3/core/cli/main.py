"""``harm3`` — the command line of napari-harm3.

Each sub-command lives in its own module of this package with a ``register(subparsers)``
function; handlers import heavy libraries (torch, openslide) only when they run, so
``harm3 --help`` is instant. A :class:`~napari_harm3.core.errors.Harm3Error` becomes one
readable line on stderr and exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import Cancelled, Harm3Error, user_message

#: command modules, in the order ``harm3 --help`` lists them
COMMAND_MODULES = (
    "demo",
    "view",
    "info",
    "synth",
    "validate",
    "register",
    "align",
    "patch",
    "extract",
    "train",
    "pcr",
    "survival",
    "import_crossfusion",
    "report",
    "export_dicom",
    "pacs",
    "predict",
)


def build_parser() -> argparse.ArgumentParser:
    from ... import __version__

    parser = argparse.ArgumentParser(
        prog="harm3",
        description="napari-harm3: head-and-neck cancer case viewer, models and reports (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"napari-harm3 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet in this checkout
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
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
