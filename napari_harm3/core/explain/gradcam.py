"""Explanations of HARM3-Fusion: Grad-CAM on the MRI (paper Fig. 2) and slide attention.

Grad-CAM (Selvaraju et al., ICCV 2017) of the pCR **logit** at the 3D extractor's target layer
(``Harm3Config.gradcam_layer``: its last conv, or a stage's output), computed with the ``grad-cam``
package (``pytorch_grad_cam.GradCAM``, which handles Conv3d). The package wants ``model(input) →
scores``; :class:`LogitOfMri` holds the other inputs fixed so that the input is the MRI stack and the
score the logit. The package's weights, weighted sum, ReLU and per-map min–max scaling are used as they
are, on the layer's own grid; the map is then upsampled to the crop with each coarse value at its
cell's centre (:func:`upsample_cell_centred`, the convention of ``prep.map_affine``) — the package's
3D resize aligns the corner samples and stretches the map outwards. One map per volume, on the crop,
in [0, 1]; :func:`maps_on_volumes` puts them on each volume's own voxel grid.

What the maps show on the planted phantoms (issue 5; the soft-edged spheres of
``train.harm3_data.planted_samples``, not the ``synth`` MRI phantom; tiny config, the learning tests' 3 fold
models, the 12 cases and the t1_pre/t1_post maps of ``test_gradcam_mass_falls_inside_the_tumour``,
mass on the volume grid against the pre-treatment tumour mask):

- chance — a uniform map over the crop box — is 0.21 (the tumour is a sphere in a box with a margin);
  a perfect tumour map pooled to the layer's grid and upsampled like a CAM reaches 0.78 at 8×8×8
  (stage 1, the tiny config's target) and 0.62 at 4×4×4 (its last conv): the resolution caps it.
- the pCR Grad-CAM puts 0.29 inside the tumour with the package's resize, 0.30 cell-centred (last
  conv: 0.22, i.e. chance). The rest: 0.20 within 2 mm outside the tumour, 0.34 in the outer 2 mm of
  the crop box, 0.16 elsewhere (voxel shares 0.17, 0.45, 0.17).
- why: on these phantoms the MRI's evidence *for* pCR is the *absence* of residual tumour after
  treatment (the post tumour's share of the crop alone separates the classes, AUC 0.80; the pre one
  does not, 0.42, the crop being set by the pre tumour). The tumour is evidence *against* pCR: its
  Grad-CAM weights are negative and the ReLU removes them, and "no tumour here" is as true of the
  margin as of the treated bed. Grad-CAM of −logit (the non-pCR class) puts 0.41 inside; a variant
  with its last conv at 8×8×8 makes it stark: 0.07 for pCR, 0.47 against.
- not a training-budget or crop matter: 40 epochs instead of 20 give 0.31, flip augmentation 0.27,
  a treated bed drawn in the post volumes 0.31, a tighter crop (chance 0.42) 0.33 — below chance.
  The model's raw input sensitivity |∂logit/∂x| has 0.31–0.35 of its mass inside the tumour.

- a response cue *inside* the lesion does not fix it (9 variants of ``planted_samples``, same test
  set-up): responders' lesions losing contrast (fibrosis, lost enhancement) 0.21 — still evidence
  by absence; responders' lesions brighter before and after treatment 0.44-0.46 at best (full AUC
  0.867), 0.37 for a bright lesion in all four volumes; mass inside goes up and down between 0.37
  and 0.46 as the cue strengthens, so a single run above 0.5 would be luck. Reverted.

So the pCR map of this tiny model highlights where tumour is absent rather than the tumour; the
test stays an expected failure with these figures.

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


def _layer_grid_gradcam():
    """``pytorch_grad_cam.GradCAM`` that leaves each map on its target layer's grid.

    The package resizes 3D maps with ``scipy.ndimage.zoom`` at its defaults: cubic spline with the
    *corner* samples aligned (``grid_mode=False``), which stretches a d×h×w map outwards about the
    crop centre — by 15/12 along an axis going 4 → 16 — and overshoots at edges. The weights, the
    weighted sum, the ReLU and the per-map min–max scaling stay the package's; only the resize is ours
    (:func:`upsample_cell_centred`).
    """
    from pytorch_grad_cam import GradCAM

    class LayerGridGradCAM(GradCAM):
        def get_target_width_height(self, input_tensor):
            return None                                                          # scale_cam_image: no resize

    return LayerGridGradCAM


def upsample_cell_centred(cam: np.ndarray, shape) -> np.ndarray:
    """Trilinear upsampling of a map (…, d, h, w) on a coarse grid spanning the crop box to ``shape``,
    each coarse value at its cell's centre (the convention of ``prep.map_affine``), edges held."""
    from scipy.ndimage import zoom

    cam = np.asarray(cam, np.float32)
    lead = cam.ndim - 3
    if tuple(cam.shape[lead:]) == tuple(shape):
        return cam
    factors = (1.0,) * lead + tuple(float(t) / float(n) for t, n in zip(shape, cam.shape[lead:]))
    out = zoom(cam, factors, order=1, grid_mode=True, mode="nearest")           # (…, D, H, W)
    if tuple(out.shape[lead:]) != tuple(shape):
        raise ValueError(f"cannot upsample a {cam.shape[lead:]} map to {tuple(shape)}")
    return out


def mri_gradcam(model, mri, present=None, slide=None, slide_mask=None, slide_present=None) -> np.ndarray:
    """Grad-CAM of the pCR logit per volume: (B, 4, D, H, W) float32 in [0, 1] on the crop.

    A missing volume's map is all zeros (its tokens were a placeholder; nothing to explain).
    """
    import torch

    GradCAM = _layer_grid_gradcam()
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
                    out = cam(input_tensor=mri, targets=[_LogitTarget() for _ in range(B)])  # (B·4, d, h, w)
                cams[:] = upsample_cell_centred(out, mri.shape[2:]).reshape(cams.shape)
            else:
                for v, layer in enumerate(layers):
                    with GradCAM(model=wrapper, target_layers=[layer]) as cam:
                        out = cam(input_tensor=mri, targets=[_LogitTarget() for _ in range(B)])  # (B, d, h, w)
                        cams[:, v] = upsample_cell_centred(out, mri.shape[2:])
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
