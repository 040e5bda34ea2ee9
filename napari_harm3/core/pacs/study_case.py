"""``harm3 pacs get``: one study from the PACS → a complete case folder, or nothing at all.

Everything happens in a hidden scratch folder next to the target (``.<name>-….partial``):
retrieve the study (:func:`~.retrieve.retrieve_study`), list its series, refuse a study without
an MR image series, assign series to sequences by the config's rules (:mod:`.rules`; what stays
unassigned or is ambiguous is reported, never guessed), attach each RTSTRUCT to the sequence whose
series it references (by UID, so no guess either), write ``case.yaml`` and ``pacs.json`` (what was
retrieved and how each series was judged; no patient identifiers), and read every assigned volume
and mask through the case seam (``read_case_volumes``) so a series that fails to decode fails the
retrieval. Only then is the scratch folder renamed to the target. Any failure or cancellation
removes the scratch folder: no partial case is ever left under the target name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import Harm3Error, InputFileError, one_line
from ..io.case import Case, load_case, save_case
from ..io.dicom_series import list_dicom_series
from ..io.masks import read_rtstruct_dataset, referenced_series_uids
from ..mri.case_volumes import read_case_volumes
from ..progress import ProgressFn, report, scaled
from ..vocabulary import SEQUENCES, sequence_title
from .association import PacsError
from .config import PacsConfig
from .retrieve import RetrieveResult, retrieve_study
from .rules import SeriesAssignment, SeriesCandidate, SeriesRules, assign_series

DICOM_DIR = "dicom"
RECORD_NAME = "pacs.json"


@dataclass(frozen=True)
class RetrievedCase:
    case: Case
    assignment: SeriesAssignment
    masks: dict                     # sequence → the RTSTRUCT series (SeriesCandidate) attached to it
    notes: tuple[str, ...]          # masks not attached and why
    retrieval: RetrieveResult

    @property
    def manifest(self) -> Path:
        return self.case.manifest

    def lines(self) -> list[str]:
        """The rules' account, with RTSTRUCTs that became masks shown as masks."""
        out = self.assignment.lines(skip={s.uid for s in self.masks.values()})
        out += [f"mask {key:8s} ← {s.label}" for key, s in self.masks.items()]
        return out + list(self.notes)


def _candidates(infos) -> list[SeriesCandidate]:
    return [SeriesCandidate(uid=s.uid, description=s.description, modality=s.modality,
                            is_image=s.kind == "volume", n_instances=s.n_files) for s in infos]


def _attach_masks(infos, assigned_uids: dict) -> tuple[dict, list]:
    """RTSTRUCT series → ({sequence: its DicomSeriesInfo}, notes)."""
    by_uid = {uid: key for key, uid in assigned_uids.items()}
    found: dict[str, list] = {}
    notes = []
    for info in (s for s in infos if s.kind == "rtstruct"):
        try:
            refs = referenced_series_uids(read_rtstruct_dataset(Path(info.files[0])))
        except InputFileError as exc:
            notes.append(f"mask '{info.description}' not attached: {exc.reason}")
            continue
        keys = [by_uid[r] for r in refs if r in by_uid]
        if not keys:
            notes.append(f"mask '{info.description}' not attached: its image series is not one of the assigned")
        else:
            found.setdefault(keys[0], []).append(info)
    attached = {}
    for key, items in found.items():
        if len(items) > 1:
            notes.append(f"masks of {key} not attached: {len(items)} RTSTRUCT series reference it "
                         f"({', '.join(repr(i.description) for i in items)})")
        else:
            attached[key] = items[0]
    return attached, notes


def _check_readable(case: Case, assignment: SeriesAssignment, progress) -> None:
    """Decode every assigned volume and attached mask through the case seam, one sequence at a time."""
    keys = [k for k in SEQUENCES if k in case.mri]
    for n, key in enumerate(keys):
        report(progress, n / max(1, len(keys)), f"checking {sequence_title(key)}")
        try:
            read_case_volumes(case, sequences=(key,), with_masks=key in case.masks)
        except Harm3Error as exc:
            reason = exc.reason if isinstance(exc, InputFileError) else one_line(exc)
            series = assignment.assigned[key]
            raise PacsError(f"series {series.label} ({key}) cannot be read: {reason}; nothing was kept") from None


def _record(config: PacsConfig, study_uid: str, retrieval: RetrieveResult, infos, assignment, masks, notes) -> dict:
    assigned = {s.uid: key for key, s in assignment.assigned.items()}
    assigned.update({info.uid: f"mask {key}" for key, info in masks.items()})
    ambiguous = {s.uid: why for s, _keys, why in assignment.ambiguous}
    unassigned = {s.uid: why for s, why in assignment.unassigned}
    return {
        "study_instance_uid": study_uid, "peer": str(config.peer), "our_ae_title": config.ae_title,
        "method": retrieval.method, "objects": retrieval.n_objects, "bytes": retrieval.n_bytes,
        "seconds": round(retrieval.seconds, 3), "retrieved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "series": [{"series_instance_uid": s.uid, "description": s.description, "modality": s.modality,
                    "objects": s.n_files, "folder": Path(s.folder).name,
                    "sequence": assigned.get(s.uid),
                    "why_not": ambiguous.get(s.uid) or unassigned.get(s.uid)} for s in infos],
        "notes": list(notes),
    }


def retrieve_case(config: PacsConfig, study_uid: str, out_dir, *, rules: SeriesRules | None = None,
                  overrides: dict | None = None, case_id: str | None = None,
                  progress: ProgressFn | None = None) -> RetrievedCase:
    """Retrieve study ``study_uid`` into the case folder ``out_dir`` (must not exist, or be empty);
    see the module docstring. ``rules`` default to the config's; ``overrides`` (sequence →
    SeriesInstanceUID) win over them. The case id defaults to the folder's name."""
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PacsError(f"{out_dir} exists and is not empty; choose another case folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", suffix=".partial", dir=out_dir.parent))
    try:
        retrieval = retrieve_study(config, study_uid, scratch / DICOM_DIR, progress=scaled(progress, 0.0, 0.8))
        infos = list_dicom_series(scratch / DICOM_DIR, recursive=True)
        candidates = _candidates(infos)
        if not any(c.is_image and c.modality == "MR" for c in candidates):
            found = Counter(c.modality or "?" for c in candidates)
            listing = ", ".join(f"{m} ×{n}" for m, n in sorted(found.items()))
            raise PacsError(f"study {study_uid} holds no MR image series (found: {listing}); nothing was kept")
        assignment = assign_series(candidates, rules or config.rules, overrides)
        by_uid = {s.uid: s for s in infos}
        mri = {key: Path(by_uid[s.uid].folder) for key, s in assignment.assigned.items()}
        masks, notes = _attach_masks(infos, {k: s.uid for k, s in assignment.assigned.items()})
        case = Case(case_id=case_id or out_dir.name, root=scratch, mri=mri,
                    masks={key: Path(info.folder) for key, info in masks.items()})
        _check_readable(case, assignment, scaled(progress, 0.8, 0.98))
        save_case(case, scratch / "case.yaml")
        record = _record(config, study_uid, retrieval, infos, assignment, masks, notes)
        (scratch / RECORD_NAME).write_text(json.dumps(record, indent=1), encoding="utf-8")
        report(progress, 1.0, "case written")  # the last point where a cancel may stop it
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); the rename needs the name free
        os.rename(scratch, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    retrieval = RetrieveResult(out_dir / DICOM_DIR, retrieval.method, retrieval.n_objects, retrieval.n_bytes,
                               retrieval.seconds)
    by_uid = {c.uid: c for c in candidates}
    return RetrievedCase(load_case(out_dir / "case.yaml"), assignment,
                         {key: by_uid[info.uid] for key, info in masks.items()}, tuple(notes), retrieval)
