"""Score → choose: the prompt's feature vector (cached), each backend's utility q̂ + offset − λ·ĉ, the ranking."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import anyio
import numpy as np

from gateway.cache import FeatureCache
from gateway.config_store import GatewayConfig
from gateway.conversation import cache_key
from gateway.metrics import Metrics
from gateway.registry import Backend
from router_model.policy import ranking
from router_model.router import PromptVector, Router

CacheResult = Literal["hit", "miss"]


@dataclass(frozen=True)
class Candidate:
    backend: Backend
    quality: float
    cost: float
    utility: float


@dataclass(frozen=True)
class Decision:
    tier: str
    lam: float
    candidates: tuple[Candidate, ...]  # best first: the order fallbacks follow
    cache: CacheResult
    route_ms: float
    vector: PromptVector

    @property
    def chosen(self) -> Backend:
        return self.candidates[0].backend


class RoutingEngine:
    def __init__(self, router: Router, cache: FeatureCache, metrics: Metrics) -> None:
        self.router = router
        self.cache = cache
        self.metrics = metrics
        self._profile_index = {p: i for i, p in enumerate(router.profiles)}
        self._encoder_slot = anyio.CapacityLimiter(1)

    async def vector_for(self, text: str) -> tuple[PromptVector, CacheResult]:
        key = cache_key(self.router.version, text)
        blob = await self.cache.get(key)
        if blob is not None:
            self.metrics.cache.labels("hit").inc()
            return PromptVector.from_bytes(blob, len(self.router.featurizer.names)), "hit"
        self.metrics.cache.labels("miss").inc()
        vector = await anyio.to_thread.run_sync(self._vectorize, text, limiter=self._encoder_slot)
        await self.cache.set(key, vector.to_bytes())
        return vector, "miss"

    def _vectorize(self, text: str) -> PromptVector:
        return self.router.vectorize([text])[0]

    async def decide(
        self, text: str, prompt_tokens: int, output_tokens: int, config: GatewayConfig, tier: str
    ) -> Decision:
        started = time.perf_counter()
        vector, cache = await self.vector_for(text)
        lam = config.tiers.lambda_for(tier)
        backends = config.registry.enabled
        q_profiles = self.router.quality([vector])[0]
        quality = np.array([q_profiles[self._profile_index[b.profile]] + b.quality_offset for b in backends])
        cost = np.array(
            [prompt_tokens * config.prices[b.name][0] + output_tokens * config.prices[b.name][1] for b in backends]
        )
        order = ranking(quality, cost, lam)
        candidates = tuple(
            Candidate(backends[j], float(quality[j]), float(cost[j]), float(quality[j] - lam * cost[j])) for j in order
        )
        route_ms = (time.perf_counter() - started) * 1000
        self.metrics.routing_seconds.labels(cache).observe(route_ms / 1000)
        return Decision(tier, lam, candidates, cache, route_ms, vector)
