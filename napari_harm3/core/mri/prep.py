"""MRI preparation for HARM3-Fusion (spec §1), with its exact inverse.

Four volumes of one patient (T1/T2 × pre/post) are put on one grid:

1. the T1-pre grid is reoriented (axis permutation and flips only, no interpolation) to the
   orientation named in the config (default RAS in nibabel's sense: data[k, j, i] with
   i → right, j → anterior, k → superior);
2. a region of interest is chosen on that grid: the tumour mask's bounding box with a margin,
   or the volume centre;
3. a crop grid of fixed size (default (24, 128, 128)) spans that box; every volume is sampled
   on it in **world** coordinates (so time points stay aligned when the scanner frame is shared);
4. intensities are clipped to the 0.5–99.5 percentiles of the whole volume, then z-scored.

``MriPrep`` keeps the crop grid's affine, so :func:`crop_to_volume` puts any map computed on the
crop (Grad-CAM, a segmentation) back on the voxels of any volume the viewer shows.

Volumes are duck-typed: anything with ``data`` (nz, ny, nx) and ``affine`` (4×4, index (k, j, i)
→ world (z, y, x) in mm, LPS) — :class:`napari_harm3.core.io.mri.Volume` and masks alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import affine_transform

from ..errors import Harm3Error
from ..vocabulary import SEQUENCES

# world axes are (z, y, x) in LPS: +z superior, +y posterior, +x left
_ORIENTATION_SIGNS = {"S": (0, +1), "I": (0, -1), "P": (1, +1), "A": (1, -1), "L": (2, +1), "R": (2, -1)}


@dataclass(frozen=True)
class MriPrepConfig:
    """Preparation choices (the paper leaves all of them open; these are our defaults)."""

    size: tuple = (24, 128, 128)          # (D, H, W) of the crop
    orientation: str = "RAS"              # nibabel-style code for the (i, j, k) axes of data[k, j, i]
    margin_mm: float = 10.0               # added around the tumour mask's bounding box
    min_extent_mm: tuple = (30.0, 60.0, 60.0)   # smallest box (z, y, x) around a small tumour
    centre_extent_mm: tuple | None = None  # box at the volume centre without a mask (None: whole field of view)
    clip_percentiles: tuple = (0.5, 99.5)
    interpolation_order: int = 1          # 1 = trilinear


@dataclass(frozen=True, eq=False)
class MriPrep:
    """The forward mapping of one patient's preparation (everything needed to invert it)."""

    config: MriPrepConfig
    crop_affine: np.ndarray               # 4×4: crop index (d, h, w) → world (z, y, x) mm
    crop_shape: tuple                     # (D, H, W)
    reference_affine: np.ndarray          # the reoriented T1-pre grid
    reference_shape: tuple
    roi_source: str                       # "mask" or "centre"
    intensity: dict = field(default_factory=dict)  # sequence -> {"low", "high", "mean", "sd"}
    present: tuple = (True, True, True, True)      # which of SEQUENCES were given


@dataclass(frozen=True, eq=False)
class PreparedMri:
    images: np.ndarray                    # (4, D, H, W) float32, zeros where a volume is missing
    present: tuple                        # (4,) bool, order of SEQUENCES
    prep: MriPrep
    tumour_mask: np.ndarray | None = None  # (D, H, W) bool on the crop when a mask was given


# --------------------------------------------------------------------------- grids

def reorient(data: np.ndarray, affine: np.ndarray, orientation: str = "RAS"):
    """Permute/flip ``data`` (nz, ny, nx) so its axes follow ``orientation``; returns (data, affine).

    Exact (no interpolation): the new affine maps new indices to the same world points.
    """
    orientation = orientation.upper()
    if len(orientation) != 3 or set(orientation) - set(_ORIENTATION_SIGNS):
        raise Harm3Error(f"orientation {orientation!r} is not a 3-letter code like RAS or LPS")
    # code letters are for (i, j, k); data axes are (k, j, i)
    wanted = [_ORIENTATION_SIGNS[c] for c in orientation[::-1]]  # per new data axis: (world axis, sign)
    if len({w for w, _ in wanted}) != 3:
        raise Harm3Error(f"orientation {orientation!r} names one direction twice")
    affine = np.asarray(affine, dtype=float)
    direction = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0, keepdims=True)  # (3 world, 3 old axes)
    world_of_old = [-1, -1, -1]
    for _ in range(3):  # greedy: the largest remaining cosine first
        masked = np.abs(direction).copy()
        for a, w in enumerate(world_of_old):
            if w >= 0:
                masked[:, a] = -1
                masked[w, :] = -1
        w, a = np.unravel_index(np.argmax(masked), masked.shape)
        world_of_old[a] = int(w)
    perm, flips = [], []
    for w_new, sign in wanted:
        a_old = world_of_old.index(w_new)
        perm.append(a_old)
        flips.append(np.sign(direction[w_new, a_old]) != sign)
    out = np.transpose(np.asarray(data), perm)
    # P: new index -> old index
    P = np.zeros((4, 4))
    P[3, 3] = 1.0
    for n, a_old in enumerate(perm):
        if flips[n]:
            P[a_old, n] = -1.0
            P[a_old, 3] = data.shape[a_old] - 1
        else:
            P[a_old, n] = 1.0
    for n, f in enumerate(flips):
        if f:
            out = np.flip(out, axis=n)
    return np.ascontiguousarray(out), affine @ P


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:3, :3].T + affine[:3, 3]


def _spacing(affine: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)


def crop_grid(ref_affine, ref_shape, config: MriPrepConfig, mask=None):
    """The crop's affine on the (reoriented) reference grid; returns (affine, roi_source)."""
    ref_affine = np.asarray(ref_affine, float)
    spacing = _spacing(ref_affine)
    size = np.asarray(config.size, float)
    roi_source = "centre"
    if mask is not None and np.any(np.asarray(mask.data) > 0):
        idx = np.argwhere(np.asarray(mask.data) > 0).astype(float)                    # (n, 3) mask indices
        corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
        lo_m, hi_m = idx.min(0), idx.max(0)
        box = lo_m - 0.5 + corners * (hi_m - lo_m + 1.0)                             # (8, 3) voxel-edge corners
        ref_idx = _apply(np.linalg.inv(ref_affine), _apply(np.asarray(mask.affine, float), box))
        lo, hi = ref_idx.min(0), ref_idx.max(0)                                       # edges in reference index
        centre = (lo + hi) / 2
        extent = (hi - lo) + 2 * config.margin_mm / spacing
        extent = np.maximum(extent, np.asarray(config.min_extent_mm, float) / spacing)
        roi_source = "mask"
    else:
        centre = (np.asarray(ref_shape, float) - 1) / 2
        extent = np.asarray(ref_shape, float)
        if config.centre_extent_mm is not None:
            extent = np.asarray(config.centre_extent_mm, float) / spacing
    step = extent / size                                                              # reference voxels per crop voxel
    S = np.eye(4)
    S[:3, :3] = np.diag(step)
    S[:3, 3] = centre - (size - 1) / 2 * step
    return ref_affine @ S, roi_source


def sample_on_grid(data, affine, grid_affine, grid_shape, order: int = 1, cval: float = 0.0):
    """Sample a volume (data, affine) at the world points of another grid (trilinear by default)."""

    M = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(grid_affine, float)    # grid index -> data index
    return affine_transform(np.asarray(data, dtype=np.float32), M[:3, :3], offset=M[:3, 3],
                            output_shape=tuple(int(s) for s in grid_shape), order=order,
                            mode="constant", cval=cval, prefilter=False)


def intensity_stats(data, percentiles=(0.5, 99.5)) -> dict:
    data = np.asarray(data, dtype=np.float32)
    sample = data[::2, ::2, ::2] if data.size > 8_000_000 else data
    low, high = np.percentile(sample, percentiles)
    clipped = np.clip(sample, low, high)
    sd = float(clipped.std())
    return {"low": float(low), "high": float(high), "mean": float(clipped.mean()), "sd": sd if sd > 1e-8 else 1.0}


# --------------------------------------------------------------------------- forward / inverse

def prepare_mri(volumes: dict, mask=None, config: MriPrepConfig | None = None) -> PreparedMri:
    """Prepare one patient's volumes ``{sequence: Volume | None}`` on the T1-pre crop grid.

    A missing sequence gives zeros and ``present[i] = False``. Without T1-pre the first present
    volume (in :data:`SEQUENCES` order) is the reference grid.
    """
    config = config or MriPrepConfig()
    unknown = set(volumes) - set(SEQUENCES)
    if unknown:
        raise Harm3Error(f"unknown MRI sequence(s) {sorted(unknown)}; expected {', '.join(SEQUENCES)}")
    present = tuple(volumes.get(s) is not None for s in SEQUENCES)
    if not any(present):
        raise Harm3Error("no MRI volume given; HARM3-Fusion needs at least one of " + ", ".join(SEQUENCES))
    reference = volumes[SEQUENCES[present.index(True)]]
    for s in SEQUENCES:
        v = volumes.get(s)
        if v is not None and (np.ndim(v.data) != 3 or np.asarray(v.affine).shape != (4, 4)):
            raise Harm3Error(f"{s}: expected a 3D volume with a 4×4 affine, got shape {np.shape(v.data)}")
    ref_data, ref_affine = reorient(reference.data, reference.affine, config.orientation)
    grid_affine, roi_source = crop_grid(ref_affine, ref_data.shape, config, mask)
    shape = tuple(int(s) for s in config.size)
    images = np.zeros((4,) + shape, np.float32)                                       # (4, D, H, W)
    stats = {}
    for n, s in enumerate(SEQUENCES):
        v = volumes.get(s)
        if v is None:
            continue
        st = intensity_stats(v.data, config.clip_percentiles)
        crop = sample_on_grid(v.data, v.affine, grid_affine, shape, config.interpolation_order, cval=st["low"])
        images[n] = (np.clip(crop, st["low"], st["high"]) - st["mean"]) / st["sd"]   # (D, H, W)
        stats[s] = st
    tumour = None
    if mask is not None:
        tumour = sample_on_grid((np.asarray(mask.data) > 0).astype(np.float32), mask.affine, grid_affine, shape, 1) >= 0.5
    prep = MriPrep(config=config, crop_affine=grid_affine, crop_shape=shape, reference_affine=ref_affine,
                   reference_shape=tuple(ref_data.shape), roi_source=roi_source, intensity=stats, present=present)
    return PreparedMri(images=images, present=present, prep=prep, tumour_mask=tumour)


def map_affine(prep: MriPrep, map_shape) -> np.ndarray:
    """Affine of a map of ``map_shape`` that spans the crop box (a coarser or finer crop grid)."""
    ratio = np.asarray(prep.crop_shape, float) / np.asarray(map_shape, float)
    S = np.eye(4)
    S[:3, :3] = np.diag(ratio)
    S[:3, 3] = (ratio - 1) / 2                                                        # voxel centres stay centred
    return np.asarray(prep.crop_affine) @ S


def crop_to_volume(crop_map, prep: MriPrep, target_volume, order: int = 1) -> np.ndarray:
    """Put a map computed on the crop (any grid spanning the crop box) onto ``target_volume``'s voxels.

    Returns float32 of ``target_volume.data.shape``; zero outside the crop box.
    """
    crop_map = np.asarray(crop_map, dtype=np.float32)
    if crop_map.ndim != 3:
        raise Harm3Error(f"a crop map must be 3D (D, H, W), got shape {crop_map.shape}")
    src_affine = map_affine(prep, crop_map.shape)
    shape = np.shape(target_volume.data)
    target_affine = np.asarray(target_volume.affine, float)
    out = np.zeros(shape, np.float32)
    # only the target voxels inside the crop box's bounding box are sampled
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    box = -0.5 + corners * np.asarray(crop_map.shape, float)
    t_idx = _apply(np.linalg.inv(target_affine), _apply(src_affine, box))
    lo = np.clip(np.floor(t_idx.min(0)).astype(int), 0, np.asarray(shape))
    hi = np.clip(np.ceil(t_idx.max(0)).astype(int) + 1, 0, np.asarray(shape))
    if np.any(hi <= lo):
        return out
    sub = np.eye(4)
    sub[:3, 3] = lo
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = sample_on_grid(
        crop_map, src_affine, target_affine @ sub, tuple(hi - lo), order=order, cval=0.0)
    return out
