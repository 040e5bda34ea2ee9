"""H&E-like biopsy whole-slide phantom at 20× (0.5 µm/px), vectorised numpy.

What is on the slide (every size in level-0 pixels):

* a few elongated tissue pieces (biopsy cores) with wobbly edges on white glass;
* pink eosin stroma with coarse stain variation, fibre streaks and small loose gaps,
  sparse spindle-shaped fibroblast nuclei;
* **tumour nests** (latent ``c``): purple-pink cytoplasm crowded with large pleomorphic nuclei.
  The nests' correlation length (≈ 110·e^{0.35c} px) and tissue fraction (22 % + 12 %·tanh 0.8c)
  grow with ``c`` — a coarse structure seen at 5× and 10×;
* **lymphocytes** (latent ``s``): small dark round nuclei (radius 3–4 px) scattered in clusters
  through the tissue, fewer inside nests; their density is 0.07·e^{0.75s} per 16×16 cell
  (capped), seen at 20× and 10×;
* **chromatin granularity** (latent ``f``): inside tumour nests, a checkerboard ``±δ`` grey
  level added per pixel, ``δ = clip(round(8 + 4f), 1, 20)``, on whole aligned 2×2 blocks with
  no clipping, so every 2×2 box mean is exactly the image without it: it exists at 20× only
  and vanishes exactly at 10× and 5× (pyramid levels are 2×2 box means).

Colour: Beer–Lambert mixing of haematoxylin and eosin optical densities (Ruifrok's
haematoxylin vector, a pinker eosin vector), plus a little per-pixel grain. Large fields are drawn at 1/16 and 1/4 resolution and
upsampled bilinearly; nuclei are stamped from point lists; the image is rendered in bands of
``BAND_ROWS`` rows so a demo-size slide never needs more than a few bands of float memory.
Each ingredient has its own random stream, so changing one latent score leaves the rest of the
slide untouched (tests compare slides that differ in one score only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

BASE_MPP = 0.5
BASE_OBJECTIVE_POWER = 20
COARSE = 16  # downsampling of the tissue / nest / cluster fields
MID = 4  # downsampling of the stain-texture fields
BAND_ROWS = 1024

#: (height, width) in level-0 pixels of each size preset
SLIDE_SIZES = {"small": (2048, 3072), "demo": (8192, 12288)}

HAEMATOXYLIN = np.array([0.650, 0.704, 0.286], np.float32)
EOSIN = np.array([0.216, 0.801, 0.558], np.float32)
GLASS_OD = np.array([0.022, 0.024, 0.018], np.float32)
LN10 = float(np.log(10.0))

TUMOUR_CELL = 16
STROMA_CELL = 40
LYMPHOCYTE_CELL = 16
LYMPHOCYTE_STAIN = 1.5


def checker_amplitude(f: float) -> int:
    """Grey-level amplitude δ of the 20× chromatin checkerboard for fine score ``f``."""
    return int(np.clip(np.round(8.0 + 4.0 * f), 1, 20))


def lymphocyte_probability(s: float) -> float:
    """Probability that a 16×16 cell of (non-nest) tissue holds a lymphocyte, for slide score ``s``."""
    return float(min(0.6, 0.07 * np.exp(0.75 * s)))


def nest_length_px(c: float) -> float:
    """Correlation length of the tumour-nest field (level-0 px) for coarse score ``c``."""
    return float(110.0 * np.exp(0.35 * c))


def nest_fraction(c: float) -> float:
    """Fraction of the tissue covered by tumour nests for coarse score ``c``."""
    return float(0.22 + 0.12 * np.tanh(0.8 * c))


@dataclass(frozen=True)
class Nuclei:
    """Elliptic nuclei: centres (y, x), semi-axes (ry, rx) and angle (radians), stain (H density)."""

    y: np.ndarray
    x: np.ndarray
    ry: np.ndarray
    rx: np.ndarray
    angle: np.ndarray
    stain: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, keep: np.ndarray) -> "Nuclei":
        return Nuclei(*(getattr(self, name)[keep] for name in ("y", "x", "ry", "rx", "angle", "stain")))


@dataclass(frozen=True)
class SlidePlan:
    """Every random decision of one slide; :func:`render_band` turns it into pixels."""

    height: int
    width: int
    tissue: np.ndarray = field(repr=False)  # (H/16, W/16) soft tissue map in [0, 1]
    nest: np.ndarray = field(repr=False)  # (H/16, W/16) signed nest field (> 0 inside a nest)
    eosin_texture: np.ndarray = field(repr=False)  # (H/4, W/4) stromal eosin density
    nuclei: tuple[Nuclei, ...] = field(repr=False)  # tumour, stromal, lymphocytes
    checker: int = 0
    grain_seeds: tuple = field(default=(), repr=False)

    @property
    def lymphocytes(self) -> Nuclei:
        return self.nuclei[2]


@dataclass(frozen=True)
class SlidePhantom:
    """A rendered slide: RGB uint8 (H, W, 3) at ``mpp`` µm/px and its ground truth."""

    image: np.ndarray
    plan: SlidePlan
    mpp: float = BASE_MPP
    objective_power: int = BASE_OBJECTIVE_POWER

    def tissue_mask(self) -> np.ndarray:
        """Boolean tissue mask at 1/16 resolution."""
        return self.plan.tissue > 0.5

    def nest_mask(self) -> np.ndarray:
        """Boolean tumour-nest mask at 1/16 resolution."""
        return (self.plan.nest > 0) & self.tissue_mask()


def _unit_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation (float32)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="reflect")
    return noise / max(float(noise.std()), 1e-6)


def upsample_rows(low: np.ndarray, factor: int, row0: int, row1: int) -> np.ndarray:
    """Bilinear upsampling (pixel-centre aligned) of ``low`` by ``factor``, rows [row0, row1) only.

    Identical to resizing the whole field and cropping, because the slab carries two low-res
    rows of margin and borders replicate exactly as a full resize would.
    """
    first = max(0, row0 // factor - 2)
    last = min(low.shape[0], -(-row1 // factor) + 2)
    slab = np.ascontiguousarray(low[first:last], dtype=np.float32)
    big = cv2.resize(slab, (low.shape[1] * factor, slab.shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    return big[row0 - first * factor : row1 - first * factor]


def sample_field(low: np.ndarray, factor: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear value of a low-res field at level-0 points (same alignment as :func:`upsample_rows`)."""
    coords = np.stack([(np.asarray(y) + 0.5) / factor - 0.5, (np.asarray(x) + 0.5) / factor - 0.5])
    return ndimage.map_coordinates(low, coords, order=1, mode="nearest")


def jittered_points(rng: np.random.Generator, height: int, width: int, cell: int):
    """One uniformly placed point per ``cell``×``cell`` square (a blue-noise-like point set)."""
    ny, nx = -(-height // cell), -(-width // cell)
    gy, gx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    y = (gy + rng.random(gy.shape)) * cell
    x = (gx + rng.random(gx.shape)) * cell
    keep = (y < height) & (x < width)
    return y[keep].astype(np.float32), x[keep].astype(np.float32)


def _tissue_field(rng: np.random.Generator, low_shape) -> np.ndarray:
    """Soft map of 2–4 elongated biopsy pieces with wobbly edges (1/16 resolution)."""
    hl, wl = low_shape
    n_pieces = int(rng.integers(2, 5))
    yy, xx = np.mgrid[0:hl, 0:wl].astype(np.float32)
    wobble = _unit_noise(rng, low_shape, 3.0 * hl / 128.0)  # edge wobble scales with the pieces
    distance = np.full(low_shape, np.inf, np.float32)
    slot = wl / n_pieces
    for piece in range(n_pieces):
        cy = hl * rng.uniform(0.4, 0.6)
        cx = slot * (piece + 0.5 + rng.uniform(-0.1, 0.1))
        major = hl * rng.uniform(0.30, 0.42)
        minor = min(slot * rng.uniform(0.18, 0.32), major * 0.8)
        theta = rng.uniform(-0.6, 0.6)  # radians from vertical
        dy, dx = yy - cy, xx - cx
        along = dy * np.cos(theta) + dx * np.sin(theta)
        across = -dy * np.sin(theta) + dx * np.cos(theta)
        distance = np.minimum(distance, np.sqrt((along / major) ** 2 + (across / minor) ** 2))
    inside = (distance + 0.12 * wobble <= 1.0).astype(np.float32)
    return ndimage.gaussian_filter(inside, 0.8)


def _nest_field(rng: np.random.Generator, tissue: np.ndarray, c: float) -> np.ndarray:
    """Signed tumour-nest field: > 0 inside a nest; scale and tissue fraction grow with ``c``."""
    white = rng.standard_normal(tissue.shape).astype(np.float32)
    detail = _unit_noise(rng, tissue.shape, 1.5)
    sigma = nest_length_px(c) / COARSE
    smooth = ndimage.gaussian_filter(white, sigma, mode="reflect")
    smooth /= max(float(smooth.std()), 1e-6)
    field_ = smooth + 0.3 * detail
    in_tissue = field_[tissue > 0.5]
    threshold = np.quantile(in_tissue, 1.0 - nest_fraction(c)) if in_tissue.size else 0.0
    return (field_ - threshold).astype(np.float32)


def _eosin_texture(rng: np.random.Generator, mid_shape) -> np.ndarray:
    """Stromal eosin density at 1/4 resolution: broad variation, fibre streaks, loose gaps."""
    coarse = _unit_noise(rng, (mid_shape[0] * MID // COARSE, mid_shape[1] * MID // COARSE), 3.0)
    variation = cv2.resize(coarse, (mid_shape[1], mid_shape[0]), interpolation=cv2.INTER_LINEAR)
    fibres = _unit_noise(rng, mid_shape, (2.5, 0.5))
    gaps = np.clip(_unit_noise(rng, mid_shape, 1.2) - 1.8, 0.0, 1.0)
    return ((0.28 + 0.06 * variation + 0.05 * fibres) * (1.0 - 0.85 * gaps)).astype(np.float32)


def _tumour_nuclei(rng, height, width, tissue, nest) -> Nuclei:
    y, x = jittered_points(rng, height, width, TUMOUR_CELL)
    radius = rng.uniform(5.0, 7.0, y.shape).astype(np.float32)
    aspect = rng.uniform(0.75, 1.0, y.shape).astype(np.float32)
    nuclei = Nuclei(y, x, radius, radius * aspect, rng.uniform(0, np.pi, y.shape).astype(np.float32),
                    rng.uniform(0.6, 0.95, y.shape).astype(np.float32))
    keep = (sample_field(nest, COARSE, y, x) > 0) & (rng.random(y.shape) < 0.9)
    return nuclei.subset(keep & (sample_field(tissue, COARSE, y, x) > 0.5))


def _stromal_nuclei(rng, height, width, tissue, nest) -> Nuclei:
    y, x = jittered_points(rng, height, width, STROMA_CELL)
    n = y.shape
    orientation = float(rng.uniform(0, np.pi))
    nuclei = Nuclei(y, x, rng.uniform(2.5, 3.5, n).astype(np.float32), rng.uniform(9.0, 13.0, n).astype(np.float32),
                    (orientation + rng.normal(0, 0.35, n)).astype(np.float32), np.full(n, 0.75, np.float32))
    keep = (sample_field(tissue, COARSE, y, x) > 0.6) & (sample_field(nest, COARSE, y, x) < -0.2)
    return nuclei.subset(keep & (rng.random(n) < 0.6))


def _lymphocytes(rng, height, width, tissue, nest, s: float) -> Nuclei:
    y, x = jittered_points(rng, height, width, LYMPHOCYTE_CELL)
    n = y.shape
    clusters = np.exp(0.8 * _unit_noise(rng, tissue.shape, 4.0))
    clusters /= float(clusters.mean())
    radius = rng.uniform(3.0, 4.0, n).astype(np.float32)
    nuclei = Nuclei(y, x, radius, radius, np.zeros(n, np.float32), np.full(n, LYMPHOCYTE_STAIN, np.float32))
    probability = lymphocyte_probability(s) * sample_field(clusters, COARSE, y, x)
    probability *= np.where(sample_field(nest, COARSE, y, x) > 0, 0.4, 1.0)
    keep = (sample_field(tissue, COARSE, y, x) > 0.5) & (rng.random(n) < probability)
    return nuclei.subset(keep)


def plan_slide(seed_sequence: np.random.SeedSequence, s: float, c: float, f: float, size="small") -> SlidePlan:
    """All random choices of one slide from its seed stream and the latent scores ``s, c, f``.

    ``size``: a preset name (``SLIDE_SIZES``) or ``(height, width)`` in level-0 pixels, both
    multiples of 64.
    """
    height, width = SLIDE_SIZES[size] if isinstance(size, str) else map(int, size)
    if height % 64 or width % 64 or height <= 0 or width <= 0:
        raise ValueError(f"slide size must be positive multiples of 64, got {height}×{width}")
    tissue_seq, nest_seq, stain_seq, tumour_seq, stroma_seq, lymph_seq, grain_seq = seed_sequence.spawn(7)
    low_shape = (height // COARSE, width // COARSE)
    mid_shape = (height // MID, width // MID)
    tissue = _tissue_field(np.random.default_rng(tissue_seq), low_shape)
    nest = _nest_field(np.random.default_rng(nest_seq), tissue, c)
    eosin_texture = _eosin_texture(np.random.default_rng(stain_seq), mid_shape)
    nuclei = (
        _tumour_nuclei(np.random.default_rng(tumour_seq), height, width, tissue, nest),
        _stromal_nuclei(np.random.default_rng(stroma_seq), height, width, tissue, nest),
        _lymphocytes(np.random.default_rng(lymph_seq), height, width, tissue, nest, s),
    )
    n_bands = -(-height // BAND_ROWS)
    return SlidePlan(height, width, tissue, nest, eosin_texture, nuclei,
                     checker_amplitude(f), tuple(grain_seq.spawn(n_bands)))


def stamp_nuclei(target: np.ndarray, row0: int, nuclei: Nuclei) -> None:
    """Write each nucleus' stain density into ``target`` (rows ``row0``…), keeping the maximum."""
    if len(nuclei) == 0:
        return
    reach = int(np.ceil(max(float(nuclei.ry.max()), float(nuclei.rx.max())))) + 1
    rows, width = target.shape
    near = (nuclei.y >= row0 - reach) & (nuclei.y < row0 + rows + reach)
    nuclei = nuclei.subset(near)
    if len(nuclei) == 0:
        return
    offsets = np.arange(-reach, reach + 1, dtype=np.int32)
    py = np.floor(nuclei.y).astype(np.int32)[:, None, None] + offsets[None, :, None]
    px = np.floor(nuclei.x).astype(np.int32)[:, None, None] + offsets[None, None, :]
    dy = py + 0.5 - nuclei.y[:, None, None]
    dx = px + 0.5 - nuclei.x[:, None, None]
    cos, sin = np.cos(nuclei.angle)[:, None, None], np.sin(nuclei.angle)[:, None, None]
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    rho = np.sqrt((along / nuclei.rx[:, None, None]) ** 2 + (across / nuclei.ry[:, None, None]) ** 2)
    edge = np.minimum(nuclei.rx, nuclei.ry)[:, None, None]
    value = np.clip((1.0 - rho) * edge + 0.5, 0.0, 1.0) * nuclei.stain[:, None, None]
    py, px = np.broadcast_arrays(py, px)
    valid = (value > 0) & (py >= row0) & (py < row0 + rows) & (px >= 0) & (px < width)
    np.maximum.at(target, (py[valid] - row0, px[valid]), value[valid].astype(target.dtype))


def render_band(plan: SlidePlan, row0: int, row1: int, band_index: int) -> np.ndarray:
    """RGB uint8 pixels of rows [row0, row1) (``row0`` even). Hot loop: in-place numpy and cv2."""
    tissue = upsample_rows(plan.tissue, COARSE, row0, row1)
    tissue -= 0.35
    tissue *= 1.0 / 0.3
    np.clip(tissue, 0.0, 1.0, out=tissue)
    nest = upsample_rows(plan.nest, COARSE, row0, row1)
    nest *= 3.0
    nest += 0.5
    np.clip(nest, 0.0, 1.0, out=nest)
    nest *= tissue
    eosin = cv2.multiply(cv2.subtract(tissue, nest), upsample_rows(plan.eosin_texture, MID, row0, row1))
    eosin = cv2.scaleAdd(nest, 0.2, eosin)
    haematoxylin = cv2.addWeighted(tissue, 0.04, nest, 0.12, 0.0)
    for nuclei in plan.nuclei:
        stamp_nuclei(haematoxylin, row0, nuclei)
    # per-pixel grain: uniform bytes → density factor 1 ± 0.1 (one cv2 pass)
    grain = np.frombuffer(np.random.default_rng(plan.grain_seeds[band_index]).bytes(tissue.size), np.uint8)
    density = cv2.addWeighted(grain.reshape(tissue.shape), 0.2 / 255.0, grain.reshape(tissue.shape), 0.0, 0.9,
                              dtype=cv2.CV_32F)
    channels = []
    for h, e, glass in zip(HAEMATOXYLIN, EOSIN, GLASS_OD):
        exponent = cv2.addWeighted(haematoxylin, -LN10 * float(h), eosin, -LN10 * float(e), -LN10 * float(glass))
        channels.append(cv2.convertScaleAbs(cv2.exp(cv2.multiply(exponent, density)), alpha=255.0))
    return _add_checker(cv2.merge(channels), nest, plan.checker)


def _add_checker(rgb: np.ndarray, nest: np.ndarray, amplitude: int) -> np.ndarray:
    """Add ±amplitude per pixel (checkerboard) on whole 2×2 blocks inside nests; box means unchanged.

    Pixels of those blocks are first clipped to [amplitude, 255 − amplitude], so adding and
    subtracting never saturates and every 2×2 mean stays exactly that of the clipped image.
    The band must start on an even row (the sign is (−1)^(row + column) of level 0).
    """
    if amplitude <= 0:
        return rgb
    blocks = (nest[0::2, 0::2] > 0.5).astype(np.uint8)
    mask = cv2.resize(blocks, (blocks.shape[1] * 2, blocks.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    mask = np.ascontiguousarray(mask[: rgb.shape[0], : rgb.shape[1]])
    high, low = (255 - amplitude,) * 4, (amplitude,) * 4  # cv2 scalars are 4-tuples, one value per channel
    clipped = cv2.max(cv2.min(rgb, high), low)
    rgb = cv2.copyTo(clipped, mask, rgb)
    even = np.zeros(mask.shape, np.uint8)
    even[0::2, 0::2] = amplitude
    even[1::2, 1::2] = amplitude
    plus = cv2.multiply(mask, even)
    minus = cv2.subtract(mask * np.uint8(amplitude), plus)
    rgb = cv2.add(rgb, cv2.merge([plus, plus, plus]))
    return cv2.subtract(rgb, cv2.merge([minus, minus, minus]))


def render_slide(plan: SlidePlan, progress=None) -> np.ndarray:
    """The whole RGB uint8 image (H, W, 3), band by band."""
    image = np.empty((plan.height, plan.width, 3), np.uint8)
    for band_index, row0 in enumerate(range(0, plan.height, BAND_ROWS)):
        row1 = min(plan.height, row0 + BAND_ROWS)
        image[row0:row1] = render_band(plan, row0, row1, band_index)
        if progress is not None:
            progress(row1 / plan.height, "rendering slide")
    return image


def generate_slide(seed_sequence: np.random.SeedSequence, s: float, c: float, f: float, size="small",
                   progress=None) -> SlidePhantom:
    """Plan and render one biopsy slide (20×, 0.5 µm/px)."""
    plan = plan_slide(seed_sequence, s, c, f, size)
    return SlidePhantom(render_slide(plan, progress), plan)
