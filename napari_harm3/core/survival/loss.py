"""Negative log-likelihood of discrete-time survival (Zadeh & Schmid 2020; the CrossFusion recipe).

With hazards h_k = P(T in bin k | T ≥ bin k) and S_k = Π_{j≤k} (1 − h_j), S_{-1} = 1:
a patient with an event in bin y contributes −log S_{y−1} − log h_y; one censored in bin y
contributes −log S_y. The loss is (1 − α)·(both terms) + α·(the event term), so α > 0 puts
extra weight on uncensored patients (α = 0.2 in the paper).
"""

from __future__ import annotations

import torch


def nll_survival_loss(hazards: torch.Tensor, bins: torch.Tensor, censored: torch.Tensor,
                      alpha: float = 0.2, eps: float = 1e-7) -> torch.Tensor:
    """Mean loss over the batch. ``hazards`` (B, K) in (0, 1); ``bins`` (B,) int bin of the time;
    ``censored`` (B,) 1 when the patient was censored, 0 when the event was observed."""
    bins = bins.long().view(-1, 1)                                      # (B, 1)
    c = censored.float().view(-1, 1)                                    # (B, 1)
    survival = torch.cumprod(1 - hazards, dim=1)                        # (B, K)
    padded = torch.cat([torch.ones_like(survival[:, :1]), survival], 1)  # (B, K+1), S_{-1} = 1
    s_before = padded.gather(1, bins).clamp_min(eps)                    # (B, 1) S_{y-1}
    s_at = padded.gather(1, bins + 1).clamp_min(eps)                    # (B, 1) S_y
    h_at = hazards.gather(1, bins).clamp_min(eps)                       # (B, 1) h_y
    event_term = -(1 - c) * (torch.log(s_before) + torch.log(h_at))     # (B, 1)
    censored_term = -c * torch.log(s_at)                                # (B, 1)
    loss = (1 - alpha) * (event_term + censored_term) + alpha * event_term  # (B, 1)
    return loss.mean()
