"""Choose the gateway's tier λ values on a validation cost–quality curve (not by guessing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PERF_TOLERANCE = 0.005  # quality points given up for cost at the perf tier
CHEAP_SLACK = 1.25  # the cost tier may spend up to this multiple of the cheapest model


def pick_tiers(curve: Sequence[Mapping[str, float]], cheapest_cost: float) -> dict[str, float]:
    """perf: the cheapest point within 0.5 points of the best quality; cost: the best quality near the cheapest
    model's cost; balanced: the knee between them (largest normalised quality gain over cost spent)."""
    best_quality = max(p["quality"] for p in curve)
    perf = min((p for p in curve if p["quality"] >= best_quality - PERF_TOLERANCE), key=lambda p: p["cost"])
    cheap = [p for p in curve if p["cost"] <= CHEAP_SLACK * cheapest_cost] or [max(curve, key=lambda p: p["lambda"])]
    cost = max(cheap, key=lambda p: (p["quality"], p["lambda"]))
    span_cost = max(perf["cost"] - cost["cost"], 1e-12)
    span_quality = max(perf["quality"] - cost["quality"], 1e-12)
    between = [p for p in curve if cost["cost"] <= p["cost"] <= perf["cost"]]
    balanced = max(
        between,
        key=lambda p: (p["quality"] - cost["quality"]) / span_quality - (p["cost"] - cost["cost"]) / span_cost,
    )
    return {"perf": perf["lambda"], "balanced": balanced["lambda"], "cost": cost["lambda"]}
