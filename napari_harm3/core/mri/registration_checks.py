"""Is a registration result believable? The verdict that decides whether it may be applied.

Checks (each one value in ``Verdict.checks``; a failed one adds a sentence to ``reasons``):

* ``converged`` — the finest level's optimiser stopped on a small step, not on its iteration cap;
* ``rotation_degrees`` ≤ ``max_rotation_deg`` (45°): repositioning between sessions is 15–20°;
* ``shift_mm`` — how far the fixed foreground's centroid moved from where the start put it (the
  scanner frame, or the centroids' superposition with ``init="moments"``) ≤ ``max_shift_mm``;
* ``scales`` (affine) — the singular values of the linear part within ``scale_range``, no mirror;
* ``overlap`` — the share of one image's foreground mapped inside the other's field of view
  (the larger of both directions) ≥ ``min_overlap``;
* ``dice`` — agreement of the two foregrounds (the body outlines, Otsu) inside the common field
  of view ≥ ``min_dice``: a registration that slid off the anatomy disagrees on the outline;
* ``metric_gain`` — the final metric is not worse than the scanner frame's (identity) one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from .registration_images import foreground, inside_field_of_view, mask_points
from .transforms import WorldTransform, matrix_to_sitk


@dataclass(frozen=True)
class Verdict:
    """Whether a registration may be applied, with the figures it was judged on."""

    plausible: bool
    reasons: tuple = ()                       # one sentence per failed check
    checks: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line: 'plausible (...)' or 'implausible: reason; reason'."""
        if self.plausible:
            c = self.checks
            return (f"plausible (rotation {c.get('rotation_degrees', 0):.1f}°, shift {c.get('shift_mm', 0):.1f} mm, "
                    f"foreground Dice {c.get('dice', float('nan')):.2f})")
        return "implausible: " + "; ".join(self.reasons)

    def to_dict(self) -> dict:
        return {"plausible": self.plausible, "reasons": list(self.reasons), "checks": dict(self.checks),
                "summary": self.summary}


def foreground_agreement(fixed: sitk.Image, moving: sitk.Image, transform: WorldTransform) -> tuple[float, float]:
    """(overlap, Dice) of the two images' foregrounds through ``transform`` (see module doc)."""
    fixed_fg, moving_fg = foreground(fixed), foreground(moving)
    itk = matrix_to_sitk(transform.matrix)
    fixed_points = mask_points(fixed_fg)                                   # (n, 3) x, y, z
    moving_points = mask_points(moving_fg)
    forward = transform.apply(fixed_points[:, ::-1])[:, ::-1]
    back = transform.inverse().apply(moving_points[:, ::-1])[:, ::-1]
    shares = [float(inside_field_of_view(moving, forward).mean()) if len(forward) else 0.0,
              float(inside_field_of_view(fixed, back).mean()) if len(back) else 0.0]
    warped = sitk.GetArrayFromImage(sitk.Resample(moving_fg, fixed, itk, sitk.sitkNearestNeighbor, 0)) > 0
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    view = sitk.GetArrayFromImage(sitk.Resample(ones, fixed, itk, sitk.sitkNearestNeighbor, 0)) > 0
    body = sitk.GetArrayFromImage(fixed_fg) > 0
    denominator = int((body & view).sum() + (warped & view).sum())
    dice = 2.0 * float((body & warped & view).sum()) / denominator if denominator else 0.0
    return max(shares), dice


def judge(config, transform: WorldTransform, start_translation_zyx, stop_condition: str, images, centre_xyz,
          metric: float, unregistered: float) -> Verdict:
    """The verdict on ``transform`` (fixed → moving); ``images`` = (fixed, moving) working images."""
    reasons, checks = [], {}
    converged = "maximum number of iterations" not in stop_condition.lower()
    checks["converged"] = bool(converged)
    if not converged:
        reasons.append(f"the optimiser did not converge ({stop_condition.strip().rstrip('.')})")
    rotation = transform.rotation_degrees
    checks["rotation_degrees"] = round(rotation, 3)
    if rotation > config.max_rotation_deg:
        reasons.append(f"rotation {rotation:.1f}° exceeds {config.max_rotation_deg:g}°")
    centre = np.asarray(centre_xyz, float)[::-1]                           # (z, y, x)
    moved = transform.apply(centre[None])[0] - centre - np.asarray(start_translation_zyx, float)
    shift = float(np.linalg.norm(moved))
    checks["shift_mm"] = round(shift, 3)
    if shift > config.max_shift_mm:
        reasons.append(f"the anatomy moved {shift:.0f} mm, more than {config.max_shift_mm:g} mm")
    linear = transform.matrix[:3, :3]
    scales = np.linalg.svd(linear, compute_uv=False)
    checks["scales"] = [round(float(s), 4) for s in scales]
    low, high = config.scale_range
    if np.linalg.det(linear) <= 0:
        reasons.append("the transform mirrors the image")
    elif scales.min() < low or scales.max() > high:
        reasons.append(f"scaling {scales.min():.2f}–{scales.max():.2f} is outside {low:g}–{high:g}")
    overlap, dice = foreground_agreement(images[0], images[1], transform)
    checks["overlap"], checks["dice"] = round(overlap, 4), round(dice, 4)
    if overlap < config.min_overlap:
        reasons.append(f"only {overlap:.0%} of a foreground maps inside the other image (needs {config.min_overlap:.0%})")
    if dice < config.min_dice:
        reasons.append(f"the foregrounds disagree after registration (Dice {dice:.2f} < {config.min_dice:g})")
    checks["metric_gain"] = round(float(unregistered - metric), 6) if np.isfinite(unregistered) else None
    if np.isfinite(unregistered) and metric > unregistered + 1e-3 * abs(unregistered):
        reasons.append(f"the metric is worse than without registration ({metric:.4f} > {unregistered:.4f})")
    if not np.isfinite(metric):
        reasons.append("the metric could not be computed at the result")
    return Verdict(plausible=not reasons, reasons=tuple(reasons), checks=checks)
