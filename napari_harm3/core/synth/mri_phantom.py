"""Head-and-neck MRI phantom: T1 (contrast) and T2, before and after treatment.

The anatomy is a set of implicit shapes in **world millimetres** (LPS: z superior, y posterior,
x patient-left), evaluated at the voxel centres of each scan's own grid. So T1 and T2 can have
different grids (T2 coarser in-plane, like real protocols) and still line up exactly in world
coordinates: one frame of reference per patient.

Axial cross-section (y, x): neck outline with subcutaneous fat, muscle, airway (anterior),
parapharyngeal fat pads, carotid/jugular flow voids, vertebral body with cortical rim, spinal
canal (CSF) with cord, spinous process. The tumour is an irregular ellipsoid beside the airway.

Treatment response (latent ``m``): the post-treatment tumour is the pre-treatment one shrunk
about its centre to a volume ratio :func:`volume_ratio` (m) — strong responders shrink to almost
nothing, non-responders stay or grow; the treated bed it leaves is slightly T2-bright; the
residual tumour's T2 signal falls (and its enhancement drops) as ``m`` grows.

Image formation: tissue intensities (T1 / T2 contrasts differ) × a smooth bias field, a small
Gaussian point-spread, Rician noise (magnitude of complex Gaussian noise), rounded to int16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..vocabulary import SEQUENCES

#: tissue → (T1 post-contrast, T2) intensity, arbitrary scanner units
TISSUE_INTENSITY = {
    "air": (0.0, 0.0),
    "fat": (900.0, 750.0),
    "muscle": (420.0, 300.0),
    "cortex": (60.0, 50.0),
    "marrow": (650.0, 450.0),
    "csf": (250.0, 1100.0),
    "cord": (500.0, 600.0),
    "vessel": (80.0, 60.0),
    "tumour": (720.0, 820.0),
    "treated_bed": (470.0, 420.0),
}
NOISE_SIGMA = 22.0
SEQUENCE_KEYS = SEQUENCES  # the scans, in the vocabulary's order


@dataclass(frozen=True)
class Grid:
    """A scan grid: ``shape`` (nz, ny, nx), ``spacing`` (dz, dy, dx) mm, centred on ``centre`` (z, y, x) mm."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def affine(self) -> np.ndarray:
        """4×4 map from index (k, j, i) to world (z, y, x) mm, LPS."""
        spacing = np.asarray(self.spacing, float)
        origin = np.asarray(self.centre, float) - spacing * (np.asarray(self.shape) - 1) / 2.0
        affine = np.eye(4)
        affine[:3, :3] = np.diag(spacing)
        affine[:3, 3] = origin
        return affine

    def world_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable (z, y, x) world coordinates of the voxel centres (float32)."""
        affine = self.affine
        z = (affine[0, 3] + affine[0, 0] * np.arange(self.shape[0])).astype(np.float32)
        y = (affine[1, 3] + affine[1, 1] * np.arange(self.shape[1])).astype(np.float32)
        x = (affine[2, 3] + affine[2, 2] * np.arange(self.shape[2])).astype(np.float32)
        return z[:, None, None], y[None, :, None], x[None, None, :]

    def shifted(self, shift_mm) -> "Grid":
        return Grid(self.shape, self.spacing, tuple(np.add(self.centre, shift_mm).tolist()))


@dataclass(frozen=True)
class MriSize:
    """T1 and T2 grids of one size preset (T2 coarser in-plane, same field of view)."""

    t1: Grid
    t2: Grid


MRI_SIZES = {
    "small": MriSize(t1=Grid((24, 96, 96), (4.0, 2.0, 2.0)), t2=Grid((24, 64, 64), (4.0, 3.0, 3.0))),
    "demo": MriSize(t1=Grid((40, 224, 224), (3.0, 0.9, 0.9)), t2=Grid((40, 160, 160), (3.0, 1.26, 1.26))),
}


@dataclass(frozen=True)
class PhantomScan:
    """One generated scan: int16 image, its 4×4 affine (index → LPS mm) and the tumour mask (uint8)."""

    key: str
    data: np.ndarray
    affine: np.ndarray
    mask: np.ndarray
    description: str = ""


@dataclass(frozen=True)
class TumourShape:
    """Irregular ellipsoid: centre (z, y, x) mm, semi-axes mm, and a smooth radial wobble."""

    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    directions: np.ndarray = field(repr=False)  # (K, 3) unit vectors
    weights: np.ndarray = field(repr=False)  # (K,)
    phases: np.ndarray = field(repr=False)  # (K,)

    def inside(self, z, y, x, scale: float = 1.0) -> np.ndarray:
        """Boolean: world points inside the tumour shrunk/grown about its centre by ``scale``."""
        if scale <= 0:
            return np.zeros(np.broadcast_shapes(np.shape(z), np.shape(y), np.shape(x)), bool)
        u = [(coord - c) / a for coord, c, a in zip((z, y, x), self.centre, self.semi_axes)]
        rho = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2) + 1e-6
        wobble = np.zeros_like(rho)
        for direction, weight, phase in zip(self.directions, self.weights, self.phases):
            cosine = (u[0] * direction[0] + u[1] * direction[1] + u[2] * direction[2]) / rho
            wobble += weight * np.cos(3.0 * cosine + phase)
        radius = 1.0 + 0.15 * wobble / np.sqrt(len(self.weights))
        return rho <= radius * scale


def volume_ratio(m: float) -> float:
    """Post/pre tumour volume for MRI response ``m`` (decreasing; ≈1.24 at m=−1.5, 0.48 at 0, 0.01 at 2)."""
    return float(1.35 / (1.0 + np.exp(2.0 * (m + 0.3))))


def _sigmoid(v: float) -> float:
    return float(1.0 / (1.0 + np.exp(-v)))


def random_tumour(rng: np.random.Generator) -> TumourShape:
    """A pre-treatment tumour beside the airway, on a random side."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    centre = (rng.uniform(-8, 8), rng.uniform(-16, -8), side * rng.uniform(15, 20))
    semi_axes = (rng.uniform(14, 22), rng.uniform(10, 15), rng.uniform(11, 16))
    k = 5
    directions = rng.standard_normal((k, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return TumourShape(centre, semi_axes, directions, rng.standard_normal(k), rng.uniform(0, 2 * np.pi, k))


@dataclass(frozen=True)
class Anatomy:
    """Per-patient anatomy parameters (small random variations around a typical neck)."""

    neck_axes: tuple[float, float]  # (AP, LR) semi-axes at z = 0, mm
    outline_harmonics: np.ndarray = field(repr=False)  # (3, 2) cos/sin amplitudes of angular orders 2..4
    fat_thickness: float = 7.0
    airway_axes: tuple[float, float] = (8.0, 12.0)
    vertebra_y: float = 24.0


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    return Anatomy(
        neck_axes=(rng.uniform(56, 64), rng.uniform(68, 78)),
        outline_harmonics=rng.normal(0, 0.025, (3, 2)),
        fat_thickness=rng.uniform(5, 9),
        airway_axes=(rng.uniform(6, 9), rng.uniform(10, 14)),
        vertebra_y=rng.uniform(21, 26),
    )


def _ellipse(y, x, cy, cx, ay, ax):
    return ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0


def tissue_labels(anatomy: Anatomy, z, y, x) -> dict[str, np.ndarray]:
    """Boolean maps of each tissue at world points (later tissues overwrite earlier ones)."""
    shape = np.broadcast_shapes(z.shape, y.shape, x.shape)
    taper = 1.0 + 0.002 * z  # wider towards the skull base
    ay, ax = anatomy.neck_axes
    theta = np.arctan2(y / ay, x / ax)
    wobble = 1.0 + sum(
        a * np.cos((order + 2) * theta) + b * np.sin((order + 2) * theta)
        for order, (a, b) in enumerate(anatomy.outline_harmonics)
    )
    rho = np.sqrt((y / (ay * taper)) ** 2 + (x / (ax * taper)) ** 2) / wobble
    body = rho <= 1.0
    muscle = rho <= 1.0 - anatomy.fat_thickness / ay
    vy = anatomy.vertebra_y
    airway_scale = 1.0 + 0.004 * z
    maps = {
        "fat": body,
        "muscle": muscle,
        "fat_pads": muscle & (_ellipse(y, x, -4.0, -24.0, 6.0, 5.0) | _ellipse(y, x, -4.0, 24.0, 6.0, 5.0)),
        "vessel": _ellipse(y, x, 6.0, -31.0, 4.0, 4.0) | _ellipse(y, x, 6.0, 31.0, 4.0, 4.0)
        | _ellipse(y, x, 9.0, -38.0, 5.0, 5.5) | _ellipse(y, x, 9.0, 38.0, 5.0, 5.5),
        "cortex": _ellipse(y, x, vy, 0.0, 12.0, 15.0) | _ellipse(y, x, vy + 34.0, 0.0, 10.0, 4.0),
        "marrow": _ellipse(y, x, vy, 0.0, 10.0, 13.0),
        "csf": _ellipse(y, x, vy + 19.0, 0.0, 7.0, 8.0),
        "cord": _ellipse(y, x, vy + 19.0, 0.0, 4.5, 5.5),
        "air": _ellipse(y, x, -20.0, 0.0, anatomy.airway_axes[0] * airway_scale, anatomy.airway_axes[1] * airway_scale),
    }
    return {name: np.broadcast_to(value, shape) for name, value in maps.items()}


def _bias_field(rng: np.random.Generator, z, y, x, extent: float = 100.0) -> np.ndarray:
    """Smooth multiplicative field ≈ 1 ± 8 % (low-order polynomial in world coordinates)."""
    coefficients = rng.normal(0, 0.04, 6)
    zn, yn, xn = z / extent, y / extent, x / extent
    field_ = 1.0 + coefficients[0] * zn + coefficients[1] * yn + coefficients[2] * xn
    field_ = field_ + coefficients[3] * yn * xn + coefficients[4] * xn**2 + coefficients[5] * yn**2
    return np.clip(field_, 0.8, 1.2).astype(np.float32)


def render_scan(
    grid: Grid,
    sequence: str,
    anatomy: Anatomy,
    tumour: TumourShape,
    m: float,
    post: bool,
    rng: np.random.Generator,
    motion: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Image (int16) and tumour mask (uint8) of one sequence (``"t1"``/``"t2"``) at one time point.

    ``motion``: 4×4 (z, y, x) map from the reference session's points to this session's (the
    patient lies differently): the anatomy at scanner point p is the reference's at motion⁻¹(p).
    The bias field and the noise stay the scanner's.
    """
    channel = 0 if sequence == "t1" else 1
    scanner = grid.world_coordinates()
    z, y, x = scanner if motion is None else _moved_coordinates(scanner, motion)
    labels = tissue_labels(anatomy, z, y, x)
    image = np.zeros(grid.shape, np.float32)
    for name in ("fat", "muscle", "fat_pads", "vessel", "cortex", "marrow", "csf", "cord", "air"):
        tissue = "fat" if name == "fat_pads" else name
        image[labels[name]] = TISSUE_INTENSITY[tissue][channel]
    before = tumour.inside(z, y, x)
    scale = volume_ratio(m) ** (1.0 / 3.0) if post else 1.0
    now = tumour.inside(z, y, x, scale) if post else before
    tumour_value = TISSUE_INTENSITY["tumour"][channel]
    if post:
        image[before & ~now] = TISSUE_INTENSITY["treated_bed"][channel]
        response = _sigmoid(1.5 * m)
        tumour_value *= (1.0 - 0.35 * response) if channel == 1 else (1.0 - 0.2 * response)
    heterogeneity = ndimage.gaussian_filter(rng.standard_normal(grid.shape).astype(np.float32), (0.7, 1.5, 1.5))
    heterogeneity *= 0.08 / max(float(heterogeneity.std()), 1e-6)
    image = np.where(now, tumour_value * (1.0 + heterogeneity), image).astype(np.float32)
    image *= _bias_field(rng, *scanner)
    image = ndimage.gaussian_filter(image, (0.3, 0.6, 0.6))
    noise = rng.normal(0.0, NOISE_SIGMA, (2,) + grid.shape).astype(np.float32)
    magnitude = np.sqrt((image + noise[0]) ** 2 + noise[1] ** 2)
    return np.clip(np.round(magnitude), 0, 32767).astype(np.int16), now.astype(np.uint8)


def _moved_coordinates(scanner, motion: np.ndarray):
    """Reference-session (z, y, x) coordinates (full arrays) of a grid's scanner points."""
    z, y, x = np.broadcast_arrays(*scanner)
    inverse = np.linalg.inv(np.asarray(motion, float))
    return tuple((inverse[a, 0] * z + inverse[a, 1] * y + inverse[a, 2] * x + inverse[a, 3]).astype(np.float32)
                 for a in range(3))


def generate_mri(
    seed_sequence: np.random.SeedSequence,
    m: float,
    size: str = "small",
    post_shift_mm=(0.0, 0.0, 0.0),
    post_motion: np.ndarray | None = None,
) -> dict[str, PhantomScan]:
    """The four scans (``SEQUENCE_KEYS``) of one patient from its MRI seed stream and response ``m``.

    Post-treatment scans use the pre-treatment grid moved by ``post_shift_mm`` (z, y, x). Without
    ``post_motion`` the anatomy stays put in world coordinates (shared frame of reference); with
    it (a 4×4 (z, y, x) rigid map, pre-session point → post-session point) the patient lies
    differently at the post-treatment session, the same way for its T1 and T2.
    """
    if size not in MRI_SIZES:
        raise ValueError(f"unknown MRI size {size!r}; choose one of {sorted(MRI_SIZES)}")
    anatomy_seq, tumour_seq, *scan_seqs = seed_sequence.spawn(2 + len(SEQUENCE_KEYS))
    anatomy = random_anatomy(np.random.default_rng(anatomy_seq))
    tumour = random_tumour(np.random.default_rng(tumour_seq))
    preset = MRI_SIZES[size]
    scans = {}
    for key, scan_seq in zip(SEQUENCE_KEYS, scan_seqs):
        sequence, time_point = key.split("_")
        grid = preset.t1 if sequence == "t1" else preset.t2
        post = time_point == "post"
        if post:
            grid = grid.shifted(post_shift_mm)
        data, mask = render_scan(grid, sequence, anatomy, tumour, m, post, np.random.default_rng(scan_seq),
                                 motion=post_motion if post else None)
        label = f"{'T1 contrast-enhanced' if sequence == 't1' else 'T2'}, {'post' if post else 'pre'}-treatment"
        scans[key] = PhantomScan(key, data, grid.affine, mask, f"synthetic phantom: {label}")
    return scans
