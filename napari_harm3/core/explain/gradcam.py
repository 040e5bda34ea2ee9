"""Explanations of HARM3-Fusion: Grad-CAM on the MRI (paper Fig. 2) and slide attention.

Grad-CAM (Selvaraju et al., ICCV 2017) of the pCR **logit** at the 3D extractor's last
convolutional layer, computed with the ``grad-cam`` package (``pytorch_grad_cam.GradCAM``, which
handles Conv3d). The package wants ``model(input) → scores``; :class:`LogitOfMri` holds the other
inputs fixed so that the input is the MRI stack and the score the logit. One map per volume,
on the crop, in [0, 1]; :func:`maps_on_volumes` puts them on each volume's own voxel grid.

The slide's pooling attention becomes one score per patch (:func:`slide_patch_scores`), drawn as a
heatmap at the patches' coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mri.prep import SEQUENCES, crop_to_volume


@dataclass(frozen=True, eq=False)
class VolumeMap:
    """A float map in [0, 1] on a volume's voxel grid (napari: an image layer with this affine)."""

    sequence: str
    data: np.ndarray        # (nz, ny, nx) float32
    affine: np.ndarray      # 4×4 index (k, j, i) → world (z, y, x) mm, LPS


def _logit_module(model, present, slide, slide_mask, slide_present):
    import torch

    class LogitOfMri(torch.nn.Module):
        """model(mri) → (B, 1) pCR logit, the other inputs held fixed."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, mri):
            out = self.model(mri, present, slide, slide_mask, slide_present)
            return out.logit[:, None]                                            # (B, 1)

    return LogitOfMri()


class _LogitTarget:
    def __call__(self, output):
        return output[0]                                                         # the sample's logit


def mri_gradcam(model, mri, present=None, slide=None, slide_mask=None, slide_present=None) -> np.ndarray:
    """Grad-CAM of the pCR logit per volume: (B, 4, D, H, W) float32 in [0, 1] on the crop.

    A missing volume's map is all zeros (its tokens were a placeholder; nothing to explain).
    """
    import torch
    from pytorch_grad_cam import GradCAM

    if not model.config.use_mri:
        raise ValueError("this model has no MRI branch (slide-only ablation); nothing to explain on the MRI")
    B = mri.shape[0]
    if present is None:
        present = torch.ones(B, 4, dtype=torch.bool, device=mri.device)
    was_training = model.training
    wrapper = _logit_module(model, present, slide, slide_mask, slide_present)
    layers = model.gradcam_layers
    cams = np.zeros((B, 4) + tuple(mri.shape[2:]), np.float32)                  # (B, 4, D, H, W)
    try:
        with torch.enable_grad():
            if model.config.share_extractor:
                # one extractor sees the B·4 volumes as one batch: one CAM per volume
                with GradCAM(model=wrapper, target_layers=layers) as cam:
                    out = cam(input_tensor=mri, targets=[_LogitTarget() for _ in range(B)])  # (B·4, D, H, W)
                cams[:] = np.asarray(out, np.float32).reshape(cams.shape)
            else:
                for v, layer in enumerate(layers):
                    with GradCAM(model=wrapper, target_layers=[layer]) as cam:
                        cams[:, v] = cam(input_tensor=mri, targets=[_LogitTarget() for _ in range(B)])  # (B, D, H, W)
    finally:
        model.train(was_training)
    cams *= present.cpu().numpy()[:, :, None, None, None]                        # missing volumes: 0
    return np.clip(np.nan_to_num(cams), 0.0, 1.0)


def maps_on_volumes(crop_maps, prep, volumes: dict, present=None) -> dict:
    """{sequence: VolumeMap} — each crop map (4, D, H, W) on its own volume's voxel grid, in [0, 1]."""
    out = {}
    for v, seq in enumerate(SEQUENCES):
        volume = volumes.get(seq)
        if volume is None or (present is not None and not present[v]):
            out[seq] = None
            continue
        data = crop_to_volume(crop_maps[v], prep, volume)                        # (nz, ny, nx)
        peak = float(data.max())
        data = data / peak if peak > 0 else data
        out[seq] = VolumeMap(seq, np.clip(data, 0.0, 1.0).astype(np.float32), np.asarray(volume.affine, float))
    return out


def slide_patch_scores(attention) -> np.ndarray:
    """Pooling attention (h, K, N) or (B, h, K, N) → per-patch score (N,) / (B, N) in [0, 1]
    (mean over heads and seeds, divided by its maximum)."""
    a = np.asarray(attention.detach().cpu() if hasattr(attention, "detach") else attention, dtype=np.float32)
    scores = a.mean(axis=(-3, -2))                                               # (…, N)
    peak = scores.max(axis=-1, keepdims=True)
    return np.where(peak > 0, scores / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


def mass_inside(map_data, mask) -> float:
    """Fraction of a map's total mass inside a binary mask (same grid)."""
    m = np.asarray(map_data, dtype=np.float64)
    total = m.sum()
    return float(m[np.asarray(mask) > 0].sum() / total) if total > 0 else 0.0
