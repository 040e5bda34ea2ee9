"""``harm3 synth --n N --seed S --out DIR [--size small|demo] [--workers K] [--motion]`` — phantom cohort.

Writes one folder per synthetic patient (MRI volumes and tumour masks as NIfTI, a pyramidal
TIFF biopsy slide, ``case.yaml`` with labels and latent scores) and ``cohort.csv``. With
``--motion`` the patient lies differently at the post-treatment session (rotation 10–20° about
a random axis, shift 10–20 mm; T1/T2 pre share one position, T1/T2 post another), and the true
transform is recorded in the manifest's ``synthetic.motion`` (``harm3 align`` should find it).
"""

from __future__ import annotations

import time

import numpy as np

from ..io.cohort import load_cohort
from ..io.dicom_write import write_case_dicom
from ..synth.cohort import make_cohort


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="generate a synthetic phantom cohort (MRI + slide + labels)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="number of patients")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default 0); same seed, same cohort")
    parser.add_argument("--out", required=True, help="output folder (must not hold a cohort.csv yet)")
    parser.add_argument("--size", choices=("small", "demo"), default="small",
                        help="small: 24×96×96 MRI, 3072×2048 slide (tests); demo: 40×224×224, 12288×8192")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--dicom", action="store_true",
                        help="write each case's MRI as DICOM series of one study (dicom/<sequence>/) instead of NIfTI")
    parser.add_argument("--motion", action="store_true",
                        help="move the patient between the pre and post sessions (10-20°, 10-20 mm; truth in the manifest)")
    parser.set_defaults(handler=run)


def _as_dicom(cohort) -> None:
    """Each case's MRI volumes as DICOM series (the manifest then points at them; the NIfTI
    images it no longer names are removed)."""

    for case in cohort.cases:
        nifti = [case.mri_source(key)[0] for key in case.mri]
        write_case_dicom(case)
        for path in nifti:
            path.unlink()


def run(args) -> int:


    start = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f} %] {message}", flush=True)

    table = make_cohort(args.out, args.n, args.seed, args.size, workers=args.workers, motion=args.motion,
                        progress=progress)
    cohort = load_cohort(table)
    if args.dicom:
        _as_dicom(cohort)
    pcr, event = cohort.pcr, cohort.event
    print(f"wrote {len(cohort)} cases and {table} in {time.perf_counter() - start:.1f} s: "
          f"pCR {int(np.nansum(pcr))}/{len(cohort)} ({np.nanmean(pcr) * 100:.0f} %), "
          f"censored {int(np.sum(event == 0))}/{len(cohort)}, "
          f"median follow-up {np.nanmedian(cohort.survival_months):.1f} months")
    return 0
