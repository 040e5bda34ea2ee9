"""Write synthetic cases and cohorts to disk: NIfTI volumes and masks, a pyramidal TIFF slide,
``case.yaml`` with labels and latent scores, and ``cohort.csv``.

Case folder layout::

    <case_dir>/case.yaml
    <case_dir>/mri/{t1_pre,t1_post,t2_pre,t2_post}.nii.gz
    <case_dir>/mri/tumour_{t1_pre,…}.nii.gz        (uint8 label volumes on each scan's grid)
    <case_dir>/slide/biopsy.tiff                     (20×, 0.5 µm/px, Aperio-style pyramid)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import Harm3Error
from ..io.case import Case, CaseLabels, load_case, save_case
from ..io.cohort import write_cohort_table
from ..io.mri import Volume, write_nifti
from ..io.tiff_writer import write_pyramidal_tiff
from ..progress import ProgressFn, report, scaled
from .latent import PatientLatents, case_seed, draw_latents, seed_streams
from .motion import random_rigid_motion
from .mri_phantom import SEQUENCE_KEYS, generate_mri
from .slide_phantom import (
    BAND_ROWS,
    BASE_MPP,
    BASE_OBJECTIVE_POWER,
    plan_slide,
    render_band,
)

#: bump when the generators change what a seed produces (part of the demo cache key)
GENERATOR_VERSION = 2  # 2: survival log-hazard weights 1.5 → 2.25
SIZES = ("small", "demo")
TILE_SIZE = 256  # BAND_ROWS is a multiple of it, so a band holds whole tile rows
#: opt-in motion between the sessions: rotation 10–20° about a random axis through the neck's
#: centre and a 10–20 mm shift (what repositioning weeks apart looks like)
MOTION_DEGREES = 20.0
MOTION_SHIFT_MM = 20.0


@dataclass(frozen=True)
class GeneratedCase:
    """What :func:`make_cohort` records per case (picklable, for worker processes)."""

    case_id: str
    manifest: Path
    labels: CaseLabels
    seconds: float


def _frame_of_reference_uid(seed: int) -> str:
    """A deterministic DICOM-style UID (2.25.<integer>) for the patient's frame of reference."""
    return "2.25." + str(int(np.random.SeedSequence([int(seed), 7]).generate_state(2, np.uint64)[0]))


def session_motion(seed: int, max_degrees: float = MOTION_DEGREES, max_shift_mm: float = MOTION_SHIFT_MM):
    """The patient's repositioning between the pre- and post-treatment sessions (seeded; its own
    random stream, so the other draws of the patient do not move): (WorldTransform pre → post,
    description for the manifest)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    return random_rigid_motion(rng, max_degrees, max_shift_mm)


def _write_mri(case_dir: Path, seed: int, latents: PatientLatents, size: str, post_shift_mm, post_motion=None):

    scans = generate_mri(seed_streams(seed)["mri"], latents.m, size=size, post_shift_mm=post_shift_mm,
                         post_motion=None if post_motion is None else post_motion.matrix)
    frame = _frame_of_reference_uid(seed)
    mri, masks = {}, {}
    for key in SEQUENCE_KEYS:
        scan = scans[key]
        image_path = case_dir / "mri" / f"{key}.nii.gz"
        mask_path = case_dir / "mri" / f"tumour_{key}.nii.gz"
        write_nifti(Volume(scan.data, scan.affine, key, str(image_path), scan.description,
                           frame_of_reference_uid=frame), image_path)
        write_nifti(Volume(scan.mask, scan.affine, f"tumour_{key}", str(mask_path), f"tumour mask, {key}",
                           frame_of_reference_uid=frame), mask_path)
        mri[key], masks[key] = image_path, mask_path
    return mri, masks


def _label_image(case_id: str) -> np.ndarray:
    """A small slide label (associated image) naming the synthetic case."""
    label = np.full((160, 320, 3), 250, np.uint8)
    cv2.putText(label, "SYNTHETIC", (14, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 2, cv2.LINE_AA)
    cv2.putText(label, case_id, (14, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (20, 20, 20), 2, cv2.LINE_AA)
    return label


def write_slide(path: Path, seed: int, latents: PatientLatents, size, case_id: str,
                progress: ProgressFn | None = None) -> Path:
    """Render the biopsy slide band by band straight into a pyramidal TIFF (20×, 0.5 µm/px)."""

    plan = plan_slide(seed_streams(seed)["slide"], latents.s, latents.c, latents.f, size)
    band = {"index": -1, "pixels": None}

    def tile_source(y0: int, x0: int, h: int, w: int) -> np.ndarray:
        index = y0 // BAND_ROWS
        if band["index"] != index:
            row0 = index * BAND_ROWS
            band.update(index=index, pixels=render_band(plan, row0, min(plan.height, row0 + BAND_ROWS), index))
        local = y0 - index * BAND_ROWS
        return band["pixels"][local : local + h, x0 : x0 + w]

    return write_pyramidal_tiff(path, shape=(plan.height, plan.width), tile_source=tile_source, mpp=BASE_MPP,
                                objective_power=BASE_OBJECTIVE_POWER, tile_size=TILE_SIZE,
                                associated={"label": _label_image(case_id)}, progress=progress)


def make_case(
    case_dir,
    seed: int,
    size: str = "small",
    *,
    case_id: str | None = None,
    slide_size=None,
    post_shift_mm=(0.0, 0.0, 0.0),
    latents: dict | None = None,
    motion: bool = False,
    slide: bool = True,
    progress: ProgressFn | None = None,
) -> Case:
    """Generate one phantom patient into ``case_dir`` (must not exist, or be empty) and return it.

    ``size``: "small" (tests: 24×96×96 T1, 3072×2048 slide) or "demo" (40×224×224 T1,
    12288×8192 slide); ``slide_size`` = (height, width) overrides the slide's. ``latents`` fixes
    some of m, s, c, f, eps (e.g. ``{"m": 2.0}``). The manifest records labels and, under
    ``synthetic``, the seed, size and latent scores.

    ``motion``: the patient lies differently at the post-treatment session (T1 and T2 post share
    that position, T1 and T2 pre the reference one; :func:`session_motion`); the true transform
    t1_pre → post (the registration convention) is recorded under ``synthetic.motion``. Without
    it (the default) the files are exactly what they were before motion existed. ``slide=False``
    writes no slide (MRI-only cohorts for registration and MRI learning checks).
    """
    if size not in SIZES:
        raise Harm3Error(f"unknown synthetic size {size!r}; choose one of {', '.join(SIZES)}")
    case_dir = Path(case_dir).absolute()  # a relative folder must not end up relative to the scratch folder
    if case_dir.exists() and (not case_dir.is_dir() or any(case_dir.iterdir())):
        raise Harm3Error(f"{case_dir} exists and is not empty; choose another folder or remove it")
    case_id = case_id or f"SYN-{int(seed) % 10**8:08d}"
    patient = draw_latents(seed, **(latents or {}))
    case_dir.parent.mkdir(parents=True, exist_ok=True)
    # everything is written into a hidden scratch folder renamed into place at the end, so an
    # interrupted run never leaves a half-made case under the final name
    scratch = Path(tempfile.mkdtemp(prefix=f".{case_dir.name}-", suffix=".partial", dir=case_dir.parent))
    try:
        report(progress, 0.0, f"{case_id}: MRI")
        truth, motion_record = session_motion(seed) if motion else (None, None)
        mri, masks = _write_mri(scratch, seed, patient, size, post_shift_mm, truth)
        report(progress, 0.3, f"{case_id}: slide")
        slide_path = write_slide(scratch / "slide" / "biopsy.tiff", seed, patient, slide_size or size, case_id,
                                 progress=scaled(progress, 0.3, 0.95)) if slide else None
        synthetic = {
            "generator_version": GENERATOR_VERSION,
            "seed": int(seed),
            "size": size,
            "slide_size": list(slide_size) if slide_size else None,
            "post_shift_mm": [float(v) for v in post_shift_mm],
            **patient.as_dict(),
        }
        if truth is not None:
            synthetic["motion"] = {**motion_record, "sessions": {"pre": ["t1_pre", "t2_pre"], "post": ["t1_post", "t2_post"]},
                                   "t1_pre_to_post_zyx": np.round(truth.matrix, 10).tolist()}
        labels = CaseLabels(patient.pcr, patient.survival_months, patient.event)
        save_case(Case(case_id, scratch, mri, masks, slide_path, None, labels, synthetic), scratch / "case.yaml")
        if case_dir.exists():
            case_dir.rmdir()  # empty (checked above); rename needs the name free
        os.rename(scratch, case_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(progress, 1.0, f"{case_id}: done")
    return load_case(case_dir / "case.yaml")


def _make_cohort_case(args) -> GeneratedCase:
    out_dir, index, seed, size, slide_size, options = args
    start = time.perf_counter()
    case_id = f"SYN-{index + 1:04d}"
    case = make_case(Path(out_dir) / case_id, case_seed(seed, index), size, case_id=case_id, slide_size=slide_size,
                     **options)
    return GeneratedCase(case_id, case.manifest, case.labels, time.perf_counter() - start)


def make_cohort(out_dir, n: int, seed: int, size: str = "small", *, workers: int = 1, slide_size=None,
                motion: bool = False, slide: bool = True, latents: dict | None = None,
                progress: ProgressFn | None = None) -> Path:
    """Generate ``n`` phantom patients (``SYN-0001`` …) in ``out_dir`` plus ``cohort.csv``.

    ``motion``, ``slide`` and ``latents`` (scores fixed for every case) as in :func:`make_case`.

    Case ``i`` uses the seed :func:`~napari_harm3.core.synth.latent.case_seed` (seed, i), so a
    cohort is identical whatever ``workers`` is. Returns the path of ``cohort.csv``.
    """
    if n < 1:
        raise Harm3Error(f"--n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    table = out_dir / "cohort.csv"
    if table.exists():
        raise Harm3Error(f"{table} exists; choose an empty output folder")
    options = {"motion": bool(motion), "slide": bool(slide), "latents": latents}
    jobs = [(str(out_dir), i, int(seed), size, slide_size, options) for i in range(n)]
    results: list[GeneratedCase] = []
    workers = max(1, min(int(workers), n, os.cpu_count() or 1))
    if workers == 1:
        for i, job in enumerate(jobs):
            results.append(_make_cohort_case(job))
            report(progress, (i + 1) / n, f"{results[-1].case_id} ({results[-1].seconds:.1f} s)")
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, result in enumerate(pool.map(_make_cohort_case, jobs)):
                results.append(result)
                report(progress, (i + 1) / n, f"{result.case_id} ({result.seconds:.1f} s)")
    return write_cohort_table([(r.case_id, r.manifest, r.labels) for r in results], table)
