"""LD-VAE: latent-disentangling VAE for multi-temporal fusion (HARM3-Fusion §2.1, Eqs. 3–5).

Wang, Liu et al., "HARM3-Fusion: Hierarchical Attentional Representation Learning of Multi-Modal,
Multi-Temporal, and Multi-Sequence Fusion for Pathological Complete Response Prediction of Head and
Neck Squamous Cell Carcinoma", MICCAI 2025.

One :class:`LdVae` per MRI sequence holds two branches (pre, post) with their own encoder,
split layers and decoder. Each acts on the extractor's token sequence X (B, n, C) token by token:

    E_i(X_i) → μ_i, log σ²_i;  Z_i = μ_i + σ_i·ε (training) or μ_i (inference)
    Z_i_inher = FC_inh_i(Z_i),  Z_i_varia = FC_var_i(Z_i)
    F_temporal = [D_pre(Z_pre_inher, Z_pre_varia) ; D_post(Z_post_inher, Z_post_varia)]  (tokens)

Losses (Eq. 4, own and cross reconstruction; Eq. 5, contrastive with λ):

    L_recon  = Σ_i Σ_j ‖X_i − D_i(Z_j_inher, Z_i_varia)‖² + Σ_i KL(q(Z_i|X_i) ‖ N(0, I))
    L_contra = λ·cos(Z_pre_varia, Z_post_varia) + (1 − λ)·MSE(Z_pre_inher, Z_post_inher)

``kl_weight`` scales the KL term (Eq. 4 has 1; a smaller weight keeps the latent informative,
β-VAE style). Norms are means over elements (so weights do not depend on sizes); a term whose inputs are
missing for a patient (a placeholder stood in for the volume) is left out for that patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True, eq=False)
class LdVaeOutput:
    fused: torch.Tensor          # (B, 2n, C) concatenated, or (B, n, C) summed
    recon_loss: torch.Tensor     # () L_recon of Eq. 4 (reconstruction + kl_weight·KL)
    kl: torch.Tensor             # () the KL part alone
    contra_loss: torch.Tensor    # () L_contra of Eq. 5
    z_inher: tuple               # (pre, post) each (B, n, z_inher)
    z_varia: tuple               # (pre, post) each (B, n, z_varia)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.GELU(), nn.Linear(hidden, cout))


class VaeBranch(nn.Module):
    """E_i, the inherent/variant split and D_i of one time point."""

    def __init__(self, dim: int, latent: int, inherent: int, variant: int, hidden: int):
        super().__init__()
        self.encoder = _mlp(dim, hidden, 2 * latent)
        self.to_inherent = nn.Linear(latent, inherent)
        self.to_variant = nn.Linear(latent, variant)
        self.decoder = _mlp(inherent + variant, hidden, dim)
        with torch.no_grad():
            # variance-preserving start: with PyTorch's default init each of the five linear layers on the
            # path X → Z → D(Z) shrinks the signal (≈ 50× in all), so the decoded tokens barely differ
            # between patients and the pCR loss could not reach the extractor (seen in tests)
            for mlp in (self.encoder, self.decoder):
                nn.init.kaiming_normal_(mlp[0].weight, nonlinearity="relu")          # before GELU
                nn.init.normal_(mlp[2].weight, std=mlp[2].in_features ** -0.5)
            for layer in (self.to_inherent, self.to_variant):
                nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
            for layer in (self.encoder[0], self.encoder[2], self.decoder[0], self.decoder[2],
                          self.to_inherent, self.to_variant):
                layer.bias.zero_()
            self.encoder[-1].bias[latent:].fill_(-4.0)  # little sampling noise at first (σ ≈ 0.14)

    def encode(self, x: torch.Tensor, sample: bool):
        mu, logvar = self.encoder(x).chunk(2, dim=-1)                            # 2 × (B, n, z)
        logvar = logvar.clamp(-10.0, 10.0)                                        # (B, n, z)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu  # (B, n, z)
        return z, mu, logvar

    def decode(self, inherent: torch.Tensor, variant: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([inherent, variant], dim=-1))              # (B, n, C)


def _masked_mean(per_sample: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    weight = weight.to(per_sample.dtype)                                           # (B,)
    return (per_sample * weight).sum() / weight.sum().clamp_min(1.0)              # ()


class LdVae(nn.Module):
    """The pre and post VAE branches of one sequence and the losses of Eqs. 4–5."""

    def __init__(self, dim: int, latent: int = 128, inherent: int = 64, variant: int = 64, hidden: int = 256,
                 fusion: str = "concat", contrastive_lambda: float = 0.5, detach_target: bool = True,
                 kl_weight: float = 1.0):
        super().__init__()
        if fusion not in ("concat", "sum"):
            raise ValueError(f"temporal fusion must be 'concat' or 'sum', not {fusion!r}")
        self.pre = VaeBranch(dim, latent, inherent, variant, hidden)
        self.post = VaeBranch(dim, latent, inherent, variant, hidden)
        self.fusion = fusion
        self.lam = contrastive_lambda
        self.detach_target = detach_target
        self.kl_weight = kl_weight

    def forward(self, x_pre, x_post, present_pre=None, present_post=None) -> LdVaeOutput:
        B = x_pre.shape[0]
        ones = torch.ones(B, dtype=torch.bool, device=x_pre.device)
        p_pre = ones if present_pre is None else present_pre                      # (B,)
        p_post = ones if present_post is None else present_post                   # (B,)
        sample = self.training
        z_pre, mu_pre, lv_pre = self.pre.encode(x_pre, sample)                    # (B, n, z) ×3
        z_post, mu_post, lv_post = self.post.encode(x_post, sample)               # (B, n, z) ×3
        inh = (self.pre.to_inherent(z_pre), self.post.to_inherent(z_post))        # 2 × (B, n, z_inh)
        var = (self.pre.to_variant(z_pre), self.post.to_variant(z_post))          # 2 × (B, n, z_var)
        own_pre = self.pre.decode(inh[0], var[0])                                 # (B, n, C)
        own_post = self.post.decode(inh[1], var[1])                               # (B, n, C)
        cross_pre = self.pre.decode(inh[1], var[0])                               # (B, n, C) post's inherent part
        cross_post = self.post.decode(inh[0], var[1])                             # (B, n, C) pre's inherent part
        t_pre = x_pre.detach() if self.detach_target else x_pre                   # (B, n, C)
        t_post = x_post.detach() if self.detach_target else x_post                # (B, n, C)

        def mse(a, b):
            return (a - b).pow(2).flatten(1).mean(1)                              # (B,)

        both = p_pre & p_post                                                     # (B,)
        recon = (_masked_mean(mse(own_pre, t_pre), p_pre) + _masked_mean(mse(own_post, t_post), p_post)
                 + _masked_mean(mse(cross_pre, t_pre), both) + _masked_mean(mse(cross_post, t_post), both))

        def kl(mu, lv):
            return (0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv)).flatten(1).mean(1)   # (B,)

        kl_term = _masked_mean(kl(mu_pre, lv_pre), p_pre) + _masked_mean(kl(mu_post, lv_post), p_post)
        cos = F.cosine_similarity(var[0], var[1], dim=-1, eps=1e-6).mean(1)       # (B,)
        pull = (inh[0] - inh[1]).pow(2).flatten(1).mean(1)                        # (B,)
        contra = self.lam * _masked_mean(cos, both) + (1 - self.lam) * _masked_mean(pull, both)
        if self.fusion == "concat":
            fused = torch.cat([own_pre, own_post], dim=1)                         # (B, 2n, C)
        else:
            fused = own_pre + own_post                                            # (B, n, C)
        return LdVaeOutput(fused=fused, recon_loss=recon + self.kl_weight * kl_term, kl=kl_term, contra_loss=contra,
                           z_inher=inh, z_varia=var)
