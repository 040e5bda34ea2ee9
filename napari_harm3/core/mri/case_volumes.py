"""The one seam where a case's volumes are read: files → volumes in the case's reference frame.

Every consumer — the viewer's linked grid, HARM3-Fusion's preparation, training, validation,
the report and the DICOM export — reads a case's MRI through :func:`read_case_volumes`, so all of
them see the same voxels on the same world coordinates. Registration enters here and nowhere
else: a sequence with a transform in the manifest (``transforms:``, ITK convention, see
``transforms.py``) gets its affine replaced by ``T⁻¹ · A`` (index → own world → reference
world). No voxel is resampled, so the map is exact, and anything computed on a volume's voxels
(a Grad-CAM map, a mask) lands where the volume is shown.

A tumour mask is read on its own sequence's original grid (an RTSTRUCT's contours are in that
scan's frame), then moved with the same transform as its sequence. A mask whose sequence has no
volume is rasterised on the first volume present and moved with that volume's transform.

For display only, :func:`for_display` puts every volume and mask on a grid napari can slice
(``reslice.py``): a volume acquired in another plane or obliquely — or turned by its
registration — is resampled onto the reference's grid and says so in its metadata
(``resliced_onto``). Models, training and validation keep reading the unresampled volumes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputFileError
from ..io.masks import read_mask
from ..io.mri import Volume, read_volume
from ..progress import ProgressFn, report
from ..vocabulary import (
    REFERENCE_SEQUENCE,
    SEQUENCES,
    ordered_sequences,
    sequence_title,
)
from .reslice import RESLICED, Grid, place_on, place_reference
from .transforms import WorldTransform, aligned_affine, read_transform


@dataclass(frozen=True, eq=False)
class CaseVolumes:
    """A case's MRI as read through the seam: every volume and mask in the reference frame."""

    volumes: dict = field(default_factory=dict)      # sequence → Volume (affine: index → reference world)
    masks: dict = field(default_factory=dict)        # sequence → LabelVolume, same frame as its sequence
    transforms: dict = field(default_factory=dict)   # sequence → WorldTransform applied (absent: none)
    original_affines: dict = field(default_factory=dict)  # sequence → the file's own affine

    @property
    def sequences(self) -> list:
        return ordered_sequences(self.volumes)

    @property
    def reference(self) -> str | None:
        """The sequence whose frame the others are in: t1_pre, else the first one present."""
        if REFERENCE_SEQUENCE in self.volumes:
            return REFERENCE_SEQUENCE
        return next(iter(self.sequences), None)

    def registered(self, sequence: str) -> bool:
        return sequence in self.transforms


def align(volume: Volume, transform: WorldTransform | None) -> Volume:
    """``volume`` placed in the reference frame through ``transform`` (affine only; no resampling)."""
    if transform is None:
        return volume
    metadata = {**dict(volume.metadata or {}), "registration": transform.source or transform.kind}
    return dataclasses.replace(volume, affine=aligned_affine(volume.affine, transform), metadata=metadata)


def case_transforms(case) -> dict:
    """{sequence: WorldTransform} of the manifest's ``transforms`` (read and checked)."""
    out = {}
    for key, path in (getattr(case, "transforms", None) or {}).items():
        if key == REFERENCE_SEQUENCE:
            raise InputFileError(path, f"{key} is the case's reference frame and takes no transform")
        out[key] = read_transform(path)
    return out


def read_case_volumes(case, sequences=SEQUENCES, with_masks: bool = True,
                      progress: ProgressFn | None = None) -> CaseVolumes:
    """Read the case's volumes (those of ``sequences`` it has) and masks, aligned to its reference.

    ``progress`` may raise ``Cancelled`` (a cancel token's wrapper): reading stops between files.
    """
    wanted = [s for s in ordered_sequences(case.mri) if s in sequences and case.mri.get(s)]
    mask_keys = [s for s in ordered_sequences(case.masks or {}) if (case.masks or {}).get(s)] if with_masks else []
    transforms = case_transforms(case)
    unused = sorted(set(transforms) - set(case.mri))
    if unused:
        raise InputFileError(transforms[unused[0]].source, f"transform for {unused[0]}, but the case has no such volume")
    steps = max(1, len(wanted) + len(mask_keys))
    raw, volumes = {}, {}
    for n, seq in enumerate(wanted):
        report(progress, n / steps, f"reading {sequence_title(seq)}")
        path, uid = case.mri_source(seq)
        raw[seq] = read_volume(path, series_uid=uid)
        volumes[seq] = align(raw[seq], transforms.get(seq))
    masks = {}
    for n, seq in enumerate(mask_keys, start=len(wanted)):
        report(progress, n / steps, f"reading the {sequence_title(seq)} mask")
        host = seq if seq in raw else next(iter(raw), None)
        path, _ = case.mask_source(seq)
        mask = read_mask(path, reference=raw.get(host))
        masks[seq] = align(mask, transforms.get(host)) if host is not None else mask
    report(progress, 1.0, "volumes read")
    return CaseVolumes(volumes=volumes, masks=masks, transforms={k: v for k, v in transforms.items() if k in volumes},
                       original_affines={k: np.asarray(v.affine) for k, v in raw.items()})


def _placed(volume: Volume, placed, grid_name: str) -> Volume:
    metadata = dict(volume.metadata or {})
    metadata["display_placement"] = placed.how
    if placed.how == RESLICED:
        metadata["resliced_onto"] = placed.onto or grid_name
        metadata["source_affine"] = np.asarray(volume.affine, dtype=float)
    return dataclasses.replace(volume, data=placed.data, affine=placed.affine, metadata=metadata)


def for_display(volumes: CaseVolumes) -> CaseVolumes:
    """The case's volumes and masks on axis-aligned grids for the viewer (see the module
    docstring); the reference is reoriented exactly (or, when oblique itself, resampled onto the
    box around it), the others that are not axis-aligned are resliced onto the reference's grid."""
    reference = volumes.reference
    if reference is None:
        return volumes
    title = sequence_title(reference)
    placed_ref, grid = place_reference(volumes.volumes[reference].data, volumes.volumes[reference].affine, title)
    grid = Grid(grid.shape, grid.affine, title)
    shown = {}
    for seq, volume in volumes.volumes.items():
        placed = placed_ref if seq == reference else place_on(volume.data, volume.affine, grid)
        shown[seq] = _placed(volume, placed, title)
    masks = {seq: _placed(mask, place_on(mask.data, mask.affine, grid, labels=True), title)
             for seq, mask in volumes.masks.items()}
    return dataclasses.replace(volumes, volumes=shown, masks=masks)
