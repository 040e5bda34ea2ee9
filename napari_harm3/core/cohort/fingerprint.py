"""The resume key of a case: its id, its input files' sha256 and the models' weight sha256.

A finished row is reused only while all three still match, so a changed input file (a new
slide, a corrected manifest) or a retrained model reruns the case. The content digest reads
every input file; to keep a resumed run from re-reading gigabyte slides, each row also records
the files' sizes and modification times (:func:`inputs_stat`): when they are unchanged the
recorded digest is trusted, otherwise the content is hashed again and compared (a file only
touched, not changed, is still reused).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..hashing import sha256_path
from ..io.case import Case
from ..vocabulary import SEQUENCES


def input_files(case: Case) -> tuple:
    """((role, path), ...) of everything a prediction reads: manifest, MRI, masks, transforms, slide."""
    files = [("manifest", Path(case.manifest))] if case.manifest is not None else []
    for key in SEQUENCES:
        if key in case.mri:
            files.append((f"mri.{key}", case.mri_source(key)[0]))
    for key in SEQUENCES:
        if key in case.masks:
            files.append((f"masks.{key}", case.mask_source(key)[0]))
    for key in sorted(case.transforms):
        files.append((f"transforms.{key}", Path(case.transforms[key])))
    if case.slide is not None:
        files.append(("slide", Path(case.slide)))
    return tuple(files)


def _stat_line(path: Path) -> str:
    if path.is_dir():
        parts = [_stat_line(p) for p in sorted(path.rglob("*")) if p.is_file()]
        return f"{path}/ [" + ", ".join(parts) + "]"
    try:
        st = os.stat(path)
    except OSError:
        return f"{path} absent"
    return f"{path} {st.st_size} {st.st_mtime_ns}"


def inputs_stat(case: Case) -> str:
    """sha256 of the input files' paths, sizes and modification times (cheap: no file is read)."""
    text = "\n".join(f"{role} {_stat_line(Path(path))}" for role, path in input_files(case))
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_sha256(case: Case) -> str:
    """sha256 over the input files' roles and contents (a DICOM folder: its files, see
    ``hashing.sha256_path``); an absent file enters as "absent"."""
    digest = hashlib.sha256()
    for role, path in input_files(case):
        path = Path(path)
        digest.update(f"{role}\n".encode())
        digest.update((sha256_path(path) if path.exists() else "absent").encode())
    return digest.hexdigest()


def row_is_current(row, case: Case, models) -> bool:
    """True when ``row`` (a finished CaseRow) was computed from these inputs with these models."""
    if row.case_id != case.case_id:
        return False
    for ref, name, sha in ((models.pcr, row.pcr_model, row.pcr_model_sha256),
                           (models.survival, row.survival_model, row.survival_model_sha256)):
        if (ref.sha256 if ref is not None else "") != sha or (ref.name if ref is not None else "") != name:
            return False
    if not row.inputs_sha256:
        return False
    if row.inputs_stat and row.inputs_stat == inputs_stat(case):
        return True
    return inputs_sha256(case) == row.inputs_sha256
