"""Evaluation rows against hand-computed values on a four-prompt fixture."""

from __future__ import annotations

import numpy as np
import pytest

from router_model.data import RouterBenchData
from router_model.evaluate import Predictions, aiq, evaluate

# prompt:        p0     p1     p2     p3
# big   quality  1      1      0      1       cost .01 each
# small quality  1      0      1      0       cost .001 each
DATA = RouterBenchData(
    sample_ids=np.array(["a.0", "a.1", "b.0", "b.1"]),
    prompts=["p0", "p1", "p2", "p3"],
    benchmarks=np.array(["a", "a", "b", "b"]),
    models=("big", "small"),
    quality=np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
    cost=np.array([[0.01, 0.001]] * 4),
)


def report(pred_quality: np.ndarray) -> dict:
    predictions = Predictions(quality={"quality": pred_quality}, cost=DATA.cost.copy())
    return evaluate(DATA, predictions, {"perf": 0.0, "balanced": 10.0, "cost": 1e4}, "big", "small")


def row(rep: dict, name: str) -> dict:
    return next(r for r in rep["rows"] if r["name"] == name)


def test_oracle_row_is_the_best_recorded_quality_at_the_cheapest_cost():
    rep = report(np.zeros((4, 2)))
    oracle = row(rep, "oracle")
    # p0: both right → small (.001); p1: big (.01); p2: small (.001); p3: big (.01)
    assert oracle["quality"] == 1.0
    assert oracle["cost"] == pytest.approx(0.022)
    assert oracle["efficiency"] == 1.0 and oracle["cost_ratio"] == 1.0 and oracle["quality_gap"] == 0.0


def test_single_model_rows_and_tier_rows():
    perfect = DATA.quality.copy()
    rep = report(perfect)
    assert row(rep, "best_single")["quality"] == 0.75 and row(rep, "best_single")["cost"] == pytest.approx(0.04)
    assert row(rep, "cheapest")["quality"] == 0.5 and row(rep, "cheapest")["cost"] == pytest.approx(0.004)
    # with perfect predictions the perf tier is the oracle; the cost tier always takes the cheap model
    assert row(rep, "perf")["quality"] == 1.0 and row(rep, "perf")["cost"] == pytest.approx(0.022)
    assert row(rep, "cost")["cost"] == pytest.approx(0.004)
    assert row(rep, "cheapest")["cost_ratio"] == pytest.approx(0.004 / 0.022)
    assert rep["per_benchmark"]["b"]["best_single"] == 0.5
    assert {r["name"] for r in rep["rows"]} >= {"paper_perf", "paper_balanced", "paper_cost"}


def test_aiq_of_a_flat_curve_is_its_height_and_hull_interpolates():
    assert aiq([{"cost": 0.0, "quality": 0.6}, {"cost": 1.0, "quality": 0.6}], (0.0, 1.0)) == pytest.approx(0.6)
    # two points: (0, .5) and (1, 1): the hull is the line between them → area .75
    assert aiq([{"cost": 0.0, "quality": 0.5}, {"cost": 1.0, "quality": 1.0}], (0.0, 1.0)) == pytest.approx(0.75)
