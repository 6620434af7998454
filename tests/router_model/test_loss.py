"""The training loss against values computed by hand."""

from __future__ import annotations

import math

import torch

from router_model.loss import llmrank_loss, utility


def test_utility_subtracts_lambda_times_dollars():
    q = torch.tensor([[1.0, 0.0]])
    c = torch.tensor([[0.002, 0.0001]])
    assert torch.allclose(utility(q, c, 100.0), torch.tensor([[0.8, -0.01]]))


def test_loss_is_mse_plus_kl_at_tau_one_half():
    s = torch.tensor([[0.0, 1.0]])
    u = torch.tensor([[1.0, 0.0]])
    mse = (1.0 + 1.0) / 2
    # softmax(u/0.5) = [e^2, 1]/(e^2+1); softmax(s/0.5) = [1, e^2]/(e^2+1)
    p = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]
    q = [p[1], p[0]]
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert math.isclose(llmrank_loss(s, u).item(), mse + kl, rel_tol=1e-6)


def test_loss_is_zero_when_scores_equal_targets_and_averages_over_the_batch():
    u = torch.tensor([[0.3, 0.9, -0.2], [1.0, 0.0, 0.5]])
    assert llmrank_loss(u.clone(), u).item() < 1e-7
    s = torch.zeros(2, 3)
    one = llmrank_loss(s[:1], u[:1]).item()
    two = llmrank_loss(s[1:], u[1:]).item()
    assert math.isclose(llmrank_loss(s, u).item(), (one + two) / 2, rel_tol=1e-6)
