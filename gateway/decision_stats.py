"""What the dashboard shows of many decisions: spend and traffic over a window, predicted quality against feedback.

Pure functions of the decisions log's summaries (`decisions.Summary`), so what a chart shows is what the log holds;
totals of actual and estimated spend are the same sums `/metrics` counts, over the decisions kept.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gateway.decisions import Summary

WINDOWS_S = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600}
BUCKETS = 30


def spend_and_traffic(records: Sequence[Summary], window_s: float, now: float) -> dict[str, Any]:
    """Per backend that answered: cumulative actual and estimated dollars per time bucket, requests; per tier and
    backend: requests; per bucket: p50/p95 routing and upstream latency; the oldest decision in the window."""
    width = window_s / BUCKETS
    start = now - window_s
    in_window = [r for r in records if r.time >= start]
    backends = sorted({r.backend for r in in_window if r.backend})
    actual = {b: [0.0] * BUCKETS for b in backends}  # plain lists: adding to a numpy element costs 10 times more
    estimated = {b: [0.0] * BUCKETS for b in backends}
    requests = {b: [0] * BUCKETS for b in backends}
    route_ms: list[list[float]] = [[] for _ in range(BUCKETS)]
    upstream_ms: list[list[float]] = [[] for _ in range(BUCKETS)]
    by_tier: defaultdict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    for r in in_window:
        i = min(int((r.time - start) / width), BUCKETS - 1)
        route_ms[i].append(r.route_ms)
        outcomes[r.outcome] += 1
        if r.upstream_ms is not None:
            upstream_ms[i].append(r.upstream_ms)
        if r.backend is None:
            by_tier[r.tier]["(failed)"] += 1
            continue
        by_tier[r.tier][r.backend] += 1
        requests[r.backend][i] += 1
        actual[r.backend][i] += r.cost or 0.0
        estimated[r.backend][i] += r.estimated_cost
    answered = sum(sum(n) for n in requests.values())
    return {
        "window_s": window_s,
        "bucket_s": width,
        "times": [start + (i + 1) * width for i in range(BUCKETS)],
        "requests": len(in_window),
        "oldest": min((r.time for r in in_window), default=None),
        "outcomes": dict(outcomes),
        "backends": {
            b: {
                "requests": sum(requests[b]),
                "share": sum(requests[b]) / answered if answered else 0.0,
                "cost": sum(actual[b]),
                "estimated_cost": sum(estimated[b]),
                "cumulative_cost": list(itertools.accumulate(actual[b])),
                "cumulative_estimated_cost": list(itertools.accumulate(estimated[b])),
                "requests_per_bucket": requests[b],
            }
            for b in backends
        },
        "by_tier": {tier: dict(counts) for tier, counts in sorted(by_tier.items())},
        "latency_ms": {
            "route": _percentiles([x for bucket in route_ms for x in bucket]),
            "upstream": _percentiles([x for bucket in upstream_ms for x in bucket]),
            "route_per_bucket": [_percentiles(bucket) for bucket in route_ms],
            "upstream_per_bucket": [_percentiles(bucket) for bucket in upstream_ms],
        },
    }


def quality_by_backend(records: Sequence[Summary], scores: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per backend that answered: how many answers and their mean predicted quality; of those that got feedback,
    how many, their mean score and the mean prediction for the same answers (the gap shows a mis-calibrated
    profile)."""
    routed: defaultdict[str, list[float]] = defaultdict(list)
    scored: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in records:
        if r.backend is None:
            continue
        routed[r.backend].append(r.predicted_quality)
        if r.request_id in scores:
            scored[r.backend].append((r.predicted_quality, scores[r.request_id]))
    rows = []
    for backend in sorted(routed):
        pairs = scored.get(backend, [])
        predicted_scored = float(np.mean([p for p, _ in pairs])) if pairs else None
        mean_score = float(np.mean([s for _, s in pairs])) if pairs else None
        rows.append(
            {
                "backend": backend,
                "answers": len(routed[backend]),
                "mean_predicted_quality": float(np.mean(routed[backend])),
                "feedback": len(pairs),
                "mean_feedback_score": mean_score,
                "mean_predicted_with_feedback": predicted_scored,
                "gap": None if mean_score is None or predicted_scored is None else mean_score - predicted_scored,
            }
        )
    return rows


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}
