"""The per-task ceiling against assignments worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from router_model.ceiling_study import task_ceiling, within_task_correlation
from router_model.data import OutcomeTable

# task a: big solves both rows, small one of them; task b: small solves both, big one. big costs 10× small.
DATA = OutcomeTable(
    prompt_ids=np.array(["s/a/0", "s/a/1", "s/b/0", "s/b/1"]),
    prompts=["a0", "a1", "b0", "b1"],
    sources=np.array(["s"] * 4),
    tasks=np.array(["s/a", "s/a", "s/b", "s/b"]),
    models=("big", "small"),
    quality=np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
    cost=np.array([[0.01, 0.001]] * 4),
)


def test_a_budget_that_affords_big_on_one_task_spends_it_where_it_gains():
    # big on a and small on b: quality 4/4, cost .02 + .002 = 55% of big everywhere (.04)
    c = task_ceiling(DATA, "big", share=0.60)
    assert c.assignment == {"s/a": "big", "s/b": "small"}
    assert c.quality == 1.0 and c.cost_share == pytest.approx(0.55)
    assert c.reference_quality == 0.75 and c.n == 4


def test_a_tighter_budget_falls_back_to_the_cheap_model_everywhere():
    c = task_ceiling(DATA, "big", share=0.50)
    assert c.assignment == {"s/a": "small", "s/b": "small"}
    assert c.quality == 0.75 and c.cost_share == pytest.approx(0.10)


def test_a_budget_below_every_assignment_is_refused():
    with pytest.raises(ValueError, match="no assignment fits"):
        task_ceiling(DATA, "big", share=0.05)


def test_within_task_correlation_is_per_task_and_undefined_where_a_task_is_all_right_or_all_wrong():
    # big: right on both a rows (constant) → NaN; b rows 1, 0 predicted 0.2, 0.8 → −1
    # small: a rows 1, 0 predicted 0.9, 0.1 → +1; b rows right on both → NaN
    predicted = np.array([[0.5, 0.9], [0.6, 0.1], [0.2, 0.7], [0.8, 0.7]])
    table = within_task_correlation(DATA, predicted)
    assert np.isnan(table["big"]["s/a"]) and table["big"]["s/b"] == pytest.approx(-1.0)
    assert table["small"]["s/a"] == pytest.approx(1.0) and np.isnan(table["small"]["s/b"])
