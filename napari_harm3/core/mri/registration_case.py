"""Align a case's volumes onto its reference (``harm3 align``): register, compose, write, record.

Each sequence of ``REGISTRATION_CHAIN`` is registered onto the one it names — T1-post and T2-pre
onto T1-pre, T2-post onto T2-pre (same contrast, so the time points meet directly) — and the
result is composed onto T1-pre: ``t1_pre → t2_pre → t2_post``. The files go to
``<case>/transforms/<seq>_to_t1_pre.tfm`` (+ ``.json``, ``registration_files.py``) and the
manifest's ``transforms:`` lists them (``core.io.case.save_case``, atomic).

Registration reads the volumes in their own frames — through the case's one seam,
``read_case_volumes``, with the manifest's transforms left out — and only a plausible result is
written or listed: an implausible one is reported and the manifest keeps what it had. Resumable
and idempotent: a sequence whose files exist with a plausible record is kept (``force`` redoes
it); a transform the manifest already lists from elsewhere is left alone unless ``force``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import Harm3Error, one_line
from ..io.case import load_case, save_case
from ..progress import ProgressFn, report
from ..vocabulary import REFERENCE_SEQUENCE, REGISTRATION_CHAIN, TRANSFORMS_DIR, sequence_title
from .case_volumes import read_case_volumes
from .registration import RegistrationConfig, register_volumes
from .registration_files import read_record, record_is_usable, write_registration
from .transforms import WorldTransform, read_transform


@dataclass(frozen=True)
class SequenceAlignment:
    """What happened to one sequence of a case."""

    sequence: str
    onto: str                       # the sequence it was registered onto
    status: str                     # "registered", "kept", "failed", "absent"
    transform: str | None = None    # the file listed in the manifest (absolute)
    message: str = ""               # the verdict's summary, or why it failed
    seconds: float = 0.0


@dataclass(frozen=True)
class CaseAlignment:
    """What ``harm3 align`` did to one case (plain data: it crosses Dask's process boundary)."""

    case_id: str
    manifest: str
    steps: tuple = ()
    error: str = ""                 # a failure of the whole case (unreadable manifest, volumes)
    seconds: float = 0.0

    @property
    def failed(self) -> list:
        return [s for s in self.steps if s.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.error and not self.failed

    def line(self) -> str:
        """One readable line: what each sequence got, or why the case failed."""
        if self.error:
            return f"{self.case_id}: {self.error}"
        if self.failed:
            return f"{self.case_id}: " + "; ".join(f"{sequence_title(s.sequence)}: {s.message}" for s in self.failed)
        parts = [f"{sequence_title(s.sequence)} {s.status}" + (f" ({s.message})" if s.message else "")
                 for s in self.steps if s.status != "absent"]
        return f"{self.case_id}: " + ("; ".join(parts) or "nothing to align") + f" [{self.seconds:.1f} s]"


def transform_path(case, sequence: str) -> Path:
    return Path(case.root) / TRANSFORMS_DIR / f"{sequence}_to_{REFERENCE_SEQUENCE}.tfm"


def _onto(sequence: str, present) -> str:
    """The sequence to register onto: the chain's, or up the chain when that one is absent."""
    onto = REGISTRATION_CHAIN[sequence]
    while onto != REFERENCE_SEQUENCE and onto not in present:
        onto = REGISTRATION_CHAIN[onto]
    return onto


def align_case(case, config: RegistrationConfig | None = None, force: bool = False,
               progress: ProgressFn | None = None) -> CaseAlignment:
    """Register the case's sequences onto its reference and record the transforms (see module doc).

    ``case``: a manifest path, a case folder or a loaded ``Case``. Never raises for a bad case:
    the outcome says what failed, so a cohort goes on.
    """
    start = time.perf_counter()
    config = config or RegistrationConfig()
    try:
        case = load_case(case.manifest if hasattr(case, "manifest") and case.manifest else case)
    except Harm3Error as exc:
        return CaseAlignment(str(getattr(case, "case_id", case)), str(getattr(case, "manifest", case)), error=one_line(exc))
    manifest = str(case.manifest)
    if REFERENCE_SEQUENCE not in case.mri:
        return CaseAlignment(case.case_id, manifest, error=f"no {REFERENCE_SEQUENCE} volume: it is the frame the others are aligned to")
    try:
        own = read_case_volumes(dataclasses.replace(case, transforms={}), with_masks=False).volumes
    except Harm3Error as exc:
        return CaseAlignment(case.case_id, manifest, error=one_line(exc), seconds=time.perf_counter() - start)
    transforms = dict(case.transforms)                       # what the manifest will list
    composed = {REFERENCE_SEQUENCE: WorldTransform.identity()}
    steps = []
    for n, sequence in enumerate(REGISTRATION_CHAIN):
        report(progress, n / len(REGISTRATION_CHAIN), f"{case.case_id}: {sequence_title(sequence)}")
        onto = _onto(sequence, own)
        if sequence not in own:
            steps.append(SequenceAlignment(sequence, onto, "absent"))
            continue
        redo = force or any(s.sequence == onto and s.status == "registered" for s in steps)
        step = _align_sequence(case, sequence, onto, own, composed, transforms, config, redo)
        if step.status in ("registered", "kept"):
            try:
                composed[sequence] = read_transform(step.transform)
                transforms[sequence] = Path(step.transform)
            except Harm3Error as exc:                        # the manifest's own file, broken
                step = dataclasses.replace(step, status="failed", message=f"the manifest's transform cannot be "
                                           f"used ({one_line(exc)}); fix it, or --force registers anew")
        steps.append(step)
    if transforms != dict(case.transforms):
        fresh = load_case(case.manifest)                     # labels as the manifest has them, not a table's
        save_case(dataclasses.replace(fresh, transforms=transforms), case.manifest, overwrite=True)
    report(progress, 1.0, f"{case.case_id}: done")
    return CaseAlignment(case.case_id, manifest, tuple(steps), seconds=time.perf_counter() - start)


def _align_sequence(case, sequence, onto, own, composed, listed, config, force) -> SequenceAlignment:
    """One sequence: kept when done before (unless ``force``: also when what it was composed onto
    was registered anew), else registered onto ``onto`` and composed onto the reference."""
    target = transform_path(case, sequence)
    already = listed.get(sequence)
    if not force:
        if already is not None and Path(already).resolve() != target.resolve():
            return SequenceAlignment(sequence, onto, "kept", str(already), "the manifest's own transform")
        if record_is_usable(target):
            record = read_record(target) or {}
            return SequenceAlignment(sequence, onto, "kept", str(target),
                                     (record.get("verdict") or {}).get("summary", "done before"))
    if onto not in composed:
        return SequenceAlignment(sequence, onto, "failed",
                                 message=f"{sequence_title(onto)} has no plausible transform onto "
                                         f"{sequence_title(REFERENCE_SEQUENCE)}, so this one cannot be composed")
    start = time.perf_counter()
    try:
        result = register_volumes(own[onto], own[sequence], config)
    except Harm3Error as exc:
        return SequenceAlignment(sequence, onto, "failed", message=one_line(exc), seconds=time.perf_counter() - start)
    if not result.plausible:
        return SequenceAlignment(sequence, onto, "failed", message=f"registration onto {sequence_title(onto)} "
                                 f"{result.verdict.summary}; not applied", seconds=result.seconds)
    total = composed[onto].then(result.transform)             # t1_pre → onto → sequence
    record = {**result.to_dict(), "case_id": case.case_id, "sequence": sequence, "registered_onto": onto,
              "reference": REFERENCE_SEQUENCE, "step_matrix_zyx": result.transform.matrix.round(8).tolist(),
              "composed_with": str(listed.get(onto, "")) if onto != REFERENCE_SEQUENCE else None,
              "matrix_zyx": total.matrix.round(8).tolist(), "fixed": str(case.mri[onto]),
              "moving": str(case.mri[sequence])}
    try:
        write_registration(total, record, target, rigid=config.mode == "rigid", overwrite=True)
    except (Harm3Error, OSError) as exc:
        return SequenceAlignment(sequence, onto, "failed", message=f"cannot write {target}: {one_line(exc)}")
    return SequenceAlignment(sequence, onto, "registered", str(target), result.verdict.summary, result.seconds)
