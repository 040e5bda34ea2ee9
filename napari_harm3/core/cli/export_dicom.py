"""``harm3 export-dicom CASE --out DIR`` — the case's results as standard DICOM objects.

The case is opened in a case session, both models run (the zoo's, or ``--pcr-model`` /
``--survival-model``), the tumour masks are measured, and the session writes into DIR, each
object in its source study with a new series and referencing its source images: a Segmentation
per MRI series with masks (and masks propagated from pre to post), a Parametric Map per MRI
class-activation map, a TID 1500 Structured Report of the numbers and the PDF report as an
Encapsulated PDF. DIR is written in one rename at the end (nothing half-written); an existing
non-empty DIR needs ``--overwrite``. Segmentations and maps need DICOM MRI; with NIfTI-only MRI
the SR and PDF are written against the slide's DICOM if the slide is DICOM, else nothing is written.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..device import pick_device
from ..errors import Harm3Error
from ..session import CaseSession
from ..session.dicom_results import dicom_sources
from ..session.runs import predict_available


def register(subparsers) -> None:
    parser = subparsers.add_parser("export-dicom", help="write the case's results as DICOM SR, SEG, parametric maps, PDF",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("case", metavar="CASE", help="case folder or its manifest")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the DICOM objects into")
    parser.add_argument("--deidentify", action="store_true",
                        help="pseudonym instead of name and ID; no dates or other identifiers (as harm3 report)")
    parser.add_argument("--pseudonym-salt", default="", help="secret mixed into the pseudonym (as harm3 report)")
    parser.add_argument("--pcr-model", type=Path, help="HARM3-Fusion model folder (default: the zoo's)")
    parser.add_argument("--survival-model", type=Path, help="CrossFusion model folder (default: the zoo's)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.set_defaults(handler=run)


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not args.overwrite:
        raise Harm3Error(f"{out} exists and is not empty; pass --overwrite or choose another folder")
    pick_device(args.device)  # a wrong --device is an error before any work
    start = time.perf_counter()
    session = CaseSession(device=args.device)
    session.open(args.case)
    sources, slide, _ = dicom_sources(session.case)
    if not sources and slide is None:  # before the models run: nothing could be written
        raise Harm3Error(f"{session.ref.case_id}: nothing to export as DICOM: the case has no DICOM input "
                         "(DICOM objects must reference DICOM MRI series or a DICOM slide)")
    notes = predict_available(session, {"pcr": args.pcr_model, "survival": args.survival_model})
    written, notes = session.export_dicom(out, deidentify=args.deidentify, salt=args.pseudonym_salt,
                                          overwrite=args.overwrite, notes=notes)
    for item in written:
        what = f"{item.kind} {item.sequence}" if item.sequence else item.kind
        print(f"wrote {item.path} ({what})")
    for note in notes:
        print(f"note: {note}")
    print(f"{len(written)} DICOM objects in {time.perf_counter() - start:.1f} s; research use only")
    session.close()
    return 0
