"""Prometheus metrics, one registry per app so tests and processes never share counters. No prompt text in labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llmrank_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.routing_seconds = Histogram(
            "llmrank_routing_seconds",
            "time to score and choose a backend",
            ["cache"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "llmrank_upstream_seconds",
            "backend call latency",
            ["backend", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.selections = Counter(
            "llmrank_selections", "answers by the backend that gave them", ["backend", "tier"], registry=r
        )
        self.cache = Counter("llmrank_feature_cache", "feature cache lookups", ["result"], registry=r)
        self.fallbacks = Counter(
            "llmrank_fallbacks", "backend failures that moved on to the next", ["backend", "reason"], registry=r
        )
        self.spend = Counter(
            "llmrank_spend_dollars",
            "actual cost: billed tokens x prices (a stream without usage: its counted tokens x prices)",
            ["backend"],
            registry=r,
        )
        self.priced_by_count = Counter(
            "llmrank_priced_by_count",
            "answers that came without the backend's usage (mostly streams), priced from their counted tokens",
            ["backend"],
            registry=r,
        )
        self.estimated_spend = Counter(
            "llmrank_estimated_spend_dollars",
            "router's cost estimate for each routed answer, by the backend that gave it",
            ["backend"],
            registry=r,
        )
        self.predicted_quality = Histogram(
            "llmrank_predicted_quality",
            "router's predicted quality (0-1) for each routed answer, by the backend that gave it",
            ["backend", "tier"],
            buckets=QUALITY_BUCKETS,
            registry=r,
        )
        self.feedback_score = Histogram(
            "llmrank_feedback_score",
            "scores (0-1) received on /v1/feedback, by the backend that gave the answer",
            ["backend"],
            buckets=QUALITY_BUCKETS,
            registry=r,
        )
        self.judge = Counter(
            "llmrank_feature_judge",
            "LLM feature judge on cache misses: ok, failed, skipped (cooling down) or busy (all its calls in flight); "
            "parsed features stand in for all but ok",
            ["result"],
            registry=r,
        )
        self.unfit = Counter(
            "llmrank_unfit_backends",
            "backends left out of a routed request's ranking because they cannot take it: its prompt exceeds their "
            "context, its max_tokens their output limit, or it has images, audio, files or tools they do not take",
            ["backend", "reason"],
            registry=r,
        )
        self.cooldowns = Counter("llmrank_cooldowns", "times a failing backend was set aside", ["backend"], registry=r)
        self.config_reloads = Counter("llmrank_config_reloads", "registry reloads", ["result"], registry=r)
        self.redis_up = Gauge("llmrank_redis_up", "1 when the feature cache reaches Redis", registry=r)
