"""What a report needs from a case and from each model's prediction, as plain frozen dataclasses.

The prediction code of each model (HARM3-Fusion pCR, CrossFusion survival) and the case
loader produce richer objects; :mod:`.build` turns them into these, and
:func:`~.build.build_report_from_results` builds a report from these alone, so that a GUI
that already holds the results (after its run buttons) never recomputes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .figures import PatchAttention

#: MRI volume roles in report order (T1/T2 before and after neoadjuvant therapy)
VOLUME_ROLES = ("t1_pre", "t1_post", "t2_pre", "t2_post")


@dataclass(frozen=True, eq=False)
class CaseVolume:
    """One MRI volume of the case: (slice, row, column) data, (dz, dy, dx) mm, its file and mask."""

    role: str
    data: np.ndarray
    spacing: tuple
    path: str
    mask: np.ndarray | None = None  # tumour mask on this volume's grid


@dataclass(frozen=True, eq=False)
class CaseSlide:
    """The case's whole-slide image: its file and an open reader (``read_region`` surface)."""

    path: str
    reader: object


@dataclass(frozen=True, eq=False)
class PcrResult:
    """A HARM3-Fusion ensemble prediction for one case.

    ``gradcam`` maps a volume role to a Grad-CAM map in [0, 1] on that volume's voxels;
    ``slide_attention`` is the pooling attention over the slide patches (or None).
    """

    probability: float
    spread: float
    fold_probabilities: tuple
    threshold: float = 0.5
    missing_inputs: tuple = ()
    gradcam: Mapping = field(default_factory=dict)
    slide_attention: PatchAttention | None = None
    gradcam_method: str = ""          # what the maps show, e.g. "hirescam, evidence both"


@dataclass(frozen=True, eq=False)
class SurvivalResult:
    """A CrossFusion ensemble prediction for one case.

    ``survival_per_bin`` is S after each bin (mean over folds); ``cuts_months`` the interior
    bin edges saved with the model (``core.survival.bins``); ``t_max_months`` where the last
    bin ends, when the model card knows it. ``attention`` holds one map per magnification.
    """

    risk: float
    survival_per_bin: tuple
    cuts_months: tuple
    fold_risks: tuple = ()
    t_max_months: float | None = None
    risk_threshold: float | None = None
    missing_inputs: tuple = ()
    attention: tuple = ()  # (PatchAttention, ...)
