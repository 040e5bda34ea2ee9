"""The start of a registration: where to begin so that 15–20° and 20 mm of repositioning are found.

A gradient optimiser from the identity finds a small misalignment; a patient lying 20° tilted
weeks later is often beyond its reach (mutual information has local optima at wrong poses).
So the coarsest level first scores a grid of poses and optimises only from the best few:

* rotations: Euler angles about x, y and z within ±``search_deg`` in ``search_step_deg`` steps
  (default ±30° in 15° steps: 125 poses), each about the fixed foreground's centroid;
* translations: the scanner frame's (``init="geometry"``: none) plus, when it is within the shift
  bound, the one that superposes the two foregrounds' centroids; with ``init="moments"`` only the
  latter (volumes from different frames of reference).

Scoring is Mattes MI on the coarsest working images (a few thousand voxels: milliseconds a pose);
the ``search_keep`` best poses, at least one step apart, are optimised at that level and the one
with the lowest metric is the start of the finer levels.
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from .registration_images import mask_points


def rigid_pose(centre, angles_rad=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 0.0)) -> sitk.Euler3DTransform:
    """An Euler transform rotating by ``angles_rad`` (x, y, z) about ``centre``, then shifting."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(v) for v in centre))
    transform.SetRotation(*(float(a) for a in angles_rad))
    transform.SetTranslation(tuple(float(v) for v in translation))
    return transform


def candidate_translations(config, fixed_fg, moving_fg, centre) -> list:
    """Translations (x, y, z mm) to start from: the scanner frame's and/or the centroids' shift."""
    shift = mask_points(moving_fg).mean(axis=0) - np.asarray(centre)
    if config.init == "moments":
        return [shift]
    out = [np.zeros(3)]
    if 1.0 < np.linalg.norm(shift) <= config.max_shift_mm:
        out.append(shift)
    return out


def candidate_angles(config) -> list:
    """Euler angle triples (radians) of the search grid (the identity first)."""
    if config.search_step_deg <= 0 or config.search_deg <= 0:
        return [(0.0, 0.0, 0.0)]
    steps = int(np.floor(config.search_deg / config.search_step_deg + 1e-9))
    values = np.radians(np.arange(-steps, steps + 1) * config.search_step_deg)
    grid = sorted(itertools.product(values, repeat=3), key=lambda a: np.abs(a).sum())
    return [tuple(float(v) for v in a) for a in grid]


def _distinct(scored, keep: int, step_rad: float) -> list:
    """The ``keep`` best (metric, angles, translation) entries, each at least a step from the others."""
    chosen = []
    for entry in sorted(scored, key=lambda e: e[0]):
        if not np.isfinite(entry[0]):
            continue
        if all(np.abs(np.subtract(entry[1], c[1])).max() >= step_rad - 1e-9 or
               np.linalg.norm(np.subtract(entry[2], c[2])) > 1.0 for c in chosen):
            chosen.append(entry)
        if len(chosen) >= keep:
            break
    return chosen


def coarse_search(config, fixed, moving, fixed_fg, moving_fg, fixed_mask, centre, optimise, evaluate):
    """The best starting pose (an Euler3DTransform about ``centre``) at the coarsest level.

    ``evaluate(transform) → metric`` scores a pose; ``optimise(transform) → (transform, metric,
    iterations, stop)`` runs the coarsest level's optimiser from it.
    """
    scored = []
    for translation in candidate_translations(config, fixed_fg, moving_fg, centre):
        for angles in candidate_angles(config):
            scored.append((evaluate(rigid_pose(centre, angles, translation)), angles, tuple(translation)))
    best = _distinct(scored, max(1, int(config.search_keep)), np.radians(max(config.search_step_deg, 1e-6)))
    if not best:  # nothing could be scored: start from the scanner frame and let the levels say
        return rigid_pose(centre)
    results = []
    for _, angles, translation in best:
        transform, metric, _, _ = optimise(rigid_pose(centre, angles, translation))
        results.append((metric if np.isfinite(metric) else np.inf, transform))
    return min(results, key=lambda r: r[0])[1]
