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


def test_only_the_graded_models_of_a_prompt_count_two_of_five():
    nan = float("nan")
    s = torch.tensor([[0.2, 0.9, 0.4, 0.1, 0.7]])
    u = torch.tensor([[1.0, 0.0, nan, nan, nan]])
    mse = ((0.2 - 1.0) ** 2 + (0.9 - 0.0) ** 2) / 2  # 0.725: the mean over the two graded pairs
    # listwise KL between softmax(u/0.5) and softmax(s/0.5) over models 0 and 1 only
    p = [math.exp(2.0) / (math.exp(2.0) + 1), 1 / (math.exp(2.0) + 1)]
    q = [math.exp(0.4) / (math.exp(0.4) + math.exp(1.8)), math.exp(1.8) / (math.exp(0.4) + math.exp(1.8))]
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    s.requires_grad_(True)
    loss = llmrank_loss(s, u)
    assert math.isclose(loss.item(), mse + kl, rel_tol=1e-6)
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
    assert torch.equal(s.grad[0, 2:], torch.zeros(3))  # ungraded models get no gradient


def test_an_unpriced_model_still_counts_at_lambda_zero():
    q = torch.tensor([[0.7, 0.2]])
    c = torch.tensor([[float("nan"), 0.001]])
    assert torch.equal(utility(q, c, 0.0), q)
    assert torch.isnan(utility(q, c, 10.0)[0, 0])
