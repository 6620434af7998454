"""Training targets and loss (paper eq. 11–13)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TAU = 0.5


def utility(quality: torch.Tensor, cost: torch.Tensor, lam: float) -> torch.Tensor:
    """u_j(x) = q_j(x) − λ · c_j(x), cost in dollars per query."""
    return quality - lam * cost


def llmrank_loss(scores: torch.Tensor, target: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """MSE(s, u) + KL(softmax(u/τ) ‖ softmax(s/τ)), averaged over the batch."""
    mse = F.mse_loss(scores, target)
    log_p_target = F.log_softmax(target / tau, dim=-1)
    log_p_scores = F.log_softmax(scores / tau, dim=-1)
    kl = F.kl_div(log_p_scores, log_p_target, reduction="batchmean", log_target=True)
    return mse + kl
