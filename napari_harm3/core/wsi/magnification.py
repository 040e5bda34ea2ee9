"""From a target magnification to a level-0 patch size, a pyramid level to read, and a resize.

Rule (documented in docs and the feature files): **magnification = 10 / mpp** (µm per pixel), so
40× ≈ 0.25 µm/px, 20× ≈ 0.5 µm/px, 10× ≈ 1 µm/px, 5× ≈ 2 µm/px.

The slide's *base* magnification (that of level 0) comes from, in this order:

1. ``mpp`` given by the user (``--mpp``): 10 / mpp;
2. the slide's microns-per-pixel: 10 / mpp (the physical size: the objective power is only the
   lens's label, and a converted or reduced slide keeps the original label, e.g. a DICOM level
   at 15.8 µm/px that still says 20×);
3. the slide's objective power, when no mpp is recorded;
4. neither: :class:`MissingMetadataError` asking for ``--mpp`` — never a guess.

A patch of ``patch_size`` pixels at the target covers ``round(patch_size × base / target)``
level-0 pixels. It is read from the finest level whose downsample does not exceed the needed
one (never upsampled from a coarser level) and resized to ``patch_size`` (area interpolation).
Magnifications above the base are refused (that would be upsampling).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MPP_HINTS, Harm3Error, MissingMetadataError
from ..vocabulary import OBJECTIVE_MAGNIFICATIONS

MAGNIFICATIONS = OBJECTIVE_MAGNIFICATIONS
MICRONS_AT_1X = 10.0  # mpp × magnification

#: relative tolerance when matching a needed downsample to a pyramid level's
LEVEL_TOLERANCE = 0.01


def mpp_to_magnification(mpp: float) -> float:
    """Nominal magnification of a resolution in µm/px (10 / mpp)."""
    return MICRONS_AT_1X / float(mpp)


def magnification_to_mpp(magnification: float) -> float:
    """µm/px of a nominal magnification (10 / magnification)."""
    return MICRONS_AT_1X / float(magnification)


def base_magnification(slide, mpp: float | None = None, path=None) -> tuple:
    """(magnification of level 0, where it came from) — see the module docstring for the order."""
    if mpp is not None:
        if not mpp > 0:
            raise Harm3Error(f"--mpp must be a positive number of microns per pixel, not {mpp}")
        return mpp_to_magnification(mpp), "mpp given by the user"
    if getattr(slide, "mpp", None):
        return mpp_to_magnification(slide.mpp), "slide mpp"
    if getattr(slide, "objective_power", None):
        return float(slide.objective_power), "slide objective power"
    where = f"{path}: " if path else ""
    raise MissingMetadataError(
        f"{where}the slide records neither microns per pixel nor objective power, so its magnification "
        "is unknown", hints=MPP_HINTS)


@dataclass(frozen=True)
class MagnificationPlan:
    """How to cut patches of ``patch_size`` px at ``magnification`` from one slide."""

    magnification: float | None  # None: native level-0 pixels
    base_magnification: float | None
    source: str
    patch_size: int  # output pixels
    patch_size_level0: int  # level-0 pixels one patch covers (grid step and CLAM ref size)
    read_level: int
    read_size: int  # pixels read at read_level (CLAM's patch_size attribute)
    level_downsample: float

    @property
    def needs_resize(self) -> bool:
        return self.read_size != self.patch_size

    @property
    def mpp(self) -> float | None:
        return None if self.magnification is None else magnification_to_mpp(self.magnification)


def _read_level(level_downsamples, needed: float) -> int:
    """Finest level whose downsample is at most ``needed`` (within LEVEL_TOLERANCE)."""
    best = 0
    for level, downsample in enumerate(level_downsamples):
        if downsample <= needed * (1 + LEVEL_TOLERANCE) and downsample > level_downsamples[best]:
            best = level
    return best


def plan_magnification(slide, magnification: float | None, patch_size: int,
                       mpp: float | None = None, path=None) -> MagnificationPlan:
    """Plan patches at ``magnification`` (None = level 0 as is, CLAM's default)."""
    patch_size = int(patch_size)
    if patch_size < 8:
        raise Harm3Error(f"patch size {patch_size} is too small (at least 8 px)")
    if magnification is None:
        try:
            base, source = base_magnification(slide, mpp, path)
        except MissingMetadataError:
            base, source = None, "native level 0 (no magnification asked)"
        return MagnificationPlan(None, base, source, patch_size, patch_size, 0, patch_size,
                                 float(slide.level_downsamples[0]))
    base, source = base_magnification(slide, mpp, path)
    downsample = base / float(magnification)
    if downsample < 1 - LEVEL_TOLERANCE:
        raise Harm3Error(f"{path or 'slide'}: level 0 is {base:.3g}x ({source}); patches at {magnification:g}x "
                         "would need upsampling — choose a lower magnification")
    size0 = int(round(patch_size * downsample))
    level = _read_level(slide.level_downsamples, downsample)
    level_downsample = float(slide.level_downsamples[level])
    read_size = max(1, int(round(size0 / level_downsample)))
    return MagnificationPlan(float(magnification), base, source, patch_size, size0, level,
                             read_size, level_downsample)


def parse_magnification(text) -> float | None:
    """'20', '20x', 20 → 20.0; 'native' / None → None."""
    if text is None:
        return None
    value = str(text).strip().lower().rstrip("x×")
    if value in ("", "native", "none", "level0"):
        return None
    try:
        result = float(value)
    except ValueError:
        raise Harm3Error(f"magnification {text!r} is not a number (e.g. 20 or 20x) or 'native'") from None
    if result <= 0:
        raise Harm3Error(f"magnification must be positive, not {text!r}")
    return result


def mag_label(magnification: float | None) -> str:
    """'20' for 20.0, '2.5' for 2.5, 'native' for None (used in folder names)."""
    if magnification is None:
        return "native"
    return f"{magnification:g}"
