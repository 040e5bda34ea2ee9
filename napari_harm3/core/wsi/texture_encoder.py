"""``texture_stats``: a fast, deterministic, weight-free patch encoder (42 features).

Hand-crafted colour and multi-scale texture statistics, computed for a whole batch with torch
operations (CPU or GPU), at the patch's own resolution (no resize: a resize would blur the
pixel-scale textures it is meant to see). Made for tests and the synthetic demo, whose phantom
slides plant

* a pCR signal as the density of small dark round dots → dark-fraction, small-dark-structure
  and dark-dot-count features;
* a survival signal as a period-2 checker texture at 20× (averaged away at 10×) → the
  checker and 1-px high-frequency energies (the 2-px energies stay low);
* large tumour nests → dark fraction that survives a morphological opening, colour means.

Feature order (48): RGB mean (3), RGB std (3), saturation mean/std (2), gray quantiles 10/50/90
(3), gray high-frequency energy at 1/2/4 px (3), red−blue high-frequency energy at 1/2/4 px
(3), checker energy at 1/2 px (2), gradient magnitude at scales 1/2/4 (3), dark fraction at
gray < 0.25/0.55/0.45/0.35 (4), small-dark fraction for openings 17 px (1) and 9 px (1), dark rim
fraction and rim-to-dark ratio (2), nest (dark surviving the 9-px opening) fraction (1), red−blue
and red−green mean differences (2), gray entropy over 8 bins (1), lag-1/lag-2 autocorrelation of
gray along x and y (4), small-dark spread over the 4 patch quadrants (1), blue ratio (1), local
contrast (std of 8-px block means) (1), white fraction gray > 0.85 (1). Colour statistics use
the 4×4-averaged patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TEXTURE_DIM = 42
#: name of each feature, in order
FEATURE_NAMES = (
    "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "sat_mean", "sat_std",
    "gray_q10", "gray_q50", "gray_q90", "hf_gray_1", "hf_gray_2", "hf_gray_4",
    "hf_rb_1", "hf_rb_2", "hf_rb_4", "checker_1", "checker_2", "grad_1", "grad_2", "grad_4",
    "dark_025", "dark_055", "dark_045", "dark_035", "small_dark_17", "small_dark_9",
    "dark_rim", "rim_to_dark", "nest_dark", "r_minus_b", "r_minus_g", "entropy",
    "acorr_x1", "acorr_x2", "acorr_y1", "acorr_y2", "small_dark_spread", "blue_ratio",
    "block_contrast", "white",
)
_GRAY = (0.299, 0.587, 0.114)


def _shift_diff(image: torch.Tensor, d: int) -> torch.Tensor:
    """Mean |x − mean of its 4 neighbours at distance d| over interior pixels: (B, C)."""
    centre = image[..., d:-d, d:-d]
    neighbours = (image[..., :-2 * d, d:-d] + image[..., 2 * d:, d:-d]
                  + image[..., d:-d, :-2 * d] + image[..., d:-d, 2 * d:]) * 0.25
    return (centre - neighbours).abs().mean(dim=(-2, -1))


def _checker(gray: torch.Tensor, d: int) -> torch.Tensor:
    """Mean |g(x,y) − g(x+d,y) − g(x,y+d) + g(x+d,y+d)| / 4: (B, 1)."""
    value = gray[..., :-d, :-d] - gray[..., d:, :-d] - gray[..., :-d, d:] + gray[..., d:, d:]
    return value.abs().mean(dim=(-2, -1)) / 4.0


def _gradient(gray: torch.Tensor, scale: int) -> torch.Tensor:
    if scale > 1:
        gray = F.avg_pool2d(gray, scale)
    gx = gray[..., :, 1:] - gray[..., :, :-1]
    gy = gray[..., 1:, :] - gray[..., :-1, :]
    return (gx[..., :-1, :].pow(2) + gy[..., :, :-1].pow(2)).sqrt().mean(dim=(-2, -1))


def _box_sum(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over the k×k window centred on each pixel (zero outside), via an integral image."""
    r = k // 2
    padded = F.pad(mask, (r + 1, r, r + 1, r))  # (B, 1, H+k, W+k)
    integral = padded.cumsum(-1).cumsum(-2)
    return (integral[..., k:, k:] - integral[..., :-k, k:] - integral[..., k:, :-k]
            + integral[..., :-k, :-k])


def _window_count(n: int, k: int, device) -> torch.Tensor:
    """How many of the k positions centred on each of n positions fall inside [0, n)."""
    i = torch.arange(n, device=device)
    return (torch.clamp(i + k // 2, max=n - 1) - torch.clamp(i - k // 2, min=0) + 1).float()


def _erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary erosion with a k×k square (pixels outside the image are ignored)."""
    h, w = mask.shape[-2:]
    inside = _window_count(h, k, mask.device)[:, None] * _window_count(w, k, mask.device)[None, :]
    return (_box_sum(mask, k) >= inside - 0.5).float()


def _dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    return (_box_sum(mask, k) > 0.5).float()


def _opening(mask: torch.Tensor, k: int) -> torch.Tensor:
    return _dilate(_erode(mask, k), k)


def _gray_histogram(flat: torch.Tensor, bins: int = 64) -> torch.Tensor:
    """Normalised histogram (B, bins) of values in [0, 1] (one bincount for the batch)."""
    b = flat.shape[0]
    index = (flat.clamp(0, 1) * (bins - 1e-3)).long() + bins * torch.arange(b, device=flat.device)[:, None]
    counts = torch.bincount(index.flatten(), minlength=bins * b).view(b, bins).float()
    return counts / flat.shape[1]


def _quantiles(histogram: torch.Tensor, qs) -> torch.Tensor:
    """Quantiles (B, len(qs)) read off a histogram's cumulative sum (bin centres)."""
    cdf = histogram.cumsum(1)
    bins = histogram.shape[1]
    return torch.stack([((cdf < q).sum(1).float() + 0.5) / bins for q in qs], dim=1)


def _autocorr(gray: torch.Tensor, lag: int, dim: int) -> torch.Tensor:
    centred = gray - gray.mean(dim=(-2, -1), keepdim=True)
    var = centred.pow(2).mean(dim=(-2, -1)) + 1e-6
    n = centred.shape[dim]
    a = centred.narrow(dim, 0, n - lag)
    b = centred.narrow(dim, lag, n - lag)
    return (a * b).mean(dim=(-2, -1)) / var


class TextureStats(nn.Module):
    """Weight-free colour + texture statistics; input (B, 3, H, W) float in [0, 1]."""

    output_dim = TEXTURE_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()  # (B, 3, H, W)
        weights = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        gray = (x * weights).sum(dim=1, keepdim=True)  # (B, 1, H, W)
        flat = gray.flatten(1)  # (B, H·W)
        colour = F.avg_pool2d(x, 4)  # (B, 3, H/4, W/4) colour statistics need no full resolution
        maxc, minc = colour.amax(dim=1), colour.amin(dim=1)  # (B, H/4, W/4)
        saturation = (maxc - minc) / (maxc + 1e-6)  # (B, H/4, W/4)
        opponent = x[:, :1] - x[:, 2:3]  # (B, 1, H, W) red − blue (eosin vs haematoxylin)
        dark = (gray < 0.45).float()  # (B, 1, H, W)
        small_dark = dark - _opening(dark, 9)  # (B, 1, H, W) dots, not nests
        dark_rim = dark - _erode(dark, 3)  # (B, 1, H, W) dark pixels next to a light one
        quadrants = F.avg_pool2d(small_dark, (gray.shape[-2] // 2, gray.shape[-1] // 2))  # (B, 1, 2, 2)
        histogram = _gray_histogram(flat)  # (B, 64)
        coarse = histogram.view(-1, 8, 8).sum(2)  # (B, 8)
        entropy = -(coarse * (coarse + 1e-8).log()).sum(1, keepdim=True) / 2.0794  # (B, 1)
        blocks = F.avg_pool2d(gray, 8)  # (B, 1, H/8, W/8)
        dark_fraction = dark.mean(dim=(-2, -1))  # (B, 1)
        parts = [
            colour.mean(dim=(-2, -1)),  # (B, 3)
            colour.std(dim=(-2, -1)),  # (B, 3)
            saturation.mean(dim=(-2, -1)).unsqueeze(1), saturation.std(dim=(-2, -1)).unsqueeze(1),
            _quantiles(histogram, (0.1, 0.5, 0.9)),  # (B, 3)
            torch.cat([_shift_diff(gray, d) for d in (1, 2, 4)], dim=1) * 10.0,  # (B, 3)
            torch.cat([_shift_diff(opponent, d) for d in (1, 2, 4)], dim=1) * 10.0,  # (B, 3)
            torch.cat([_checker(gray, 1), _checker(gray, 2)], dim=1) * 10.0,  # (B, 2)
            torch.cat([_gradient(gray, s) for s in (1, 2, 4)], dim=1) * 10.0,  # (B, 3)
            torch.cat([(gray < t).float().mean(dim=(-2, -1)) for t in (0.25, 0.55)], dim=1),  # (B, 2)
            dark_fraction,  # (B, 1)
            (gray < 0.35).float().mean(dim=(-2, -1)),  # (B, 1)
            (dark - _opening(dark, 17)).mean(dim=(-2, -1)),  # (B, 1)
            small_dark.mean(dim=(-2, -1)),  # (B, 1)
            dark_rim.mean(dim=(-2, -1)) * 10.0,  # (B, 1)
            dark_rim.mean(dim=(-2, -1)) / (dark_fraction + 1e-3),  # (B, 1) high for small round dots
            (dark - small_dark).mean(dim=(-2, -1)),  # (B, 1) dark area in nests (survives the opening)
            (colour[:, 0] - colour[:, 2]).mean(dim=(-2, -1)).unsqueeze(1),
            (colour[:, 0] - colour[:, 1]).mean(dim=(-2, -1)).unsqueeze(1),
            entropy,
            torch.cat([_autocorr(gray, lag, dim) for dim in (-1, -2) for lag in (1, 2)], dim=1),  # (B, 4)
            quadrants.flatten(1).std(dim=1, keepdim=True) * 10.0,  # (B, 1)
            (colour[:, 2] / (colour.sum(dim=1) + 1e-6)).mean(dim=(-2, -1)).unsqueeze(1),
            blocks.flatten(1).std(dim=1, keepdim=True),
            (gray > 0.85).float().mean(dim=(-2, -1)),
        ]
        features = torch.cat(parts, dim=1)  # (B, 42)
        return features
