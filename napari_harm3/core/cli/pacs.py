"""``harm3 pacs find|get|send`` — the PACS, both ways (config: ``--config FILE``, see README "PACS").

* ``harm3 pacs find --patient ID`` / ``--study UID`` — C-FIND: the studies and their series, as a table.
* ``harm3 pacs get STUDY_UID --out CASE_DIR`` — C-GET (or C-MOVE) of the study into a scratch
  folder, series assigned to sequences by the config's rules, ``case.yaml`` written; the case
  folder appears only when complete (any failure removes everything).
* ``harm3 pacs send DIR`` — C-STORE of every object under DIR, refused if any file is not complete DICOM.

Patient names, IDs and accession numbers are not printed (nor logged) unless ``--show-identifiers``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..errors import Harm3Error
from ..pacs.config import load_pacs_config
from ..pacs.query import find_studies
from ..pacs.store import send_folder
from ..pacs.study_case import retrieve_case


def register(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="PACS config file (default: $HARM3_PACS_CONFIG, "
                                                    "then ~/.config/harm3/pacs.yaml)")
    common.add_argument("--show-identifiers", action="store_true",
                        help="print (and let the DICOM library log) patient names, IDs and accession numbers")
    parser = subparsers.add_parser("pacs", help="find, retrieve and send studies (DICOM C-FIND/C-GET/C-MOVE/C-STORE)",
                                   description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    find = commands.add_parser("find", parents=[common], help="search studies by patient ID or study UID")
    which = find.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", metavar="ID", help="patient ID (wildcards * and ? allowed)")
    which.add_argument("--study", metavar="UID", help="study instance UID")
    find.set_defaults(handler=run_find)
    get = commands.add_parser("get", parents=[common], help="retrieve a study into a case folder")
    get.add_argument("study_uid", metavar="STUDY_UID")
    get.add_argument("--out", type=Path, required=True, metavar="CASE_DIR", help="case folder to create (must not exist)")
    get.add_argument("--assign", action="append", default=[], metavar="SEQ=SERIES_UID",
                     help="take this series for this sequence (t1_pre, …), whatever the rules say; repeatable")
    get.add_argument("--case-id", help="case id in the manifest (default: the folder's name)")
    get.set_defaults(handler=run_get)
    send = commands.add_parser("send", parents=[common], help="C-STORE every DICOM object under a folder")
    send.add_argument("folder", type=Path, metavar="DIR")
    send.set_defaults(handler=run_send)


def _config(args):

    return dataclasses.replace(load_pacs_config(args.config), log_identifiers=bool(args.show_identifiers))


def format_table(rows: list[dict], indent: str = "") -> list[str]:
    """Rows of equal keys as aligned text columns (header first)."""
    if not rows:
        return []
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    line = lambda values: indent + "  ".join(str(v).ljust(widths[k]) for k, v in zip(keys, values)).rstrip()  # noqa: E731
    return [line(keys)] + [line([r.get(k, "") for k in keys]) for r in rows]


def run_find(args) -> int:

    config = _config(args)
    studies = find_studies(config, patient_id=args.patient, study_uid=args.study)
    if not studies:
        print(f"no studies found on {config.where()}")
        return 0
    print("\n".join(format_table([s.row(args.show_identifiers) for s in studies])))
    for study in studies:
        print(f"\nseries of study {study.uid}:")
        rows = [{"number": "" if r.number is None else r.number, "modality": r.modality,
                 "objects": "" if r.n_instances is None else r.n_instances, "description": r.description,
                 "series": r.uid} for r in study.series]
        print("\n".join(format_table(rows, indent="  ")) if rows else "  (none)")
    if not args.show_identifiers:
        print("\n(patient names and IDs hidden; --show-identifiers shows them)")
    return 0


def _overrides(items) -> dict:
    out = {}
    for item in items:
        key, sep, uid = item.partition("=")
        if not sep or not key.strip() or not uid.strip():
            raise Harm3Error(f"--assign {item!r}: expected SEQUENCE=SERIES_UID, e.g. t1_pre=1.2.3")
        out[key.strip()] = uid.strip()
    return out


def _printer():
    state = {"step": -1}

    def progress(fraction: float, message: str) -> None:
        step = int(fraction * 10)
        if step != state["step"]:
            state["step"] = step
            print(f"[{fraction * 100:5.1f} %] {message}", flush=True)

    return progress


def run_get(args) -> int:

    config = _config(args)
    result = retrieve_case(config, args.study_uid, args.out, overrides=_overrides(args.assign),
                           case_id=args.case_id, progress=_printer())
    print("\n".join(result.lines()))
    if result.assignment.missing:
        print(f"no series for: {', '.join(result.assignment.missing)}")
    r = result.retrieval
    print(f"wrote {result.manifest}: {r.n_objects} objects, {r.n_bytes / 1e6:.1f} MB by {r.method} in "
          f"{r.seconds:.1f} s ({r.megabytes_per_second:.0f} MB/s)")
    return 0


def run_send(args) -> int:

    config = _config(args)
    result = send_folder(config, args.folder, progress=None)
    for obj in result.objects:
        print(f"{'ok    ' if obj.ok else 'FAILED'}  {obj.path.relative_to(args.folder)}  {obj.status}")
    print(f"sent {result.n_ok} of {len(result.objects)} objects ({result.n_bytes / 1e6:.1f} MB) to "
          f"{config.where()} in {result.seconds:.1f} s")
    if result.failed:
        raise Harm3Error(f"{len(result.failed)} of {len(result.objects)} objects were not stored")
    return 0
