"""Slide → patch features at several magnifications, cached on disk in CLAM/CrossFusion layout.

:func:`extract_slide` does one slide at one magnification (patches computed or reused, features
resumable, files written atomically); :func:`prepare_slide_features` is what the viewer and the
training code call: features at each magnification, computed once per slide and encoder.
A magnification at which a slide has no tissue patch (a thin biopsy core at 5×) still gets its
files, holding an empty bag (0 rows), and an :class:`EmptyBagWarning` naming the slide and the
magnification; downstream code leaves such slides out (``train.bags.usable_cases``) or says why
it cannot use them (``predict.survival``).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import Harm3Error
from ..progress import report, scaled
from .encoders import create_encoder
from .extraction import extract_features
from .feature_files import (
    FeatureBag,
    PartialFeatures,
    SlideFiles,
    load_clam_features,
    patch_file_path,
    read_patch_file,
    write_feature_files,
    write_patch_file,
)
from .magnification import plan_magnification
from .patching import patch_slide
from .slide_source import open_wsi, slide_name
from .tissue import TissueParams

DEFAULT_MAGS = (5, 10, 20)
#: tissue preset used when no parameters are given (the CLI's default too)
DEFAULT_PRESET = "tcga"
#: preset for the models' inputs (prepare_slide_features): the slide both models read is the
#: pre-treatment *biopsy*, small tissue cores that CLAM's TCGA preset (a_t = 16 patch units)
#: drops entirely
MODEL_INPUT_PRESET = "biopsy"


class EmptyBagWarning(UserWarning):
    """A slide has no tissue patch at a magnification: its feature bag there is empty."""


def empty_bag_message(slide: str, mag) -> str:
    """One line saying that ``slide`` has no tissue patch at ``mag`` (None: native magnification)."""
    at = "native magnification" if mag is None else f"{float(mag):g}x"
    return f"{slide}: no tissue patch at {at}; its feature files hold an empty bag (0 patches)"


def _as_encoder(encoder, weights=None):
    if isinstance(encoder, str):
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return create_encoder(encoder, weights=weights)
    return encoder


def _fingerprint(coords: np.ndarray, encoder, plan) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(coords, dtype=np.int64).tobytes())
    digest.update(f"{encoder.name}|{encoder.weights_sha256}|{plan}".encode())
    return digest.hexdigest()


def _patch_set_for(slide_path, files: SlideFiles, mag, patch_size, mpp, patches_root, params,
                   contour_fn, force, slide):
    """Coordinates + CLAM attributes: from an existing patch file, or computed and written."""
    candidates = [] if force else [files.patches] + (
        [patch_file_path(patches_root, mag, patch_size, files.slide)] if patches_root else [])
    for path in candidates:
        if path.is_file():
            coords, attrs = read_patch_file(path)
            if path != files.patches:
                write_patch_file(files.patches, coords, attrs, overwrite=True)
            return coords, attrs
    patch_set = patch_slide(slide_path, mag, patch_size, params, contour_fn, mpp, slide=slide)
    if patches_root:
        write_patch_file(patch_file_path(patches_root, mag, patch_size, files.slide), patch_set.coords,
                         patch_set.clam_attrs(), overwrite=True)
    write_patch_file(files.patches, patch_set.coords, patch_set.clam_attrs(), overwrite=True)
    return patch_set.coords, patch_set.clam_attrs()


def extract_slide(slide_path, out_root, encoder, mag=20, patch_size: int = 256, mpp=None,
                  patches_root=None, params: TissueParams | None = None, contour_fn: str = "four_pt",
                  batch_size: int = 64, device=None, workers: int = 2, force: bool = False,
                  progress=None, *, slide_id: str | None = None, replace_other_slide: bool = False) -> SlideFiles:
    """Features of one slide at one magnification into ``out_root`` (skipped when done).

    Files are named after ``slide_id`` (default: the slide's file stem, as CLAM does); pass
    a unique id (e.g. the case id) when slides of different cases share a file name. Stored
    features record a fingerprint of the slide file, and reusing them for another slide is an
    error, never a silent mix-up. An interrupted run (``Cancelled`` from ``progress``, a
    crash) resumes from its last stored batch; ``force`` recomputes patches and features.
    ``replace_other_slide``: stored features of another slide under this id are recomputed instead
    of refused (a case's own cache after its slide file changed).
    """
    encoder = _as_encoder(encoder)
    files = SlideFiles.of(out_root, encoder.name, mag, patch_size, slide_id or slide_name(slide_path))
    fingerprint = slide_fingerprint(slide_path)
    if files.done() and not force:
        _check_same_encoder(files, encoder)
        if replace_other_slide and not _same_slide(files, fingerprint):
            force = True  # the case's slide changed: its cached patches and features are stale
        else:
            _check_same_slide(files, fingerprint, slide_path)
            report(progress, 1.0, f"{files.slide} x{mag}: done already")
            return files
    slide = open_wsi(slide_path, mpp=mpp)
    plan = plan_magnification(slide, mag, patch_size, mpp=mpp, path=slide_path)
    coords, attrs = _patch_set_for(slide_path, files, mag, patch_size, mpp, patches_root,
                                   params or TissueParams.from_preset(DEFAULT_PRESET), contour_fn, force, slide)
    if int(attrs.get("patch_size_level0", plan.patch_size_level0)) != plan.patch_size_level0:
        raise Harm3Error(f"{files.patches}: patches cover {attrs['patch_size_level0']} level-0 px, but "
                         f"{patch_size} px at {mag}x needs {plan.patch_size_level0}; use --force")
    partial = PartialFeatures(files.partial, len(coords), encoder.dim, _fingerprint(coords, encoder, plan))
    start = partial.start(resume=not force)
    if start < len(coords):
        extract_features(lambda: open_wsi(slide_path, mpp=mpp), coords, plan, encoder, batch_size,
                         device or torch.device("cpu"), workers, start, on_batch=partial.append,
                         progress=progress, label=f"{files.slide} x{mag}: ")
    features = partial.read()
    meta = {**encoder.provenance(), "magnification": -1.0 if mag is None else float(mag),
            "patch_size": int(patch_size), "patch_size_level0": int(plan.patch_size_level0),
            "read_level": int(plan.read_level), "slide": files.slide, "slide_fingerprint": fingerprint,
            "base_magnification": plan.base_magnification or -1.0, "magnification_source": plan.source}
    write_feature_files(files, features, coords, meta, overwrite=True)
    partial.remove()
    return files


def slide_fingerprint(slide_path, block: int = 1 << 16) -> str:
    """Size + sha256 of the first and last 64 KiB of a slide file: cheap, survives moves and
    renames, and tells different slides apart (used to refuse reusing another slide's features)."""
    path = Path(slide_path)
    if not path.is_file():
        return ""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(block))
        if size > block:
            handle.seek(max(block, size - block))
            digest.update(handle.read(block))
    return f"{size}:{digest.hexdigest()[:32]}"


def _same_slide(files: SlideFiles, fingerprint: str) -> bool:
    _, _, attrs = load_clam_features(files.h5)
    stored = str(attrs.get("slide_fingerprint", ""))
    return not (stored and fingerprint and stored != fingerprint)


def _check_same_slide(files: SlideFiles, fingerprint: str, slide_path) -> None:
    if not _same_slide(files, fingerprint):
        raise Harm3Error(f"{files.h5} holds features of another slide than {slide_path} (same name "
                         f"{files.slide!r}); give each slide a unique id or use another output folder")


def _check_same_encoder(files: SlideFiles, encoder) -> None:
    _, _, attrs = load_clam_features(files.h5)
    stored = attrs.get("weights_sha256", "")
    if stored != (encoder.weights_sha256 or ""):
        raise Harm3Error(f"{files.h5}: made with other {encoder.spec.name} weights "
                         f"(sha256 {stored[:12] or 'random-init'}…); use --force or another output folder")


def load_feature_bag(out_root, encoder: str, slide: str, mag=20, patch_size: int = 256) -> FeatureBag:
    """Read one slide's stored features at ``mag`` (``encoder`` as recorded, e.g. 'texture_stats')."""
    files = SlideFiles.of(out_root, encoder, mag, patch_size, slide)
    features, coords, attrs = load_clam_features(files.h5)
    _, patch_attrs = read_patch_file(files.patches) if files.patches.is_file() else (None, {})
    size0 = int(attrs.get("patch_size_level0", patch_attrs.get("patch_size_level0", patch_size)))
    return FeatureBag(features, coords, size0, mag, str(attrs.get("encoder", encoder)),
                      str(attrs.get("weights_sha256", "")), int(patch_size), slide, attrs)


def prepare_slide_features(slide_path, out_root, encoder="texture_stats", mags=DEFAULT_MAGS,
                           patch_size: int = 256, mpp=None, weights=None, progress=None,
                           device=None, batch_size: int = 64, workers: int = 2,
                           params: TissueParams | None = None, contour_fn: str = "four_pt",
                           slide_id: str | None = None, replace_other_slide: bool = False) -> dict:
    """{mag: FeatureBag} for one slide, computed once per slide and encoder, then read from disk.

    ``encoder`` is a registered name (with ``weights``, a local file) or a built encoder;
    ``slide_id`` names the files (default: the slide's file stem), see :func:`extract_slide`.
    A magnification without any tissue patch gives an empty bag and an :class:`EmptyBagWarning`.
    """
    encoder = _as_encoder(encoder, weights)
    params = params or TissueParams.from_preset(MODEL_INPUT_PRESET)
    bags = {}
    mags = list(mags)
    for k, mag in enumerate(mags):
        sub = scaled(progress, k / len(mags), (k + 1) / len(mags))
        files = extract_slide(slide_path, out_root, encoder, mag, patch_size, mpp, None, params, contour_fn,
                              batch_size, device, workers, False, sub, slide_id=slide_id,
                              replace_other_slide=replace_other_slide)
        bags[mag] = load_feature_bag(out_root, encoder.name, files.slide, mag, patch_size)
        if len(bags[mag]) == 0:
            warnings.warn(EmptyBagWarning(empty_bag_message(files.slide, mag)), stacklevel=2)
    return bags


def slide_paths(paths) -> list:
    """Expand folders into the slide files they hold; keep files as given."""
    suffixes = {".svs", ".ndpi", ".tif", ".tiff", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".dcm", ".svslide"}
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes))
        else:
            out.append(path)
    return out
