"""One case as read off the disk, with its identity: what the case session holds while it is open.

:func:`open_case_data` is pure (no session state): it loads the manifest (or takes a ``Case``),
reads the volumes and masks through the case's seam (registration applied,
``core/mri/case_volumes.py``), opens the slide lazily and resolves its µm/px once — from the
manifest, else the slide's metadata — with the source said (:class:`SlideScale`). The viewer
calls it in a worker thread, the command line directly.

Every opening gets a new :class:`CaseRef`: two openings of the same manifest are different
refs, so a result computed for one can never be taken for the other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Harm3Error
from ..io.case import Case, load_case
from ..io.wsi import Slide, open_slide
from ..mri.case_volumes import CaseVolumes, read_case_volumes
from ..progress import ProgressFn, report, scaled

_SERIALS = itertools.count(1)

#: where a slide's µm/px came from
MPP_FROM_SLIDE = "slide metadata"
MPP_FROM_MANIFEST = "case manifest"
MPP_FROM_USER = "entered by the user"


@dataclass(frozen=True)
class CaseRef:
    """The identity of one opening of a case: results carry it, the session checks it."""

    case_id: str
    serial: int
    source: str = ""

    def __str__(self) -> str:
        return self.case_id


def new_case_ref(case: Case) -> CaseRef:
    return CaseRef(str(case.case_id), next(_SERIALS), str(case.manifest or case.root))


@dataclass(frozen=True)
class SlideScale:
    """The case's one µm/px: its value and where it came from (None: unknown)."""

    mpp: float | None = None
    source: str | None = None

    def describe(self) -> str:
        return f"{self.mpp:g} µm/px ({self.source})" if self.mpp else "unknown µm/px"

    @property
    def from_slide(self) -> bool:
        return self.source == MPP_FROM_SLIDE


def slide_scale_of(case: Case, slide: Slide | None) -> SlideScale:
    """The manifest's ``slide_mpp`` (it overrides the metadata), else the slide's own, else unknown."""
    if case.slide_mpp is not None:
        return SlideScale(float(case.slide_mpp), MPP_FROM_MANIFEST)
    if slide is not None and slide.mpp is not None and slide.mpp_source == "metadata":
        return SlideScale(float(slide.mpp), MPP_FROM_SLIDE)
    return SlideScale()


@dataclass(frozen=True, eq=False)
class OpenedCase:
    """A case as the session holds it; ``scale`` is its resolved µm/px (the manifest may have none)."""

    ref: CaseRef
    case: Case
    volumes: CaseVolumes = field(default_factory=CaseVolumes)
    slide: Slide | None = None
    scale: SlideScale = field(default_factory=SlideScale)

    @property
    def case_id(self) -> str:
        return self.ref.case_id

    def close(self) -> None:
        if self.slide is not None:
            self.slide.close()


def as_case(source) -> Case:
    """A ``Case`` from a ``Case``, a manifest path or a case folder."""
    if isinstance(source, Case):
        return source
    if isinstance(source, (str, Path)):
        return load_case(source)
    raise Harm3Error(f"not a case: {source!r}")


def open_case_data(source, progress: ProgressFn | None = None) -> OpenedCase:
    """Read a case (manifest path, case folder or ``Case``): volumes, masks, slide, µm/px."""
    case = as_case(source)
    if not case.mri and case.slide is None:
        raise Harm3Error(f"{case.case_id}: the case has no MRI and no slide")
    report(progress, 0.0, f"case {case.case_id}")
    volumes = read_case_volumes(case, progress=scaled(progress, 0.0, 0.9))
    slide = None
    if case.slide is not None:
        report(progress, 0.9, f"opening the slide {Path(case.slide).name}")
        slide = open_slide(case.slide, mpp=case.slide_mpp)
    scale = slide_scale_of(case, slide)
    report(progress, 1.0, f"case {case.case_id} read")
    return OpenedCase(new_case_ref(case), case, volumes, slide, scale)
