"""Cohort tables and the patch-feature bags of their slides (CrossFusion's file layout).

A cohort CSV has one row per case with a case id, a survival time in months and an event flag
(1 = event observed, 0 = censored; a ``censorship`` column is read inverted), optionally a
patient id (cases of one patient stay in one fold) and a slide path or a case manifest
(``manifest``, read with ``core.io.case.load_case``), both relative to the CSV.
Features of case ``c`` at magnification ``m`` are ``<root>/<encoder>/x<m>/pt_files/<c>.pt``
(an (N, D) tensor), their level-0 patch coordinates ``<root>/<encoder>/x<m>/patches/<c>.h5``;
``<root>`` defaults to ``<cohort dir>/features``. Missing features are computed with the slide
pipeline (:func:`napari_harm3.core.wsi.prepare.prepare_slide_features`) with CLAM's ``biopsy``
tissue preset (:data:`TISSUE_PRESET`): the pipeline's ``tcga`` default drops every tissue piece
smaller than 16 patches of 512² px, i.e. whole biopsy cores (and all of a synthetic phantom).
"""

from __future__ import annotations

import csv
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import Harm3Error, InputFileError
from ..io.case import load_case
from ..progress import ProgressFn, report, scaled
from ..vocabulary import CROSSFUSION_MAGNIFICATIONS
from ..wsi.prepare import prepare_slide_features
from ..wsi.tissue import TissueParams

MAGNIFICATIONS = CROSSFUSION_MAGNIFICATIONS
#: CLAM tissue preset for biopsies (a_t = 1: keep tissue pieces of one 512² patch or more)
TISSUE_PRESET = "biopsy"
_ID_COLUMNS = ("case_id", "slide_id", "case", "id")
_PATIENT_COLUMNS = ("patient_id", "patient")
_TIME_COLUMNS = ("survival_months", "time_months", "os_months", "survival_time", "time")
_EVENT_COLUMNS = ("event", "status", "dead", "death")
_SLIDE_COLUMNS = ("slide", "slide_path", "wsi", "slide_file")
_MANIFEST_COLUMNS = ("manifest", "case_yaml")


@dataclass(frozen=True)
class Case:
    case_id: str
    patient_id: str
    time: float        # months
    event: int         # 1 event, 0 censored
    slide: Path | None
    slide_mpp: float | None = None


@dataclass(frozen=True)
class Cohort:
    path: Path
    cases: tuple

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def times(self) -> np.ndarray:
        return np.array([c.time for c in self.cases], dtype=float)

    @property
    def events(self) -> np.ndarray:
        return np.array([c.event for c in self.cases], dtype=int)

    def __len__(self) -> int:
        return len(self.cases)


@dataclass(frozen=True)
class SlideBags:
    """One slide's three feature bags (N, D) float32, and their level-0 patch coordinates when known."""

    case_id: str
    x5: "object"
    x10: "object"
    x20: "object"
    coords: dict | None = None  # {5|10|20: (N, 2) int (x, y)}

    @property
    def dim(self) -> int:
        return int(self.x10.shape[1])


def _pick(header, names, path, what, required=True):
    lowered = {h.lower().strip(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    if required:
        raise InputFileError(path, f"cohort table has no {what} column (one of: {', '.join(names)})")
    return None


def read_cohort(path) -> Cohort:
    """Read a cohort CSV (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "cohort table not found")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise InputFileError(path, "cohort table is empty")
    header = list(rows[0].keys())
    id_col = _pick(header, _ID_COLUMNS, path, "case id")
    time_col = _pick(header, _TIME_COLUMNS, path, "survival time (months)")
    event_col = _pick(header, _EVENT_COLUMNS, path, "event", required=False)
    cens_col = None if event_col else _pick(header, ("censorship", "censored"), path, "event or censorship")
    patient_col = _pick(header, _PATIENT_COLUMNS, path, "patient", required=False)
    slide_col = _pick(header, _SLIDE_COLUMNS, path, "slide", required=False)
    manifest_col = _pick(header, _MANIFEST_COLUMNS, path, "manifest", required=False)
    cases = []
    for line, row in enumerate(rows, start=2):
        try:
            time = float(row[time_col])
            flag = int(float(row[event_col] if event_col else row[cens_col]))
        except (TypeError, ValueError) as exc:
            raise InputFileError(path, f"line {line}: survival time and event must be numbers") from exc
        event = flag if event_col else 1 - flag
        if event not in (0, 1) or not np.isfinite(time) or time < 0:
            raise InputFileError(path, f"line {line}: event must be 0/1 and time a non-negative number of months")
        slide = row.get(slide_col) if slide_col else None
        slide_path, slide_mpp = None, None
        if slide:
            slide_path = Path(slide) if Path(slide).is_absolute() else path.parent / slide
        elif manifest_col and row.get(manifest_col):
            slide_path, slide_mpp = _manifest_slide(path.parent / row[manifest_col].strip())
        case_id = row[id_col].strip()
        cases.append(Case(case_id=case_id, patient_id=(row.get(patient_col) or case_id).strip() if patient_col else case_id,
                          time=time, event=event, slide=slide_path, slide_mpp=slide_mpp))
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise InputFileError(path, "case ids are not unique")
    return Cohort(path=path, cases=tuple(cases))


def _manifest_slide(manifest: Path):
    """(slide path, µm/px or None) from a case manifest; (None, None) when it cannot be read
    (features may exist already; a missing slide is reported only when it is needed)."""
    try:
        case = load_case(manifest)
    except Harm3Error:
        return None, None
    return case.slide, case.slide_mpp


def feature_file(root, encoder: str, magnification: int, case_id: str, kind: str = "pt") -> Path:
    """``<root>/<encoder>/x<mag>/pt_files/<case>.pt`` (kind "pt"), ``h5_files/<case>.h5`` ("h5")
    or ``patches/<case>.h5`` ("patches")."""
    folder = {"pt": "pt_files", "h5": "h5_files", "patches": "patches"}[kind]
    suffix = ".pt" if kind == "pt" else ".h5"
    return Path(root) / encoder / f"x{magnification}" / folder / f"{case_id}{suffix}"


def load_bag(path):
    """An (N, D) float32 feature tensor from a ``.pt`` tensor (weights_only) or a CLAM ``.h5``."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "feature file not found")
    if path.suffix in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as handle:
                if "features" not in handle:
                    raise InputFileError(path, "HDF5 file has no 'features' dataset (CLAM h5_files layout)")
                array = np.asarray(handle["features"][...], dtype=np.float32)
        except OSError as exc:
            raise InputFileError(path, f"not a readable HDF5 file ({exc})") from exc
        bag = torch.from_numpy(array)
    else:
        try:
            bag = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputFileError(path, f"not a feature tensor file ({str(exc).splitlines()[0]})") from exc
        if isinstance(bag, dict) and "features" in bag:
            bag = bag["features"]
        if not isinstance(bag, torch.Tensor):
            raise InputFileError(path, "file does not hold a tensor")
    if bag.dim() == 3 and bag.shape[0] == 1:
        bag = bag[0]
    if bag.dim() != 2 or bag.shape[0] == 0:
        raise InputFileError(path, f"features must be a non-empty (N, D) array, got shape {tuple(bag.shape)}")
    return bag.float().contiguous()


def load_coords(path) -> np.ndarray | None:
    """Level-0 (x, y) patch coordinates from a CLAM patch or feature ``.h5``; None if absent."""
    path = Path(path)
    if not path.is_file():
        return None

    with h5py.File(path, "r") as handle:
        if "coords" not in handle:
            return None
        return np.asarray(handle["coords"][...], dtype=np.int64)


def case_bags(root, encoder: str, case_id: str, with_coords: bool = False) -> SlideBags:
    """The three bags of one case from the CrossFusion layout under ``root``."""
    bags, coords = {}, {}
    for mag in MAGNIFICATIONS:
        pt = feature_file(root, encoder, mag, case_id)
        h5 = feature_file(root, encoder, mag, case_id, "h5")
        bags[mag] = load_bag(pt if pt.is_file() or not h5.is_file() else h5)
        if with_coords:
            found = load_coords(feature_file(root, encoder, mag, case_id, "patches"))
            coords[mag] = found if found is not None else load_coords(h5)
    dims = {int(b.shape[1]) for b in bags.values()}
    if len(dims) != 1:
        raise InputFileError(Path(root) / encoder, f"case {case_id}: feature sizes differ between magnifications ({sorted(dims)})")
    return SlideBags(case_id=case_id, x5=bags[5], x10=bags[10], x20=bags[20], coords=coords or None)


def missing_features(cohort: Cohort, root, encoder: str) -> list:
    """Cases lacking a feature file at any magnification."""
    out = []
    for case in cohort.cases:
        for mag in MAGNIFICATIONS:
            if not (feature_file(root, encoder, mag, case.case_id).is_file()
                    or feature_file(root, encoder, mag, case.case_id, "h5").is_file()):
                out.append(case)
                break
    return out


def ensure_features(cohort: Cohort, root, encoder: str, progress: ProgressFn | None = None,
                    tissue_preset: str = TISSUE_PRESET, workers: int = 1, **pipeline_options) -> int:
    """Compute the missing feature files with the slide pipeline; returns how many cases were done.

    ``workers`` > 1 computes that many slides at once in worker processes (one torch thread
    each); every case writes only its own files, so the result is the same as with one worker.
    """
    todo = missing_features(cohort, root, encoder)
    for case in todo:
        if case.slide is None or not case.slide.exists():
            raise InputFileError(cohort.path, f"case {case.case_id}: no features and no slide file to compute them from")
    workers = max(1, min(int(workers), len(todo)))
    if workers == 1:
        for k, case in enumerate(todo):
            report(progress, k / len(todo), f"features for {case.case_id}")
            slide_features(case.slide, case.case_id, root, encoder, mpp=case.slide_mpp, tissue_preset=tissue_preset,
                           progress=scaled(progress, k / len(todo), (k + 1) / len(todo)), **pipeline_options)
    else:
        jobs = [(case.slide, case.case_id, root, encoder, case.slide_mpp, tissue_preset, pipeline_options) for case in todo]
        context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads may be running
        with ProcessPoolExecutor(max_workers=workers, initializer=_one_torch_thread, mp_context=context) as pool:
            for k, case_id in enumerate(pool.map(_slide_features_job, jobs)):
                report(progress, (k + 1) / len(todo), f"features for {case_id}")
    report(progress, 1.0, "features ready")
    return len(todo)


def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def _slide_features_job(job) -> str:
    slide, case_id, root, encoder, mpp, tissue_preset, options = job
    slide_features(slide, case_id, root, encoder, mpp=mpp, tissue_preset=tissue_preset, **options)
    return case_id


def slide_features(slide, case_id: str, root, encoder: str, mpp=None, tissue_preset: str = TISSUE_PRESET,
                   progress: ProgressFn | None = None, **pipeline_options) -> dict:
    """{mag: FeatureBag} of one slide at 5×, 10× and 20×, stored under ``root`` named after the
    case (computed once, then read from disk). A bag may be empty (no tissue patch at that
    magnification: a thin biopsy core at 5×); see :func:`empty_magnifications`."""
    if "params" not in pipeline_options:
        pipeline_options["params"] = TissueParams.from_preset(tissue_preset)
    return prepare_slide_features(_named_slide(case_id, Path(slide), root), root, encoder=encoder,
                                  mags=MAGNIFICATIONS, mpp=mpp, progress=progress, **pipeline_options)


def patch_counts(root, encoder: str, case_id: str) -> dict:
    """{mag: number of patches} in one case's stored features (0 for an empty or absent bag)."""
    counts = {}
    for mag in MAGNIFICATIONS:
        pt, h5 = feature_file(root, encoder, mag, case_id), feature_file(root, encoder, mag, case_id, "h5")
        if pt.is_file():
            bag = torch.load(pt, map_location="cpu", weights_only=True)
            bag = bag["features"] if isinstance(bag, dict) else bag
            counts[mag] = int(bag.shape[-2]) if bag.dim() >= 2 else 0
        elif h5.is_file():
            with h5py.File(h5, "r") as handle:
                counts[mag] = int(handle["features"].shape[0]) if "features" in handle else 0
        else:
            counts[mag] = 0
    return counts


def empty_magnifications(root, encoder: str, case_id: str) -> list:
    """Magnifications at which a case has no patch (CrossFusion needs all three)."""
    return [mag for mag, n in patch_counts(root, encoder, case_id).items() if n == 0]


def usable_cases(cohort: Cohort, root, encoder: str) -> tuple:
    """(cohort of the cases with patches at 5×, 10× and 20×, ((case id, why left out), ...))."""
    kept, dropped = [], []
    for case in cohort.cases:
        empty = empty_magnifications(root, encoder, case.case_id)
        if empty:
            dropped.append((case.case_id, f"no tissue patch at {', '.join(f'{m}x' for m in empty)}"))
        else:
            kept.append(case)
    return Cohort(path=cohort.path, cases=tuple(kept)), tuple(dropped)


def _named_slide(case_id: str, slide: Path, root) -> Path:
    """The pipeline names feature files after the slide file; slides of different cases may share a
    file name (``slide/biopsy.tiff``), so the pipeline is given a link named after the case."""
    if slide.stem == case_id:
        return slide
    link = Path(root) / ".slides" / f"{case_id}{slide.suffix}"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == slide.resolve():
            return link
        link.unlink()
    link.symlink_to(slide.resolve())
    return link


def load_cohort_bags(cohort: Cohort, root, encoder: str, progress: ProgressFn | None = None) -> list:
    """All cases' bags, in cohort order (kept in memory: fine for cohorts of feature bags)."""
    out = []
    for k, case in enumerate(cohort.cases):
        report(progress, k / len(cohort), f"loading {case.case_id}")
        out.append(case_bags(root, encoder, case.case_id))
    report(progress, 1.0, "bags loaded")
    return out
