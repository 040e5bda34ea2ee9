"""Inputs of HARM3-Fusion: one :class:`Harm3Sample` per patient, and batches of them.

A sample holds the four prepared MRI volumes (``core/mri/prep.py``), which were present, the
slide's patch features with their coordinates (HARM3's contract: 224-px patches at 20×, any
registered encoder), the pCR label when known, and the preparation needed to map results back.

:func:`samples_from_cohort` reads a cohort folder (``core/io/case.py``); slide features are looked
for under ``<cohort>/features/`` and computed with the slide pipeline when missing.
:func:`planted_samples` makes an in-memory cohort with planted signals for tests and benchmarks
(the on-disk phantom cohort is ``core/synth``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..errors import Harm3Error
from ..io.cohort import load_cohort
from ..mri.case_volumes import CaseVolumes, read_case_volumes
from ..mri.prep import MriPrepConfig, prepare_mri
from ..progress import report
from ..vocabulary import (
    HARM3_SLIDE_MAGNIFICATION,
    REFERENCE_SEQUENCE,
    SEQUENCES,
    ordered_sequences,
)
from ..wsi.prepare import prepare_slide_features

#: HARM3-Fusion's slide feature contract (spec §4)
SLIDE_MAGNIFICATION = HARM3_SLIDE_MAGNIFICATION
SLIDE_PATCH_SIZE = 224


@dataclass(frozen=True, eq=False)
class Harm3Sample:
    case_id: str
    images: np.ndarray                 # (4, D, H, W) float32, SEQUENCES order
    present: tuple                     # (4,) bool
    features: np.ndarray | None        # (N, F) float32 patch features, None without a slide
    coords: np.ndarray | None = None   # (N, 2) level-0 (x, y) of the patches
    label: int | None = None           # pCR 1 / 0
    prep: object = None                # MriPrep (maps crop results back onto the volumes)
    tumour_mask: np.ndarray | None = None  # (D, H, W) on the crop
    volumes: dict = field(default_factory=dict)  # {sequence: Volume} as read (for explanations)
    mask: object = None                # tumour mask as read
    patch_footprint: int | None = None  # the slide patches' side in level-0 pixels


def collate(samples, max_patches: int | None = None, rng: np.random.Generator | None = None, device="cpu"):
    """Stack samples into model inputs; bags longer than ``max_patches`` are subsampled
    (at random with ``rng``, else evenly)."""

    B = len(samples)
    mri = torch.from_numpy(np.stack([s.images for s in samples]).astype(np.float32))   # (B, 4, D, H, W)
    present = torch.tensor([list(map(bool, s.present)) for s in samples], dtype=torch.bool)  # (B, 4)
    bags = []
    for s in samples:
        f = s.features
        if f is None or len(f) == 0:
            bags.append(None)
            continue
        if max_patches is not None and len(f) > max_patches:
            idx = (np.sort(rng.choice(len(f), max_patches, replace=False)) if rng is not None
                   else np.linspace(0, len(f) - 1, max_patches).round().astype(int))
            f = f[idx]
        bags.append(np.asarray(f, np.float32))
    dims = {b.shape[1] for b in bags if b is not None}
    if len(dims) > 1:
        raise Harm3Error(f"slide features of different widths in one batch: {sorted(dims)}")
    slide = slide_mask = None
    slide_present = torch.tensor([b is not None for b in bags], dtype=torch.bool)      # (B,)
    if dims:
        n = max(len(b) for b in bags if b is not None)
        slide = torch.zeros(B, n, dims.pop())                                           # (B, N, F)
        slide_mask = torch.zeros(B, n, dtype=torch.bool)                                # (B, N)
        for i, b in enumerate(bags):
            if b is not None:
                slide[i, :len(b)] = torch.from_numpy(b)
                slide_mask[i, :len(b)] = True
    labels = torch.tensor([float(s.label) if s.label is not None else float("nan") for s in samples])  # (B,)
    out = dict(mri=mri, present=present, slide=slide, slide_mask=slide_mask, slide_present=slide_present)
    out = {k: (v.to(device) if v is not None else None) for k, v in out.items()}
    return out, labels.to(device)


# ---------------------------------------------------------------------- cohort on disk

def slide_features(slide_path, features_root, encoder: str = "texture_stats", progress=None,
                   slide_id: str | None = None, mpp: float | None = None, replace_other_slide: bool = False) -> tuple:
    """(features (N, F), coords (N, 2), footprint) of a slide at HARM3's contract (20×, 224-px
    patches; footprint = the patches' side in level-0 pixels as the patch files record it), read
    from ``features_root`` or computed there by the slide pipeline when absent. Files are named
    ``slide_id`` (pass the case id: slides of different cases may share a file name); ``mpp``
    supplies or overrides the slide's microns per pixel."""
    bags = prepare_slide_features(slide_path, features_root, encoder=encoder, mags=(SLIDE_MAGNIFICATION,),
                                  patch_size=SLIDE_PATCH_SIZE, progress=progress, slide_id=slide_id, mpp=mpp,
                                  replace_other_slide=replace_other_slide)
    bag = bags[SLIDE_MAGNIFICATION]
    return np.asarray(bag.features, np.float32), np.asarray(bag.coords), int(bag.patch_size_level0)


def _roi_mask(volumes: CaseVolumes):
    """The mask that sets the region of interest: T1-pre's (the grid everything is sampled on), else any."""
    if not volumes.masks:
        return None
    key = REFERENCE_SEQUENCE if REFERENCE_SEQUENCE in volumes.masks else next(iter(ordered_sequences(volumes.masks)))
    return volumes.masks[key]


def sample_from_case(case, prep_config: MriPrepConfig | None = None, features_root=None,
                     encoder: str = "texture_stats", use_slide: bool = True, progress=None,
                     volumes: CaseVolumes | None = None, mpp: float | None = None,
                     own_cache: bool = False) -> Harm3Sample:
    """Prepare and featurise one case (a ``core.io.case.Case``).

    The MRI comes through the case's one seam (``core/mri/case_volumes.py``: registration
    transforms applied), read here unless ``volumes`` is given (the case session passes what it
    holds). ``mpp`` is the slide's µm/px as the session resolved it (else the manifest's);
    ``own_cache``: ``features_root`` is this case's alone, so features of a slide file that has
    since changed are recomputed."""
    case_id = str(case.case_id)
    if volumes is None:
        volumes = read_case_volumes(case)
    mask = _roi_mask(volumes)
    report(progress, 0.1, f"{case_id}: preparing MRI")
    prepared = prepare_mri({s: volumes.volumes.get(s) for s in SEQUENCES}, mask, prep_config)
    features = coords = footprint = None
    if use_slide and case.slide is not None:
        if features_root is None:
            raise Harm3Error(f"{case_id}: no folder for slide features given")
        report(progress, 0.4, f"{case_id}: slide features")
        features, coords, footprint = slide_features(case.slide, features_root, encoder, slide_id=case_id,
                                                     mpp=mpp if mpp is not None else case.slide_mpp,
                                                     replace_other_slide=own_cache)
    label = case.labels.pcr
    report(progress, 1.0, f"{case_id}: ready")
    return Harm3Sample(case_id=case_id, images=prepared.images, present=prepared.present, features=features,
                       coords=coords, label=None if label is None else int(label), prep=prepared.prep,
                       tumour_mask=prepared.tumour_mask, volumes=dict(volumes.volumes), mask=mask,
                       patch_footprint=footprint)


def samples_from_cohort(cohort_dir, prep_config: MriPrepConfig | None = None, features_root=None,
                        encoder: str = "texture_stats", require_label: bool = True, use_slide: bool = True,
                        progress=None) -> list:
    """All cases of a cohort folder, prepared; features default to ``<cohort>/features``."""
    cohort_dir = Path(cohort_dir)
    cases = list(load_cohort(cohort_dir).cases)
    if not cases:
        raise Harm3Error(f"{cohort_dir}: the cohort has no cases")
    root = Path(features_root) if features_root is not None else cohort_dir / "features"
    samples = []
    for k, case in enumerate(cases):
        report(progress, k / len(cases), f"case {k + 1}/{len(cases)}")
        s = sample_from_case(case, prep_config, root, encoder, use_slide=use_slide)
        if require_label and s.label is None:
            raise Harm3Error(f"{cohort_dir}: case {s.case_id} has no pCR label (labels: pcr: 0 or 1)")
        samples.append(s)
    report(progress, 1.0, f"{len(samples)} cases ready")
    return samples


# ---------------------------------------------------------------------- planted in-memory cohort

#: small crops, a tight box around the tumour (tests, benchmarks)
PLANTED_PREP = MriPrepConfig(size=(16, 32, 32), margin_mm=3.0, min_extent_mm=(16.0, 20.0, 20.0))

def _phantom_volume(shape, spacing, centre_mm, radius_mm, intensity, rng, origin=(0.0, 0.0, 0.0)):
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = origin
    grids = np.meshgrid(*[np.arange(n) * sp + o for n, sp, o in zip(shape, spacing, origin)], indexing="ij")
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre_mm)))
    tumour = dist <= radius_mm
    data = 100.0 + 0.2 * grids[1] + rng.normal(0.0, 8.0, shape)               # tissue with a gentle gradient
    data = data + intensity * np.clip(radius_mm + 1.0 - dist, 0.0, 1.0)       # soft-edged tumour
    return SimpleNamespace(data=data.astype(np.float32), affine=affine, name="phantom"), tumour


def planted_samples(n: int = 60, seed: int = 0, signal: str = "fusion", shape=(20, 48, 48), spacing=(2.0, 1.0, 1.0),
                    prep_config: MriPrepConfig | None = None, n_patches: int = 48, feature_dim: int = 16) -> list:
    """An in-memory cohort with planted signals (labels follow core.synth's rule).

    ``signal="fusion"``: pCR = 1 if m + s + 0.3ε > −0.35, where m shrinks the tumour from pre to post
    (both sequences) and s sets the fraction of "dark dot" patches in the slide features.
    ``signal="change"``: pCR = 1 if m + 0.3ε > 0; m lowers the tumour's contrast from pre to post
    relative to a baseline contrast that varies widely between patients, so neither time point
    alone tells much; the slide carries no signal.
    """
    rng = np.random.default_rng(seed)
    prep_config = prep_config or PLANTED_PREP
    samples = []
    extent = np.asarray(shape) * np.asarray(spacing)
    for k in range(n):
        m, s, eps = rng.normal(size=3)
        if signal == "fusion":
            label = int(m + s + 0.3 * eps > -0.35)
            base = rng.uniform(50.0, 70.0)
            r_pre = rng.uniform(6.0, 9.0)
            r_post = r_pre * float(np.clip(0.6 - 0.25 * m, 0.15, 1.1))
            c_pre = c_post = base
            dot_fraction = 1.0 / (1.0 + np.exp(-1.5 * s))
        elif signal == "change":
            label = int(m + 0.3 * eps > 0.0)
            r_pre = r_post = rng.uniform(6.0, 8.0)
            c_pre = rng.uniform(25.0, 110.0)
            c_post = c_pre * float(np.clip(0.6 - 0.3 * m, 0.05, 1.2))
            dot_fraction = 0.3
        else:
            raise ValueError(f"unknown planted signal {signal!r} (fusion, change)")
        centre = extent / 2 + rng.uniform(-4.0, 4.0, 3) * np.array([0.5, 1.0, 1.0])
        vols = {}
        mask_pre = None
        for seq in SEQUENCES:
            post = seq.endswith("post")
            scale = 1.0 if seq.startswith("t1") else -0.6                        # T2: the tumour darker
            v, t = _phantom_volume(shape, spacing, centre, r_post if post else r_pre,
                                   scale * (c_post if post else c_pre), rng)
            vols[seq] = v
            if seq == "t1_pre":
                mask_pre = t
        mask = SimpleNamespace(data=mask_pre.astype(np.uint8), affine=vols["t1_pre"].affine, name="tumour")
        prepared = prepare_mri(vols, mask, prep_config)
        feats = rng.normal(0.0, 1.0, (n_patches, feature_dim)).astype(np.float32)
        dots = rng.random(n_patches) < dot_fraction
        feats[dots, :4] += 2.0
        coords = np.stack(np.meshgrid(np.arange(8), np.arange(n_patches // 8 + 1)), -1).reshape(-1, 2)[:n_patches] * 224
        samples.append(Harm3Sample(case_id=f"planted-{k:03d}", images=prepared.images, present=prepared.present,
                                   features=feats, coords=coords, label=label, prep=prepared.prep,
                                   tumour_mask=prepared.tumour_mask, volumes=vols, mask=mask))
    return samples
