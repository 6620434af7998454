"""Training targets and loss (paper eq. 11–13), over the models each prompt has outcomes for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TAU = 0.5
_ABSENT = -1e9  # the logit of a model without an outcome: no probability mass, finite gradients


def utility(quality: torch.Tensor, cost: torch.Tensor, lam: float) -> torch.Tensor:
    """u_j(x) = q_j(x) − λ · c_j(x), cost in dollars per query; at λ = 0 an unpriced model's quality still counts."""
    return quality if lam == 0 else quality - lam * cost


def llmrank_loss(scores: torch.Tensor, target: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """MSE(s, u) + KL(softmax(u/τ) ‖ softmax(s/τ)), both over the graded entries only (target NaN: no outcome).

    MSE is the mean over graded (prompt, model) pairs; KL is the batch mean over prompts of the listwise KL among
    that prompt's graded models (a prompt with one graded model adds nothing to it)."""
    graded = ~torch.isnan(target)
    u = torch.where(graded, target, torch.zeros_like(target))
    mse = ((scores - u) ** 2 * graded).sum() / graded.sum().clamp_min(1)
    log_p_target = F.log_softmax(torch.where(graded, u / tau, _ABSENT), dim=-1)
    log_p_scores = F.log_softmax(torch.where(graded, scores / tau, _ABSENT), dim=-1)
    kl = (log_p_target.exp() * (log_p_target - log_p_scores) * graded).sum() / len(target)
    return mse + kl
