"""Choose the gateway's tier λ values on a validation cost–quality curve (not by guessing).

The curve is the λ sweep averaged over the validation split's sources (`evaluate.combined_curve`): quality as is,
cost as a share of each source's dearest single model, so that no source's dollar scale decides alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PERF_SHARE = 0.97  # the perf tier keeps this share of the best quality on the curve, at the least cost
CHEAP_SLACK = 1.25  # the cost tier may spend up to this multiple of the cheapest model


def pick_tiers(curve: Sequence[Mapping[str, float]], cheapest_cost: float) -> dict[str, float]:
    """perf: the cheapest point keeping 97% of the best quality; cost: the best quality near the cheapest model's
    cost; balanced: the knee between them (largest normalised quality gain over cost spent)."""
    best_quality = max(p["quality"] for p in curve)
    perf = min((p for p in curve if p["quality"] >= PERF_SHARE * best_quality), key=lambda p: p["cost"])
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
