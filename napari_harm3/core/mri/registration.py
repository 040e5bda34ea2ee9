"""Rigid or affine registration of two MRI volumes (SimpleITK, Mattes mutual information).

:func:`register_volumes` (fixed, moving) → :class:`RegistrationResult` whose ``transform`` maps
the FIXED image's physical (LPS mm) points to the MOVING image's — ITK's, SimpleITK's and 3D
Slicer's convention, the one ``transforms.py`` reads and writes and a case manifest holds.

How (Mattes MI so T1 against T2, pre against post contrast work alike):

1. **Working images per level** (``registration_images.working_image``): each volume smoothed and
   resampled so every axis is at least the level's voxel (default 8, 4, 2, 1 mm), keeping its own
   orientation; a thick-sliced axis stays as it is. Coarse to fine, each level starts where the
   previous one ended.
2. **Initialisation that survives repositioning** (``registration_search.py``): the rotation is
   centred on the fixed foreground's centroid; at the coarsest level an exhaustive search over
   Euler angles (default ±30° in 15° steps about each axis, 125 poses), from the scanner frame
   ("geometry": identity, plus the foregrounds' centroid shift when it is small) or from the
   centroids alone ("moments": volumes from different frames of reference); the best few poses
   are optimised at that level and the best one goes on.
3. **Optimiser**: regular-step gradient descent with scales from the physical shift, per level
   up to ``iterations``; ``affine`` refines the rigid result with a full affine at the two finest
   levels.
4. **Verdict** (``registration_checks.py``): converged, rotation / shift / scale within bounds,
   foregrounds overlapping after registration. A result that fails is returned *with* its
   verdict, never raised away and never applied by the callers (the CLI exits 2, ``harm3 align``
   leaves the manifest alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk

from ..errors import Harm3Error
from ..progress import ProgressFn, report
from .registration_checks import Verdict, judge
from .registration_images import (
    foreground,
    mask_points,
    physical_bounds,
    volume_to_sitk,
    working_image,
)
from .registration_search import candidate_translations, coarse_search
from .transforms import WorldTransform, itk_to_world, sitk_to_matrix

MODES = ("rigid", "affine")
#: the affine stage's first step, in level voxels: with the rigid stage's (half a voxel, at least
#: 1 mm) an unmoved 0.4 × 5.2 mm series collapsed (scales down to 0.21) on samples leaving the
#: moving image's field of view; at a quarter voxel it stays within 1.5 % of the identity
AFFINE_FIRST_STEP = 0.25
INITIALISATIONS = ("geometry", "moments")


@dataclass(frozen=True)
class RegistrationConfig:
    """How to register (defaults: rigid, scanner frame trusted as the start, 8 → 1 mm)."""

    mode: str = "rigid"                       # "rigid" (6 parameters) or "affine" (12)
    init: str = "geometry"                    # "geometry" (scanner frames) or "moments" (foreground centroids)
    levels_mm: tuple = (8.0, 4.0, 2.0, 1.0)   # working voxel per level, coarse → fine
    histogram_bins: int = 32
    samples: int = 60000                      # metric samples per level (random, fixed seed; all when fewer)
    iterations: int = 300                     # optimiser iterations per level at most
    search_deg: float = 30.0                  # coarse search: Euler angles within ±search_deg ...
    search_step_deg: float = 15.0             # ... in steps of this (0: no search)
    search_keep: int = 3                      # best poses of the search optimised at the coarsest level
    max_rotation_deg: float = 45.0            # plausibility bounds (see registration_checks.py)
    max_shift_mm: float = 60.0
    scale_range: tuple = (0.8, 1.25)
    min_overlap: float = 0.5
    min_dice: float = 0.6
    seed: int = 0
    threads: int | None = None                # SimpleITK threads (None: its default, all cores)

    def __post_init__(self):
        if self.mode not in MODES:
            raise Harm3Error(f"unknown registration mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.init not in INITIALISATIONS:
            raise Harm3Error(f"unknown initialisation {self.init!r}; choose one of {', '.join(INITIALISATIONS)}")
        levels = tuple(float(v) for v in self.levels_mm)
        if not levels or any(v <= 0 for v in levels):
            raise Harm3Error(f"registration levels must be positive voxel sizes in mm, got {self.levels_mm!r}")
        object.__setattr__(self, "levels_mm", levels)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True, eq=False)
class RegistrationResult:
    """A registration's outcome: the transform FIXED → MOVING and how it was reached and judged."""

    transform: WorldTransform                 # fixed (z, y, x) LPS point → moving point
    mode: str
    metric: float                             # final Mattes MI (negative; lower is better) at the finest level
    metric_unregistered: float                # the same metric at the scanner-frame identity
    iterations: int                           # optimiser iterations over all levels
    iterations_per_level: tuple
    seconds: float
    stop_condition: str                       # the finest level's optimiser stop condition
    verdict: Verdict
    config: RegistrationConfig
    initial: WorldTransform                   # the pose the coarse search chose
    fixed_source: str = ""
    moving_source: str = ""
    itk_transform: object = field(default=None, repr=False)  # the SimpleITK transform (for writing)

    @property
    def plausible(self) -> bool:
        return self.verdict.plausible

    def to_dict(self) -> dict:
        """The JSON record written next to the transform file."""
        return {
            "convention": "maps FIXED physical points (LPS mm) to MOVING points (ITK / SimpleITK / 3D Slicer)",
            "fixed": self.fixed_source, "moving": self.moving_source, "mode": self.mode,
            "metric": "mattes_mutual_information", "final_metric": self.metric,
            "unregistered_metric": self.metric_unregistered,
            "iterations": self.iterations, "iterations_per_level": list(self.iterations_per_level),
            "seconds": round(self.seconds, 3), "stop_condition": self.stop_condition,
            "rotation_degrees": round(self.transform.rotation_degrees, 4),
            "matrix_zyx": np.round(self.transform.matrix, 8).tolist(),
            "verdict": self.verdict.to_dict(), "parameters": self.config.to_dict(),
        }


@contextlib.contextmanager
def _threads(count):
    if not count:
        yield
        return
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(count))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _method(config: RegistrationConfig, fixed: sitk.Image, fixed_mask: sitk.Image | None, voxel_mm: float,
            finest: bool = True, first_step_mm: float | None = None):
    """An ImageRegistrationMethod for one level: Mattes MI, linear interpolation, RSGD.

    Coarser levels only bring the next one within reach: a quarter of the samples and a
    five times larger smallest step than the finest level (which decides the accuracy).
    """
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(config.histogram_bins))
    voxels = int(np.prod(fixed.GetSize()))
    if fixed_mask is not None:
        voxels = max(1, int(np.count_nonzero(sitk.GetArrayViewFromImage(fixed_mask))))
        method.SetMetricFixedMask(fixed_mask)
    samples = config.samples if finest else max(5000, config.samples // 4)
    if voxels > samples:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(min(1.0, samples / voxels), int(config.seed) + 1)
    else:
        method.SetMetricSamplingStrategy(method.NONE)
    method.SetInterpolator(sitk.sitkLinear)
    # image gradients by central differences where they are needed: the precomputed gradient
    # images (ITK's default) are smoothed differently from the interpolated values, which left
    # an unmoved pair 0.3° (0.4 mm mean) off the metric's true optimum; without them 0.04°
    method.SetMetricUseFixedImageGradientFilter(False)
    method.SetMetricUseMovingImageGradientFilter(False)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=first_step_mm or max(1.0, 0.5 * voxel_mm), minStep=(0.002 if finest else 0.01) * voxel_mm,
        numberOfIterations=int(config.iterations),
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-10)
    method.SetOptimizerScalesFromPhysicalShift()
    return method


def _run_level(config, fixed, moving, fixed_mask, voxel_mm, transform, finest: bool = True,
               first_step_mm: float | None = None):
    """Optimise ``transform`` (a copy) on one level; returns (transform, metric, iterations, stop)."""
    method = _method(config, fixed, fixed_mask, voxel_mm, finest, first_step_mm)
    method.SetInitialTransform(transform, inPlace=False)
    try:
        out = method.Execute(fixed, moving)
    except RuntimeError as exc:
        raise Harm3Error("the registration failed: the images do not overlap enough to be compared "
                         f"({' '.join(str(exc).split())[-120:]})") from None
    if isinstance(out, sitk.CompositeTransform) and out.GetNumberOfTransforms() == 1:
        out = out.GetNthTransform(0)
    out = out.Downcast() if hasattr(out, "Downcast") else out
    return out, float(method.GetMetricValue()), int(method.GetOptimizerIteration()), \
        method.GetOptimizerStopConditionDescription()


def metric_value(config, fixed, moving, fixed_mask, voxel_mm, transform, finest: bool = True) -> float:
    """Mattes MI of ``moving`` through ``transform`` against ``fixed`` (no optimisation)."""
    method = _method(config, fixed, fixed_mask, voxel_mm, finest)
    method.SetInitialTransform(transform, inPlace=False)
    try:
        return float(method.MetricEvaluate(fixed, moving))
    except RuntimeError:
        return float("nan")


def _world(transform: sitk.Transform) -> WorldTransform:
    return WorldTransform(itk_to_world(sitk_to_matrix(transform)), kind=transform.GetName())


def _affine_from(rigid: sitk.Transform, centre) -> sitk.AffineTransform:
    affine = sitk.AffineTransform(3)
    affine.SetCenter(tuple(centre))
    matrix = np.asarray(rigid.GetMatrix()).reshape(3, 3)
    affine.SetMatrix(tuple(matrix.ravel()))
    # same map: R(p − c) + c + t  ⇒  translation = T(c) − c
    affine.SetTranslation(tuple(np.array(rigid.TransformPoint(tuple(centre))) - np.asarray(centre)))
    return affine


def register_volumes(fixed, moving, config: RegistrationConfig | None = None, fixed_mask=None,
                     progress: ProgressFn | None = None) -> RegistrationResult:
    """Register ``moving`` onto ``fixed`` (Volumes, or anything with ``data`` and ``affine``).

    ``fixed_mask``: optional volume (non-zero = inside), on the fixed image's grid or any grid in
    the fixed frame, restricting where the metric is sampled (at levels where it holds at least
    ``MIN_MASK_VOXELS`` voxels). Raises :class:`Harm3Error` when the
    images cannot be compared (no overlap in the scanner frame with ``init="geometry"``, empty
    images); an implausible result comes back with ``verdict.plausible`` False.
    """
    config = config or RegistrationConfig()
    start = time.perf_counter()
    with _threads(config.threads):
        fixed_image, moving_image = volume_to_sitk(fixed), volume_to_sitk(moving)
        mask_image = _mask_image(fixed_mask)
        levels = config.levels_mm
        pyramid = [(working_image(fixed_image, v), working_image(moving_image, v)) for v in levels]
        report(progress, 0.05, "foregrounds")
        coarse_fixed, coarse_moving = pyramid[0]
        fixed_fg, moving_fg = foreground(coarse_fixed), foreground(coarse_moving)
        for name, mask, volume in (("fixed", fixed_fg, fixed), ("moving", moving_fg, moving)):
            if not np.any(sitk.GetArrayViewFromImage(mask)):
                raise Harm3Error(f"the {name} image {getattr(volume, 'source', '')} has no foreground (empty or constant)")
        centre = mask_points(fixed_fg).mean(axis=0)
        if config.init == "geometry":
            _check_overlap(fixed_image, moving_image, config.max_shift_mm, fixed, moving)

        report(progress, 0.1, "coarse search over rotations")
        masks = [_level_mask(mask_image, f) for f, _ in pyramid]
        initial = coarse_search(config, coarse_fixed, coarse_moving, fixed_fg, moving_fg, masks[0], centre,
                                lambda t: _run_level(config, coarse_fixed, coarse_moving, masks[0], levels[0], t,
                                                     len(levels) == 1),
                                lambda t: metric_value(config, coarse_fixed, coarse_moving, masks[0], levels[0], t,
                                                       len(levels) == 1))
        transform, per_level, stop, metric = initial, [], "", float("nan")
        affine_from = max(0, len(levels) - 2)
        for n, ((f, m), voxel) in enumerate(zip(pyramid, levels)):
            report(progress, 0.2 + 0.75 * n / len(levels), f"level {n + 1}/{len(levels)} ({voxel:g} mm)")
            finest = n == len(levels) - 1
            transform, metric, iterations, stop = _run_level(config, f, m, masks[n], voxel, transform, finest)
            per_level.append(iterations)
            if config.mode == "affine" and n >= affine_from:
                transform = _affine_from(transform, centre) if not isinstance(transform, sitk.AffineTransform) else transform
                transform, metric, iterations, stop = _run_level(config, f, m, masks[n], voxel, transform, finest,
                                                                 AFFINE_FIRST_STEP * voxel)
                per_level[-1] += iterations
        finest_fixed, finest_moving = pyramid[-1]
        unregistered = metric_value(config, finest_fixed, finest_moving, masks[-1], levels[-1], sitk.Euler3DTransform())
        result_transform = _world(transform)
        start_shift = candidate_translations(config, fixed_fg, moving_fg, centre)[0]   # (x, y, z)
        verdict = judge(config, result_transform, np.asarray(start_shift)[::-1], stop,
                        pyramid[min(1, len(pyramid) - 1)], centre, metric, unregistered)
    report(progress, 1.0, "registered" if verdict.plausible else "registration implausible")
    return RegistrationResult(
        transform=result_transform, mode=config.mode, metric=metric, metric_unregistered=unregistered,
        iterations=int(sum(per_level)), iterations_per_level=tuple(per_level), seconds=time.perf_counter() - start,
        stop_condition=stop, verdict=verdict, config=config, initial=_world(initial),
        fixed_source=str(getattr(fixed, "source", "")), moving_source=str(getattr(moving, "source", "")),
        itk_transform=transform)


#: a fixed mask with fewer voxels than this on a level's grid is not used at that level
MIN_MASK_VOXELS = 100


def _mask_image(mask) -> sitk.Image | None:
    if mask is None:
        return None
    binary = np.asarray(mask.data) > 0
    if not binary.any():
        raise Harm3Error(f"the fixed mask {getattr(mask, 'source', '')} is empty".replace("  ", " "))
    return volume_to_sitk(SimpleNamespace(data=binary.astype(np.uint8), affine=mask.affine), np.uint8)


def _level_mask(mask_image, grid: sitk.Image):
    """The fixed mask on a level's grid (None without a mask, or where it would hold too few voxels
    to sample: a small region at a coarse level)."""
    if mask_image is None:
        return None
    out = sitk.Resample(mask_image, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return out if np.count_nonzero(sitk.GetArrayViewFromImage(out)) >= MIN_MASK_VOXELS else None


def _check_overlap(fixed_image, moving_image, margin_mm: float, fixed, moving) -> None:
    """In the scanner frame, the fields of view must meet (within ``margin_mm``)."""
    low_f, high_f = physical_bounds(fixed_image)
    low_m, high_m = physical_bounds(moving_image)
    gap = np.maximum(0.0, np.maximum(low_f - high_m, low_m - high_f))    # (x, y, z) separation, mm
    if np.linalg.norm(gap) > margin_mm:
        raise Harm3Error(
            f"the moving image {getattr(moving, 'source', '') or ''} does not overlap the fixed image "
            f"{getattr(fixed, 'source', '') or ''}: their fields of view are {np.linalg.norm(gap):.0f} mm apart "
            "in the scanner frame; if they come from different frames of reference, align them by their "
            "content (--init moments)".replace("  ", " "))
