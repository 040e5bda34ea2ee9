"""harm3 view CASE_OR_FILES... [--mpp X]: open a case (or loose files) in the linked viewers.

One argument that is a case manifest (``case.yaml``, ``*.harm3.yaml``/``.json``) or a case
folder opens that case; one that is a cohort (its ``cohort.csv``, a folder holding one, or a
folder of case folders) opens the Worklist tab on it and its first case. Otherwise each file is assigned by a ``KEY=PATH`` prefix
(``t1_pre=``, ``t1_post=``, ``t2_pre=``, ``t2_post=``, ``mask=``, ``slide=``); a bare path is an
MRI volume (filling T1-pre, T1-post, T2-pre, T2-post in order) unless it looks like a slide.
``--mpp`` gives a slide without microns-per-pixel its value. ``--screenshots DIR`` writes the
pictures and exits (as ``harm3 demo --headless``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cohort.worklist import open_worklist
from ..errors import Harm3Error
from ..io.cohort import is_cohort_path
from ..vocabulary import MANIFEST_NAMES, SEQUENCES

FILE_KEYS = SEQUENCES + ("mask", "slide")
SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".tif", ".tiff", ".vms", ".vmu", ".scn", ".bif", ".svslide", ".isyntax")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="open a case or files in the linked MRI grid and the slide viewer",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="CASE_OR_FILES",
                        help="a case manifest/folder, a cohort (cohort.csv or a folder of cases), or files as KEY=PATH "
                             "(keys: " + ", ".join(FILE_KEYS) + ")")
    parser.add_argument("--mpp", type=float, default=None, help="µm per pixel of a slide whose metadata lacks it")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR",
                        help="write screenshots to DIR and exit")
    parser.set_defaults(handler=run)


def _looks_like_case(path: Path) -> bool:
    name = path.name.lower()
    if path.is_dir():
        return any((path / n).is_file() for n in MANIFEST_NAMES)
    return name in MANIFEST_NAMES or name.endswith((".harm3.yaml", ".harm3.yml", ".harm3.json"))


def looks_like_cohort(path: Path) -> bool:
    """A cohort table, a folder holding one, or a folder whose sub-folders are cases."""
    if _looks_like_case(path):
        return False
    if is_cohort_path(path) and (path.is_dir() or path.is_file()):
        return True
    return path.is_dir() and any(child.is_dir() and _looks_like_case(child) for child in path.iterdir())


def plan(paths, mpp=None) -> tuple[Path | None, dict]:
    """(manifest or None, files by key) for the command-line paths; Harm3Error if unclear."""
    if mpp is not None and not mpp > 0:
        raise Harm3Error(f"--mpp must be a positive number of µm per pixel, got {mpp}")
    if len(paths) == 1 and "=" not in paths[0] and _looks_like_case(Path(paths[0])):
        return Path(paths[0]), {}
    files: dict[str, str] = {}
    free_mri = [k for k in FILE_KEYS[:4]]
    for text in paths:
        key, sep, value = text.partition("=")
        if sep and key in FILE_KEYS:
            path = Path(value)
        else:
            path = Path(text)
            name = path.name.lower()
            if name.endswith(SLIDE_SUFFIXES):
                key = "slide"
            elif free_mri:
                key = free_mri[0]
            else:
                raise Harm3Error(f"{text}: more than four MRI volumes; name them with t1_pre=, t1_post=, t2_pre=, t2_post=")
        if not path.exists():
            raise Harm3Error(f"{path}: no such file or folder")
        if key in files:
            raise Harm3Error(f"{text}: {key} given twice")
        files[key] = str(path)
        if key in free_mri:
            free_mri.remove(key)
    return None, files


def run(args) -> int:
    from ... import launcher  # lazy: the CLI's one upward edge (the launcher starts Qt)

    out = args.screenshots
    if len(args.paths) == 1 and "=" not in args.paths[0] and looks_like_cohort(Path(args.paths[0])):
        worklist = open_worklist(args.paths[0])  # a bad table is one line here, before Qt starts
        if not any(row.openable for row in worklist.rows):
            raise Harm3Error(f"{args.paths[0]}: no case of the cohort can be opened")
        return launcher.open_viewer(mpp=args.mpp, out=out, headless=out is not None, cohort=Path(args.paths[0]))
    manifest, files = plan(args.paths, args.mpp)
    return launcher.open_viewer(manifest, files=files, mpp=args.mpp, out=out, headless=out is not None)
