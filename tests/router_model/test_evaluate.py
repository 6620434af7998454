"""Evaluation rows against hand-computed values on a fixture of two sources with different pools."""

from __future__ import annotations

import numpy as np
import pytest

from router_model.data import OutcomeTable
from router_model.evaluate import Predictions, aiq, evaluate, evaluate_sources

NAN = float("nan")
# models:               big    small  chat   (chat is graded by source s2 only; small by s1 only)
# s1 p0 quality          1      1      —      cost .01 .001 —
# s1 p1                  1      0      —
# s1 p2                  0      1      —
# s1 p3                  1      0      —
# s2 p4                 .5      —     .9      cost .02 — .004
# s2 p5                 .5      —     .2
DATA = OutcomeTable(
    prompt_ids=np.array([f"s{1 + (i > 3)}/t/{i}" for i in range(6)]),
    prompts=[f"p{i}" for i in range(6)],
    sources=np.array(["s1"] * 4 + ["s2"] * 2),
    tasks=np.array(["s1/a", "s1/a", "s1/b", "s1/b", "s2/c", "s2/c"]),
    models=("big", "small", "chat"),
    quality=np.array(
        [[1.0, 1.0, NAN], [1.0, 0.0, NAN], [0.0, 1.0, NAN], [1.0, 0.0, NAN], [0.5, NAN, 0.9], [0.5, NAN, 0.2]]
    ),
    cost=np.array([[0.01, 0.001, NAN]] * 4 + [[0.02, NAN, 0.004]] * 2),
)
TIERS = {"perf": 0.0, "balanced": 10.0, "cost": 1e4}


def predictions(quality: np.ndarray) -> Predictions:
    return Predictions(quality={"quality": quality}, cost=np.nan_to_num(DATA.cost, nan=0.05))


def row(rep: dict, name: str) -> dict:
    return next(r for r in rep["rows"] if r["name"] == name)


def test_each_sources_oracle_row_picks_only_among_the_models_that_source_graded():
    report = evaluate_sources(DATA, predictions(np.zeros((6, 3))), TIERS)
    s1, s2 = report["per_source"]["s1"], report["per_source"]["s2"]
    # s1: p0 both right → small (.001); p1 big (.01); p2 small (.001); p3 big (.01)
    assert row(s1, "oracle")["quality"] == 1.0 and row(s1, "oracle")["cost"] == pytest.approx(0.022)
    # s2: p4 chat (.9, .004); p5 big (.5, .02) — never `small`, which s2 did not grade
    assert row(s2, "oracle")["quality"] == pytest.approx(0.7) and row(s2, "oracle")["cost"] == pytest.approx(0.024)
    overall = row(report["overall"], "oracle")
    assert overall["quality"] == pytest.approx((4 * 1.0 + 2 * 0.7) / 6) and overall["cost"] == pytest.approx(0.046)
    assert set(report["per_source"]) == {"s1", "s2"}


def test_routers_never_pick_a_model_the_source_did_not_grade():
    # the predictions love `chat` everywhere, but s1 never graded it
    loves_chat = np.tile([0.1, 0.0, 1.0], (6, 1))
    s1 = evaluate_sources(DATA, predictions(loves_chat), TIERS)["per_source"]["s1"]
    assert row(s1, "perf")["quality"] == 0.75 and row(s1, "perf")["cost"] == pytest.approx(0.04)


def test_single_model_rows_tier_rows_and_per_task_rows():
    rep = evaluate(DATA.of_source("s1"), predictions(DATA.quality.copy()).subset(np.arange(4)), TIERS)
    assert row(rep, "best_single")["quality"] == 0.75 and row(rep, "best_single")["cost"] == pytest.approx(0.04)
    assert row(rep, "cheapest")["quality"] == 0.5 and row(rep, "cheapest")["cost"] == pytest.approx(0.004)
    # with perfect predictions the perf tier is the oracle; the cost tier always takes the cheap model
    assert row(rep, "perf")["quality"] == 1.0 and row(rep, "perf")["cost"] == pytest.approx(0.022)
    assert row(rep, "cost")["cost"] == pytest.approx(0.004)
    assert row(rep, "cheapest")["cost_ratio"] == pytest.approx(0.004 / 0.022)
    assert rep["per_task"]["s1/b"]["best_single"] == 0.5
    assert {r["name"] for r in rep["rows"]} >= {"paper_perf", "paper_balanced", "paper_cost"}
    assert [m["name"] for m in rep["single_models"]] == ["big", "small"]


def test_a_single_models_point_aiq_is_its_quality_times_the_cost_left_over():
    rep = evaluate(DATA.of_source("s1"), predictions(DATA.quality.copy()).subset(np.arange(4)), TIERS)
    points = {m["name"]: m["aiq"] for m in rep["single_models"]}
    assert points["small"] == pytest.approx(0.5)  # at the cheapest cost: 0.5 × (1 − 0)
    assert points["big"] == pytest.approx(0.0)  # at the dearest cost nothing is left


def test_aiq_of_a_flat_curve_is_its_height_and_hull_interpolates():
    assert aiq([{"cost": 0.0, "quality": 0.6}, {"cost": 1.0, "quality": 0.6}], (0.0, 1.0)) == pytest.approx(0.6)
    # two points: (0, .5) and (1, 1): the hull is the line between them → area .75
    assert aiq([{"cost": 0.0, "quality": 0.5}, {"cost": 1.0, "quality": 1.0}], (0.0, 1.0)) == pytest.approx(0.75)
