"""The decisions log: every routed request's decision and outcome, for the dashboard (`/ui`).

A record is built after the answer has gone out and queued; a writer task sends the queue to Redis in batches, to
the stream `llmrank:decisions` that every replica shares, trimmed to `max_entries`. When Redis is absent or down,
records go to an in-process ring buffer of the same size instead, and readers are told which one they see. Scores
sent to `/v1/feedback` are logged beside them (`llmrank:decisions:feedback`) so the dashboard can put predicted
quality against outcome without reading the calibration stream's feature vectors.

A record holds a digest of the prompt, never its words, unless the gateway is told to store prompts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import anyio
import structlog

from gateway.cache import RedisLink
from gateway.dispatch import CallTrace
from gateway.errors import GatewayError
from gateway.routing import Decision

log = structlog.get_logger(__name__)

STREAM = "llmrank:decisions"
FEEDBACK_STREAM = "llmrank:decisions:feedback"
PARSED_ON_THE_LOOP = 200
Source = Literal["redis", "memory"]


class DecisionLog:
    def __init__(self, redis: RedisLink, max_entries: int, flush_interval_s: float = 0.2) -> None:
        self.redis = redis
        self.max_entries = max_entries
        self.flush_interval_s = flush_interval_s
        self._pending: deque[tuple[str, bytes]] = deque(maxlen=max_entries)  # (stream, record) not yet written
        self._local: deque[tuple[str, bytes]] = deque(maxlen=max_entries)  # (entry id, record)
        self._local_feedback: deque[tuple[str, bytes]] = deque(maxlen=max_entries)
        self._sequence = 0
        self._wake = asyncio.Event()

    @property
    def source(self) -> Source:
        return "redis" if self.redis.usable else "memory"

    def record(self, entry: Mapping[str, Any]) -> None:
        """Queue a decision; never waits, never raises."""
        self._queue(STREAM, entry)

    def record_feedback(self, request_id: str, backend: str, score: float) -> None:
        entry = {"request_id": request_id, "backend": backend, "score": score, "time": time.time()}
        self._queue(FEEDBACK_STREAM, entry)

    def _queue(self, stream: str, entry: Mapping[str, Any]) -> None:
        self._pending.append((stream, json.dumps(entry, separators=(",", ":")).encode()))
        self._wake.set()

    async def run(self) -> None:
        """The writer: each batch goes to Redis in one round trip, or to memory when Redis cannot take it."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self.flush_interval_s)

    async def flush(self) -> None:
        batch = list(self._pending)
        self._pending.clear()
        if not batch:
            return
        written = None
        if self.redis.usable:
            pipe = self.redis.client.pipeline(transaction=False)  # type: ignore[union-attr]
            for stream, blob in batch:
                pipe.xadd(stream, {"d": blob}, maxlen=self.max_entries, approximate=False)
            written = await self.redis.call(pipe.execute())
        if written is None:
            for stream, blob in batch:
                self._keep_locally(stream, blob)

    def _keep_locally(self, stream: str, blob: bytes) -> None:
        self._sequence += 1
        entry_id = f"{int(time.time() * 1000)}-{self._sequence}"
        (self._local if stream == STREAM else self._local_feedback).append((entry_id, blob))

    async def recent(self, limit: int, since: float | None = None) -> tuple[Source, list[dict]]:
        """The `limit` newest records, newest first (only those after `since`, epoch seconds, where given)."""
        source, rows = await self._newest(STREAM, self._local, limit, since)
        if len(rows) < PARSED_ON_THE_LOOP:
            return source, _items(rows)
        return source, await anyio.to_thread.run_sync(_items, rows)  # thousands take tens of ms: not on the loop

    async def feedback(self, since: float | None = None) -> dict[str, float]:
        """request id → its latest score."""
        _, rows = await self._newest(FEEDBACK_STREAM, self._local_feedback, self.max_entries, since)
        scores: dict[str, float] = {}
        for _, blob in reversed(rows):
            entry = json.loads(blob)
            scores[entry["request_id"]] = entry["score"]
        return scores

    async def get(self, entry_id: str) -> dict | None:
        if self.redis.usable:
            found = await self.redis.call(self.redis.client.xrange(STREAM, entry_id, entry_id))  # type: ignore[union-attr]
            if found:
                raw_id, fields = found[0]
                return _item(raw_id.decode(), fields[b"d"])
        for local_id, blob in self._local:
            if local_id == entry_id:
                return _item(local_id, blob)
        return None

    async def _newest(
        self, stream: str, local: deque[tuple[str, bytes]], count: int, since: float | None
    ) -> tuple[Source, list[tuple[str, bytes]]]:
        if self.redis.usable:
            low = f"{int(since * 1000)}" if since else "-"
            rows = await self.redis.call(self.redis.client.xrevrange(stream, "+", low, count=count))  # type: ignore[union-attr]
            if rows is not None:
                return "redis", [(raw_id.decode(), fields[b"d"]) for raw_id, fields in rows]
        newest = list(_newest_local(local, count, since))
        return "memory", newest


def decision_record(
    decision: Decision,
    trace: CallTrace,
    request_id: str,
    replica: str,
    stream: bool,
    failure: GatewayError | None = None,
    prompt: str | None = None,
) -> dict[str, Any]:
    """One routed request as the dashboard shows it: the ranking, what each backend call did, what it cost.

    `prompt` is stored only when it is given (LLMRANK_STORE_PROMPTS); otherwise the record names the prompt by a
    digest, which is also the key of its cached features (the dashboard's attributions read them from there)."""
    answered = trace.attempts[-1].backend if failure is None and trace.attempts else None
    shown = next(c for c in decision.candidates if c.backend.name == (answered or decision.chosen.name))
    usage = trace.usage or {}
    record: dict[str, Any] = {
        "time": time.time(),
        "request_id": request_id,
        "replica": replica,
        "tier": decision.tier,
        "lambda": decision.lam,
        "backend": answered,
        "chosen": decision.chosen.name,
        "predicted_quality": round(shown.quality, 4),
        "estimated_cost": shown.cost,
        "cost": trace.cost,
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "route_ms": round(decision.route_ms, 3),
        "cache": decision.cache,
        "stream": stream,
        "status": failure.status if failure is not None else 200,
        "outcome": "error" if failure is not None else ("fallback" if len(trace.attempts) > 1 else "ok"),
        "error": failure.message if failure is not None else None,
        "upstream_ms": round(trace.attempts[-1].ms, 2) if trace.attempts else None,
        "attempts": [
            {"backend": a.backend, "status": a.status, "ms": round(a.ms, 2), "error": a.error} for a in trace.attempts
        ],
        "candidates": [
            {
                "backend": c.backend.name,
                "profile": c.backend.profile,
                "predicted_quality": round(c.quality, 4),
                "estimated_cost": c.cost,
                "utility": round(c.utility, 6),
            }
            for c in decision.candidates
        ],
        "unfit": [{"backend": u.backend, "reason": u.reason, "detail": u.detail} for u in decision.unfit],
        "features_key": decision.features_key,
        "prompt_digest": decision.features_key.rsplit(":", 1)[-1][:12],
    }
    if prompt is not None:
        record["prompt"] = prompt
    return record


def _newest_local(local: deque[tuple[str, bytes]], count: int, since: float | None) -> Iterable[tuple[str, bytes]]:
    low = int(since * 1000) if since else 0
    for n, (entry_id, blob) in enumerate(reversed(local)):
        if n >= count or int(entry_id.split("-")[0]) < low:
            return
        yield entry_id, blob


def _items(rows: Iterable[tuple[str, bytes]]) -> list[dict]:
    return [_item(i, b) for i, b in rows]


def _item(entry_id: str, blob: bytes) -> dict:
    return {"id": entry_id, **json.loads(blob)}
