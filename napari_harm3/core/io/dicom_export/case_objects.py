"""All DICOM objects of one case, from plain inputs, written into a folder at once.

:func:`write_case_objects` takes what a caller already holds — the source series (headers), per
series the tumour masks and the class-activation map on that series' voxels, the numbers, the
PDF — and writes, into a scratch folder renamed onto the target at the end (nothing
half-written is ever under the target's name):

- ``SEG_<sequence>.dcm`` a Segmentation per series with masks (drawn/RTSTRUCT and propagated),
- ``PM_<sequence>.dcm`` a Parametric Map per series with a map,
- ``SR.dcm`` the TID 1500 report (tumour groups reference their segments),
- ``PDF.dcm`` the PDF report as an Encapsulated PDF.

The SR and the PDF go in the study of the latest time point present (post-treatment series
first, then pre-treatment, then the slide): the study the results are read in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import Harm3Error, one_line
from ...progress import ProgressFn, report
from ...vocabulary import SEQUENCES, sequence_title
from .common import ExportSettings, SourceSeries, save_dataset
from .encapsulated_pdf import build_encapsulated_pdf
from .parametric_map import build_parametric_map
from .segmentation import SegmentSpec, build_segmentation
from .sr import ReportNumbers, build_structured_report

#: where the SR/PDF take their study from, first found wins
REPORT_STUDY_ORDER = ("t1_post", "t2_post", "t1_pre", "t2_pre")


@dataclass(frozen=True, eq=False)
class SeriesObjects:
    """What to write for one DICOM source series."""

    sequence: str
    source: SourceSeries
    affine: np.ndarray                 # the series' own voxel grid, ours ((k, j, i) → (z, y, x))
    segments: tuple = ()               # (SegmentSpec, ...) on that grid
    activation_map: np.ndarray | None = None   # float in [0, 1] on that grid


@dataclass(frozen=True, eq=False)
class CaseObjects:
    """Everything one export writes."""

    series: tuple = ()                 # (SeriesObjects, ...)
    numbers: ReportNumbers = field(default_factory=ReportNumbers)
    pdf: bytes | None = None
    slide: SourceSeries | None = None  # a DICOM whole-slide image, when the case has one
    map_method: str = "hirescam, evidence both"


@dataclass(frozen=True)
class WrittenObject:
    kind: str                          # "SEG", "PM", "SR", "PDF"
    path: Path
    sequence: str | None
    sop_instance_uid: str
    study_instance_uid: str


@contextlib.contextmanager
def atomic_folder(target, overwrite: bool = False):
    """Yield a scratch folder next to ``target``; on success it replaces ``target`` in one rename.

    An existing non-empty ``target`` is an error unless ``overwrite``; on an exception the
    scratch folder is removed and ``target`` is untouched.
    """
    target = Path(target).absolute()
    if target.exists() and not (target.is_dir() and not any(target.iterdir())) and not overwrite:
        raise Harm3Error(f"{target} exists and is not empty; pass --overwrite or choose another folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".partial", dir=target.parent))
    try:
        yield scratch
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(scratch, 0o777 & ~umask)   # mkdtemp makes 0700 folders; give the usual permissions
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".old", dir=target.parent))
            os.rename(target, old / "previous")
        try:
            os.rename(scratch, target)
        except OSError:
            if old is not None:
                os.rename(old / "previous", target)   # put the previous folder back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ordered(series) -> list:
    order = {s: n for n, s in enumerate(SEQUENCES)}
    return sorted(series, key=lambda s: order.get(s.sequence, len(order)))


def report_sources(series, slide: SourceSeries | None) -> list:
    """The evidence of the SR/PDF: the report study's series first, then the others, then the slide."""
    by_sequence = {s.sequence: s.source for s in series}
    first = next((by_sequence[k] for k in REPORT_STUDY_ORDER if k in by_sequence), None)
    sources = ([first] if first is not None else []) + [s for s in by_sequence.values() if s is not first]
    if slide is not None:
        sources.append(slide)
    return [ds for source in sources for ds in source.datasets]


def write_case_objects(objects: CaseObjects, out_dir, settings: ExportSettings, overwrite: bool = False,
                       title: str = "", progress: ProgressFn | None = None) -> tuple:
    """Write the case's DICOM objects into ``out_dir`` (atomically); returns the :class:`WrittenObject` s."""
    series = _ordered(objects.series)
    evidence = report_sources(series, objects.slide)
    if not evidence:
        raise Harm3Error("no DICOM source: the objects must reference DICOM images (MRI series or a DICOM slide)")
    base = settings.series_number_base
    written, segmentations = [], {}
    steps = 2 + 2 * len(series)
    with atomic_folder(out_dir, overwrite=overwrite) as scratch:
        for n, item in enumerate(series):
            index = SEQUENCES.index(item.sequence) if item.sequence in SEQUENCES else len(SEQUENCES)
            title_of = sequence_title(item.sequence)
            if any(np.any(s.mask) for s in item.segments):
                report(progress, 2 * n / steps, f"segmentation of {title_of}")
                with _building("segmentation", item.sequence):
                    seg = build_segmentation(item.source, item.affine, item.segments, settings, base + 10 + index,
                                             series_description=f"napari-harm3 tumour masks {title_of}")
                segmentations[item.sequence] = seg
                written.append(_save(seg, scratch, "SEG", item.sequence))
            if item.activation_map is not None:
                report(progress, (2 * n + 1) / steps, f"parametric map of {title_of}")
                with _building("parametric map", item.sequence):
                    pm = build_parametric_map(item.source, item.activation_map, item.affine, settings,
                                              base + 20 + index, method=objects.map_method, title=title_of)
                written.append(_save(pm, scratch, "PM", item.sequence))
        report(progress, (steps - 2) / steps, "structured report")
        with _building("structured report", None):
            sr = build_structured_report(objects.numbers, evidence, settings, base, segmentations, title=title)
        written.append(_save(sr, scratch, "SR", None))
        if objects.pdf is not None:
            report(progress, (steps - 1) / steps, "encapsulated PDF")
            with _building("encapsulated PDF", None):
                pdf = build_encapsulated_pdf(objects.pdf, evidence, settings, base + 1)
            written.append(_save(pdf, scratch, "PDF", None))
        final = Path(out_dir).absolute()
    report(progress, 1.0, "DICOM objects written")
    return tuple(WrittenObject(w.kind, final / w.path.name, w.sequence, w.sop_instance_uid, w.study_instance_uid)
                 for w in written)


@contextlib.contextmanager
def _building(kind: str, sequence: str | None):
    """highdicom's own complaints about a source (a missing attribute, an odd geometry) as one line."""
    try:
        yield
    except (ValueError, AttributeError, KeyError) as exc:
        where = f" of {sequence_title(sequence)}" if sequence else ""
        raise Harm3Error(f"cannot write the {kind}{where}: {one_line(exc)}") from exc


def _save(ds, folder: Path, kind: str, sequence: str | None) -> WrittenObject:
    name = f"{kind}_{sequence}.dcm" if sequence else f"{kind}.dcm"
    path = save_dataset(ds, folder / name)
    return WrittenObject(kind, path, sequence, str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))


__all__ = ["SeriesObjects", "CaseObjects", "WrittenObject", "write_case_objects", "atomic_folder",
           "report_sources", "SegmentSpec"]
