"""HARM3-Fusion: pCR prediction from four MRI volumes and the biopsy slide.

Wang, Liu et al., "HARM3-Fusion: Hierarchical Attentional Representation Learning of Multi-Modal,
Multi-Temporal, and Multi-Sequence Fusion for Pathological Complete Response Prediction of Head and
Neck Squamous Cell Carcinoma", MICCAI 2025. No code by the authors exists; our spec is
``shared/specs/harm3-fusion.md``. Every choice the paper leaves open is a :class:`Harm3Config`
field (the model card lists them).

    4 volumes (B, 4, D, H, W) ─ 3D residual CNN ─ tokens (B, 4, n, C)
        ├ per sequence: LD-VAE(pre, post) → F_temporal (B, 2n, C)           (§2.1)
        └ [T1 ; T2] + relative-position bias → self-attention → F_MRI      (§2.2)
    patch features (B, N, F) ─ attention pooling, 16 seeds → F_WSI (B, 16, d)   (§2.3)
    cross-attention Q = F_WSI, K = V = F_MRI → F_fused (B, 16, d)           (Eqs. 6–7)
    Conv1d ×2 + ReLU, global average pool, MLP → logit; p(pCR) = sigmoid(logit)

Missing inputs (a volume, a sequence, a time point, the slide) are replaced by learned
placeholders; in training they are dropped at random (modality dropout). The output says which
inputs were missing. Table 2's ablations are config switches (:data:`ABLATIONS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from ..vocabulary import SEQUENCES
from .harm3_blocks import (
    AttentionPooling,
    ConvHead,
    CrossAttentionLayer,
    Extractor3d,
    RelativePositionBias,
    SelfAttentionLayer,
)
from .ldvae import LdVae
from .zoo import load_weights

INPUTS = SEQUENCES + ("slide",)


@dataclass(frozen=True)
class Harm3Config:
    # MRI input (the preparation contract, see core/mri/prep.py)
    mri_size: tuple = (24, 128, 128)
    # 3D feature extractor (paper: "3D CNN"; ours: residual, 4 stages)
    extractor_channels: tuple = (32, 64, 128, 256)
    stem_stride: tuple = (1, 2, 2)
    stage_strides: tuple = ((1, 1, 1), (2, 2, 2), (2, 2, 2), (1, 2, 2))
    blocks_per_stage: int = 1
    norm: str = "batch"                    # group/instance norm erase the tumour-volume signal (seen in tests)
    feature_dim: int = 256                 # C, channels of the extractor's last conv
    token_grid: tuple = (3, 8, 8)          # feature map pooled to this grid → n tokens per volume
    token_norm: str = "batch"              # tokens normalised before the LD-VAE: "batch" (per channel over
                                           # patients, keeps between-patient magnitude: tumour volume), "layer"
                                           # (per token, erases it), "none"
    share_extractor: bool = True           # one extractor for the four volumes
    # LD-VAE (§2.1)
    use_ldvae: bool = True
    vae_latent: int = 128
    vae_inherent: int = 64
    vae_variant: int = 64
    vae_hidden: int = 256
    temporal_fusion: str = "concat"        # text says concatenated; Eq. 3 writes a sum ("sum")
    contrastive_lambda: float = 0.5
    vae_kl_weight: float = 0.01            # Eq. 4 weighs the KL by 1; lower keeps Z informative (no collapse)
    detach_recon_target: bool = True       # reconstruct the features without pulling them to zero
    # multi-sequence self-attention (§2.2)
    d_model: int = 512
    heads: int = 8
    ffn_ratio: float = 4.0
    use_self_attention: bool = True
    self_attention_layers: int = 1
    # slide branch (§2.3)
    use_mri: bool = True
    use_slide: bool = True
    slide_dim: int = 768                   # ViT-B/16 embedding
    slide_tokens: int = 16
    slide_heads: int = 8
    slide_standardise: bool = False        # z-score each feature dimension with the training fold's patch
                                           # statistics (buffers slide_mean / slide_std, stored with the weights)
    # multi-modal fusion (Eqs. 6–7)
    use_cross_attention: bool = True
    cross_attention_scale: str = "head"    # "head": √(d/h); "model": √d_k with d_k = d_model
    cross_attention_residual: bool = True  # add the slide queries back (transformer layer)
    # head
    head_channels: tuple = (256, 128)
    head_hidden: int = 64
    dropout: float = 0.1
    # missing inputs (beyond the paper)
    drop_volume: float = 0.1               # training: each volume dropped with this probability
    drop_sequence: float = 0.05            # … a whole sequence (pre and post)
    drop_timepoint: float = 0.05           # … a whole time point (T1 and T2)
    drop_slide: float = 0.1                # … the slide
    # explanations
    gradcam_layer: str = "last"            # Grad-CAM target: "last" (the extractor's last conv, spec §2) or
                                           # "stage<k>" (output of stage k, 1-based: finer maps)
    gradcam_method: str = "hirescam"       # "hirescam": gradients × activations element-wise (Draelos & Carin
                                           # 2020); "gradcam": channel-mean gradients (Selvaraju et al. 2017)
    gradcam_evidence: str = "both"         # "both": |map|, where the pCR logit's evidence lies, for or against;
                                           # "for": ReLU, the classic pCR-only map; "against": ReLU of −map

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Harm3Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown HARM3-Fusion config field(s): {', '.join(unknown)}")
        return cls(**{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                      for k, v in values.items()})

    @property
    def n_tokens(self) -> int:
        gz, gy, gx = self.token_grid
        return int(gz * gy * gx)


def _token_norm(kind: str, dim: int) -> nn.Module:
    """Normalisation of the extractor's tokens (rows of C features)."""
    if kind == "batch":
        return nn.BatchNorm1d(dim, affine=False)
    if kind == "layer":
        return nn.LayerNorm(dim, elementwise_affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown token norm {kind!r} (batch, layer, none)")


@dataclass(frozen=True, eq=False)
class Harm3Output:
    logit: torch.Tensor                    # (B,)
    probability: torch.Tensor              # (B,)
    missing: torch.Tensor                  # (B, 5) bool, order of INPUTS
    recon_loss: torch.Tensor               # () LD-VAE L_recon (0 when the LD-VAE is off)
    contra_loss: torch.Tensor              # () LD-VAE L_contra
    slide_attention: torch.Tensor | None = None  # (B, h, K, N) pooling attention over patches
    mri_attention: tuple | None = None     # per self-attention layer (B, h, L, L)
    cross_attention: torch.Tensor | None = None  # (B, h, K, L)


class Harm3Fusion(nn.Module):
    def __init__(self, config: Harm3Config | None = None):
        super().__init__()
        cfg = self.config = config or Harm3Config()
        if not (cfg.use_mri or cfg.use_slide):
            raise ValueError("HARM3-Fusion needs the MRI, the slide, or both")
        d, n = cfg.d_model, cfg.n_tokens
        if cfg.use_mri:
            def extractor():
                return Extractor3d(cfg.extractor_channels, cfg.stem_stride, cfg.stage_strides,
                                   cfg.blocks_per_stage, cfg.feature_dim, cfg.token_grid, cfg.norm)
            self.extractors = nn.ModuleList([extractor() for _ in range(1 if cfg.share_extractor else 4)])
            self.token_norm = _token_norm(cfg.token_norm, cfg.feature_dim)           # bounded LD-VAE targets
            self.missing_volume = nn.Parameter(torch.randn(4, n, cfg.feature_dim))      # (4, n, C)
            if cfg.use_ldvae:
                self.ldvae = nn.ModuleList([
                    LdVae(cfg.feature_dim, cfg.vae_latent, cfg.vae_inherent, cfg.vae_variant, cfg.vae_hidden,
                          cfg.temporal_fusion, cfg.contrastive_lambda, cfg.detach_recon_target,
                          cfg.vae_kl_weight)
                    for _ in range(2)])                                          # T1, T2
            times = 1 if (cfg.use_ldvae and cfg.temporal_fusion == "sum") else 2
            self.mri_proj = nn.Linear(cfg.feature_dim, d)
            if cfg.use_self_attention:
                self.rel_bias = RelativePositionBias(cfg.token_grid, 2, times, cfg.heads)
                self.self_attention = nn.ModuleList([SelfAttentionLayer(d, cfg.heads, cfg.dropout, cfg.ffn_ratio)
                                                     for _ in range(cfg.self_attention_layers)])
            else:
                self.join = nn.Linear(d, d)                                      # "joined and projected"
            self.mri_norm = nn.LayerNorm(d)
        if cfg.use_slide:
            self.slide_proj = nn.Sequential(nn.LayerNorm(cfg.slide_dim), nn.Linear(cfg.slide_dim, d))
            self.pool = AttentionPooling(d, cfg.slide_tokens, cfg.slide_heads, cfg.dropout)
            self.missing_slide = nn.Parameter(torch.randn(cfg.slide_tokens, d) * 0.02)  # (K, d)
            if cfg.slide_standardise:
                self.register_buffer("slide_mean", torch.zeros(cfg.slide_dim))         # (F,)
                self.register_buffer("slide_std", torch.ones(cfg.slide_dim))           # (F,)
        if cfg.use_mri and cfg.use_slide and cfg.use_cross_attention:
            self.cross = CrossAttentionLayer(d, cfg.heads, cfg.dropout, cfg.cross_attention_scale,
                                             cfg.cross_attention_residual)
        self.head = ConvHead(d, cfg.head_channels, cfg.head_hidden, cfg.dropout)

    @property
    def gradcam_layers(self) -> list:
        """Grad-CAM's target layer(s): the extractor's last conv, or a stage's output (``gradcam_layer``)."""
        if not self.config.use_mri:
            return []
        name = self.config.gradcam_layer
        if name == "last":
            return [e.last_conv for e in self.extractors]
        if name.startswith("stage") and name[5:].isdigit() and 1 <= int(name[5:]) <= len(self.extractors[0].stages):
            return [e.stages[int(name[5:]) - 1] for e in self.extractors]
        raise ValueError(f"unknown gradcam_layer {name!r} (last, stage1 … stage{len(self.extractors[0].stages)})")

    def set_slide_statistics(self, mean, std) -> None:
        """Per-dimension statistics of the training patches (``slide_standardise``)."""
        if not hasattr(self, "slide_mean"):
            return
        mean = torch.as_tensor(mean, dtype=self.slide_mean.dtype)
        std = torch.as_tensor(std, dtype=self.slide_std.dtype).clamp_min(1e-6)
        self.slide_mean.copy_(mean)
        self.slide_std.copy_(std)

    # ------------------------------------------------------------------ missing inputs
    def _drop(self, present: torch.Tensor, slide_present: torch.Tensor):
        cfg = self.config
        B = present.shape[0]
        dev = present.device
        keep = torch.rand(B, 4, device=dev) >= cfg.drop_volume                   # (B, 4)
        seq = (torch.rand(B, 2, device=dev) >= cfg.drop_sequence).repeat_interleave(2, dim=1)  # (B, 4) T1,T1,T2,T2
        tp = (torch.rand(B, 2, device=dev) >= cfg.drop_timepoint).repeat(1, 2)   # (B, 4) pre,post,pre,post
        new_present = present & keep & seq & tp                                  # (B, 4)
        new_slide = slide_present & (torch.rand(B, device=dev) >= cfg.drop_slide)  # (B,)
        usable = (new_present.any(1) if cfg.use_mri else torch.zeros_like(new_slide)) | (
            new_slide if cfg.use_slide else torch.zeros_like(new_slide))        # (B,)
        new_present = torch.where(usable[:, None], new_present, present)        # (B, 4)
        new_slide = torch.where(usable, new_slide, slide_present)               # (B,)
        return new_present, new_slide

    # ------------------------------------------------------------------ branches
    def _mri_tokens(self, mri: torch.Tensor, present: torch.Tensor):
        cfg = self.config
        B = mri.shape[0]
        if cfg.share_extractor:
            feats = self.extractors[0](mri.reshape(B * 4, 1, *mri.shape[2:]))    # (B·4, C, gz, gy, gx)
            feats = feats.view(B, 4, cfg.feature_dim, -1).transpose(2, 3)        # (B, 4, n, C)
        else:
            feats = torch.stack([e(mri[:, v:v + 1]).flatten(2).transpose(1, 2)
                                 for v, e in enumerate(self.extractors)], dim=1)  # (B, 4, n, C)
        feats = self.token_norm(feats.reshape(-1, cfg.feature_dim)).view_as(feats)  # (B, 4, n, C)
        feats = torch.where(present[:, :, None, None], feats, self.missing_volume.unsqueeze(0))  # (B, 4, n, C)
        zero = mri.new_zeros(())
        recon, contra = zero, zero
        per_sequence = []
        for s in range(2):                                                       # T1, T2
            pre, post = feats[:, 2 * s], feats[:, 2 * s + 1]                      # (B, n, C) ×2
            if cfg.use_ldvae:
                out = self.ldvae[s](pre, post, present[:, 2 * s], present[:, 2 * s + 1])
                per_sequence.append(out.fused)                                   # (B, 2n or n, C)
                recon = recon + out.recon_loss
                contra = contra + out.contra_loss
            else:
                per_sequence.append(torch.cat([pre, post], dim=1))               # (B, 2n, C)
        tokens = self.mri_proj(torch.cat(per_sequence, dim=1))                   # (B, L, d)
        attention = []
        if cfg.use_self_attention:
            bias = self.rel_bias()                                               # (1, h, L, L)
            for layer in self.self_attention:
                tokens, weights = layer(tokens, bias)                            # (B, L, d), (B, h, L, L)
                attention.append(weights)
        else:
            tokens = self.join(tokens)                                           # (B, L, d)
        return self.mri_norm(tokens), recon, contra, tuple(attention)           # (B, L, d)

    def _slide_tokens(self, slide, slide_mask, slide_present, B: int, device):
        placeholder = self.missing_slide.unsqueeze(0).expand(B, -1, -1)         # (B, K, d)
        if slide is None:
            return placeholder, None
        if slide_mask is None:
            slide_mask = torch.ones(slide.shape[:2], dtype=torch.bool, device=device)  # (B, N)
        slide_mask = slide_mask & slide_present[:, None]                        # (B, N)
        safe_mask = slide_mask.clone()
        safe_mask[:, 0] |= ~slide_mask.any(1)                                   # keep softmax finite for empty bags
        if hasattr(self, "slide_mean"):
            slide = (slide - self.slide_mean) / self.slide_std                  # (B, N, F)
        pooled, weights = self.pool(self.slide_proj(slide), safe_mask)           # (B, K, d), (B, h, K, N)
        has = slide_mask.any(1)                                                  # (B,)
        tokens = torch.where(has[:, None, None], pooled, placeholder)            # (B, K, d)
        return tokens, weights

    # ------------------------------------------------------------------ forward
    def forward(self, mri=None, present=None, slide=None, slide_mask=None, slide_present=None,
                return_attention: bool = False) -> Harm3Output:
        """mri (B, 4, D, H, W) in SEQUENCES order; present (B, 4) bool; slide (B, N, F) patch
        features with slide_mask (B, N) (True = real patch) and slide_present (B,) bool."""
        cfg = self.config
        ref = mri if mri is not None else slide
        if ref is None:
            raise ValueError("HARM3-Fusion needs MRI volumes or slide features")
        B, device = ref.shape[0], ref.device
        present = (torch.ones(B, 4, dtype=torch.bool, device=device) if present is None else present.bool())  # (B, 4)
        if mri is None:
            present = torch.zeros_like(present)
        slide_present = (torch.full((B,), slide is not None, dtype=torch.bool, device=device)
                         if slide_present is None else slide_present.bool() & (slide is not None))  # (B,)
        if slide is not None and slide_mask is not None:
            slide_present = slide_present & slide_mask.any(1)
        if self.training:
            present, slide_present = self._drop(present, slide_present)
        zero = ref.new_zeros(())
        recon, contra, mri_att, slide_att, cross_att = zero, zero, None, None, None
        if cfg.use_mri:
            if mri is None:
                mri = torch.zeros((B, 4) + tuple(cfg.mri_size), device=device)  # (B, 4, D, H, W)
            f_mri, recon, contra, mri_att = self._mri_tokens(mri, present)      # (B, L, d)
        if cfg.use_slide:
            f_wsi, slide_att = self._slide_tokens(slide, slide_mask, slide_present, B, device)  # (B, K, d)
        if cfg.use_mri and cfg.use_slide:
            if cfg.use_cross_attention:
                fused, cross_att = self.cross(f_wsi, f_mri)                      # (B, K, d), (B, h, K, L)
            else:
                fused = torch.cat([f_wsi, f_mri], dim=1)                         # (B, K + L, d)
        else:
            fused = f_mri if cfg.use_mri else f_wsi                              # (B, T, d)
        logit = self.head(fused)                                                 # (B,)
        missing = torch.cat([~present, ~slide_present[:, None]], dim=1)          # (B, 5)
        return Harm3Output(
            logit=logit, probability=torch.sigmoid(logit), missing=missing, recon_loss=recon, contra_loss=contra,
            slide_attention=slide_att,
            mri_attention=mri_att if return_attention else None,
            cross_attention=cross_att if return_attention else None)


# ---------------------------------------------------------------------- constructors

#: Table 2's ablations as config overrides (applied on top of any base config)
ABLATIONS = {
    "full": {},
    "no_ldvae": {"use_ldvae": False},
    "no_self_attention": {"use_self_attention": False},
    "no_cross_attention": {"use_cross_attention": False},
    "mri_only": {"use_slide": False},
    "slide_only": {"use_mri": False},
}

#: named base configurations; "tiny" is the same architecture, small enough for CPU tests
CONFIGS = {
    "harm3_fusion": Harm3Config(),
    # 8 channels at the stem/stage 1 (Grad-CAM's layer): with 4, the HiResCAM map held 0.49 of its mass in the
    # phantoms' tumour, with 8 0.54 (T1); wider still (8, 16, 16, 32) 0.58 but LD-VAE lost its edge on the
    # change cohort (0.873 vs 0.893 without) — figures in core/explain/gradcam.py
    "harm3_fusion_tiny": Harm3Config(
        mri_size=(16, 32, 32), extractor_channels=(8, 8, 8, 16), stem_stride=(2, 2, 2),
        stage_strides=((1, 2, 2), (1, 1, 1), (2, 2, 2), (1, 1, 1)), feature_dim=16, token_grid=(2, 2, 2),
        vae_latent=16, vae_inherent=8, vae_variant=8, vae_hidden=32, d_model=32, heads=4, slide_dim=16,
        slide_tokens=4, slide_heads=4, head_channels=(16, 16), head_hidden=16, dropout=0.0,
        slide_standardise=True, gradcam_layer="stage1"),          # stage 1 output: 8×8×8 maps (last conv: 4×4×4)
}


def model_config(name: str = "harm3_fusion", ablation: str = "full", **overrides) -> Harm3Config:
    if name not in CONFIGS:
        raise ValueError(f"unknown HARM3-Fusion model {name!r}; choose one of {', '.join(CONFIGS)}")
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    return replace(CONFIGS[name], **{**ABLATIONS[ablation], **overrides})


def create_model(name: str = "harm3_fusion", weights=None, ablation: str = "full", config: Harm3Config | None = None,
                 **overrides) -> Harm3Fusion:
    """The one constructor: a named (or given) config, optional overrides, optional weights
    (a state dict, or a safetensors path read with ``zoo.load_weights``)."""
    cfg = replace(config, **overrides) if config is not None else model_config(name, ablation, **overrides)
    model = Harm3Fusion(cfg)
    if weights is not None:
        if not isinstance(weights, dict):
            weights = load_weights(weights)
        model.load_state_dict(weights, strict=True)
    return model
