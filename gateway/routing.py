"""Score → choose: the prompt's feature vector (cached), each backend's utility q̂ + offset − λ·ĉ, the ranking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import anyio
import numpy as np
import structlog

from gateway.cache import FeatureCache, LRUCache
from gateway.capabilities import Needs, Unfit, sort_out
from gateway.config_store import GatewayConfig
from gateway.conversation import cache_key
from gateway.cooldown import Cooldowns
from gateway.errors import NoBackendFits
from gateway.metrics import Metrics
from gateway.registry import Backend
from router_model.judge import JudgeError, judged_nothing, unjudged
from router_model.policy import ranking
from router_model.router import PromptVector, Router

log = structlog.get_logger(__name__)

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
    features_key: str  # where the prompt's feature vector is cached: a digest of the prompt, not its words
    unfit: tuple[Unfit, ...] = ()  # backends left out: they cannot take the request

    @property
    def chosen(self) -> Backend:
        return self.candidates[0].backend


def predicted_quality(predicted: np.ndarray, columns: Sequence[int], backends: Sequence[Backend]) -> np.ndarray:
    """Each backend's q̂: its profile's prediction plus its `quality_offset`, kept in [0, 1] like every q̂."""
    offsets = np.array([b.quality_offset for b in backends])
    return np.clip(predicted[list(columns)] + offsets, 0.0, 1.0)


class RoutingEngine:
    def __init__(
        self,
        router: Router,
        cache: FeatureCache,
        metrics: Metrics,
        memo_entries: int = 10_000,
        slots: int = 1,
        judge_cooldowns: Cooldowns | None = None,
    ) -> None:
        """`judge_cooldowns`: when the router's feature judge keeps failing, misses stop waiting for it a while
        (None: it is asked on every miss, as with LLMRANK_COOLDOWN_S=0)."""
        self.router = router
        self.cache = cache
        self.metrics = metrics
        self._judge_cooldowns = judge_cooldowns or Cooldowns(failures=1, period_s=0)
        self._judge_calls = asyncio.Semaphore(router.judge.connection.concurrency if router.judge else 1)
        self._profile_index = {p: i for i, p in enumerate(router.profiles)}
        self._scoring_slots = anyio.CapacityLimiter(slots)
        # the network's output per cached prompt: a repeated prompt skips the forward pass, whose weights a
        # request's other work has usually pushed out of the CPU caches (0.3 ms warm, 0.7–0.9 ms in the gateway)
        self._predicted: LRUCache[np.ndarray] = LRUCache(memo_entries)
        self._encoding: dict[str, asyncio.Task[tuple[PromptVector, np.ndarray]]] = {}
        self._misses_in_flight = 0

    def features_key(self, text: str) -> str:
        return cache_key(self.router.version, text)

    async def vector_for(self, text: str, key: str | None = None) -> tuple[PromptVector, np.ndarray, CacheResult]:
        """The prompt's feature vector and the network's predicted quality per router profile; `key`: the prompt's
        `features_key`, where the caller has it."""
        key = key or self.features_key(text)
        if key not in self._encoding:
            blob = await self.cache.get(key)
            if blob is not None:
                self.metrics.cache.labels("hit").inc()
                vector = PromptVector.from_bytes(blob, len(self.router.featurizer.names))
                return vector, self._remembered_quality(key, vector), "hit"
        vector, predicted = await asyncio.shield(self._encode_once(key, text))
        return vector, predicted, "miss"

    def _encode_once(self, key: str, text: str) -> asyncio.Task[tuple[PromptVector, np.ndarray]]:
        """The encode of this prompt: requests that miss on a prompt already being encoded wait for that encode
        ("shared" misses) instead of queueing their own. The task is not any request's, so a caller that goes
        away does not cancel it for the others."""
        task = self._encoding.get(key)
        if task is not None:
            self.metrics.cache.labels("shared").inc()
            return task
        self.metrics.cache.labels("miss").inc()
        task = asyncio.create_task(self._encode_and_store(key, text))
        self._encoding[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: str, task: asyncio.Task[tuple[PromptVector, np.ndarray]]) -> None:
        del self._encoding[key]
        if not task.cancelled():
            task.exception()  # marks a failure as seen: its callers got it, or went away and need it no more

    async def _encode_and_store(self, key: str, text: str) -> tuple[PromptVector, np.ndarray]:
        """A miss scored alone uses every scoring thread; one that arrives while others are being scored uses
        one, so that misses under load do not fight over the cores.

        The network runs here, on the event loop: it takes 0.3 ms, but in a worker thread each of its dozen torch
        ops lets go of the GIL and then waits for a busy loop to hand it back (up to Python's 5 ms switch
        interval each)."""
        judged = await self._judged(text)
        self._misses_in_flight += 1
        try:
            narrow = self._misses_in_flight > 1
            vector = await anyio.to_thread.run_sync(self._vectorize, text, narrow, judged, limiter=self._scoring_slots)
        finally:
            self._misses_in_flight -= 1
        predicted = self.router.quality([vector])[0]
        if judged is None or not judged_nothing(judged):  # a failed judgement is not kept: the next miss asks again
            self._predicted.set(key, predicted)
            self.cache.set(key, vector.to_bytes())
        return vector, predicted

    async def _judged(self, text: str) -> np.ndarray | None:
        """The judge's rule features for a prompt, where the router has a judge; a row of NaN (the parsers stand in)
        when it fails, is cooling down after failures in a row, or already has all its calls in flight. A judge's
        fault or a flood of new prompts so coarsens routing, and slows a miss by the judge's time-out at most, but
        never fails a request; a miss does not queue for a call, since under sustained load every miss would then
        wait out the time-out."""
        judge = self.router.judge
        if judge is None:
            return None
        name = f"judge:{judge.model}"
        if self._judge_cooldowns.cooling(name):
            self.metrics.judge.labels("skipped").inc()
            return unjudged()
        if self._judge_calls.locked():
            self.metrics.judge.labels("busy").inc()
            return unjudged()
        async with self._judge_calls:
            try:
                judged = await judge.judge(text)
            except JudgeError as exc:
                self.metrics.judge.labels("failed").inc()
                log.warning("judge_failed", model=judge.model, error=str(exc))
                self._judge_cooldowns.failed(name)
                return unjudged()
        self._judge_cooldowns.succeeded(name)
        self.metrics.judge.labels("ok").inc()
        return judged

    def _remembered_quality(self, key: str, vector: PromptVector) -> np.ndarray:
        predicted = self._predicted.get(key)
        if predicted is None:  # cached in Redis by another gateway, or fallen out of this one's memo
            predicted = self.router.quality([vector])[0]
            self._predicted.set(key, predicted)
        return predicted

    def explain(self, vector: PromptVector, profile: str, top: int = 8) -> list[dict[str, object]]:
        """The features that pushed `profile`'s predicted quality most for this prompt (captum; a few ms, so it is
        asked for in a worker thread, off the request path)."""
        attrs = self.router.attributions(vector, self._profile_index[profile])
        return [
            {
                "feature": a.name,
                "value": None if np.isnan(a.value) else a.value,
                "attribution": a.attribution,
                "description": a.description,
            }
            for a in attrs[:top]
        ]

    def _vectorize(self, text: str, narrow: bool, judged: np.ndarray | None) -> PromptVector:
        return self.router.vectorize([text], narrow=narrow, judged=None if judged is None else judged[None, :])[0]

    async def decide(self, text: str, needs: Needs, output_tokens: int, config: GatewayConfig, tier: str) -> Decision:
        """The backends that can take the request (`needs`), best first for the tier; NoBackendFits when none can."""
        started = time.perf_counter()
        backends, unfit = sort_out(config.registry.enabled, config.capabilities, needs)
        for left_out in unfit:
            self.metrics.unfit.labels(left_out.backend, left_out.reason).inc()
        if not backends:
            raise NoBackendFits.because(unfit)
        key = self.features_key(text)
        vector, predicted, cache = await self.vector_for(text, key)
        lam = config.tiers.lambda_for(tier)
        prompt_tokens = needs.prompt_tokens
        quality = predicted_quality(predicted, [self._profile_index[b.profile] for b in backends], backends)
        cost = np.array(
            [prompt_tokens * config.prices[b.name][0] + output_tokens * config.prices[b.name][1] for b in backends]
        )
        order = ranking(quality, cost, lam)
        candidates = tuple(
            Candidate(backends[j], float(quality[j]), float(cost[j]), float(quality[j] - lam * cost[j])) for j in order
        )
        route_ms = (time.perf_counter() - started) * 1000
        self.metrics.routing_seconds.labels(cache).observe(route_ms / 1000)
        return Decision(tier, lam, candidates, cache, route_ms, vector, key, tuple(unfit))
