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
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import anyio
import structlog

from gateway.cache import RedisLink
from gateway.dispatch import CallTrace
from gateway.errors import GatewayError
from gateway.routing import Decision

log = structlog.get_logger(__name__)

STREAM = "llmrank:decisions"
FEEDBACK_STREAM = "llmrank:decisions:feedback"
STREAM_TTL_S = 7 * 24 * 3600  # a log no replica writes to any more goes away; each batch renews it
PARSED_ON_THE_LOOP = 200
READ_CHUNK = 1000
Source = Literal["redis", "memory"]
T = TypeVar("T")


class Summary(NamedTuple):
    """What the charts and the filters need of a decision: a few fields, kept parsed for every decision logged."""

    id: str
    time: float
    request_id: str
    tier: str
    backend: str | None
    outcome: str
    predicted_quality: float
    estimated_cost: float
    cost: float | None
    route_ms: float
    upstream_ms: float | None

    @classmethod
    def parse(cls, entry_id: str, blob: bytes) -> Summary:
        r = json.loads(blob)
        return cls(
            entry_id,
            r["time"],
            r["request_id"],
            r["tier"],
            r["backend"],
            r["outcome"],
            r["predicted_quality"],
            r["estimated_cost"],
            r["cost"],
            r["route_ms"],
            r["upstream_ms"],
        )


class Score(NamedTuple):
    request_id: str
    score: float

    @classmethod
    def parse(cls, _entry_id: str, blob: bytes) -> Score:
        entry = json.loads(blob)
        return cls(entry["request_id"], entry["score"])


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
        self._summaries = _Follower(self, STREAM, self._local, Summary.parse)
        self._scores = _Follower(self, FEEDBACK_STREAM, self._local_feedback, Score.parse)

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
            for stream in {stream for stream, _ in batch}:
                pipe.expire(stream, STREAM_TTL_S)
            written = await self.redis.call(pipe.execute())
        if written is None:
            for stream, blob in batch:
                self._keep_locally(stream, blob)

    def _keep_locally(self, stream: str, blob: bytes) -> None:
        self._sequence += 1
        entry_id = f"{int(time.time() * 1000)}-{self._sequence}"
        (self._local if stream == STREAM else self._local_feedback).append((entry_id, blob))

    async def size(self) -> tuple[Source, int]:
        """How many decisions are kept where readers look now."""
        if self.redis.usable:
            length = await self.redis.call(self.redis.client.xlen(STREAM))  # type: ignore[union-attr]
            if length is not None:
                return "redis", int(length)
        return "memory", len(self._local)

    async def recent(self, limit: int) -> tuple[Source, list[dict]]:
        """The `limit` newest records, whole, newest first."""
        if self.redis.usable:
            rows = await self.redis.call(self.redis.client.xrevrange(STREAM, "+", "-", count=limit))  # type: ignore[union-attr]
            if rows is not None:
                return "redis", await _parsed([(i.decode(), f[b"d"]) for i, f in rows])
        return "memory", await _parsed(list(itertools.islice(reversed(self._local), limit)))

    async def summaries(self) -> tuple[Source, list[Summary]]:
        """Every decision kept, oldest first, as `Summary`s: only what was logged since the last call is read."""
        return await self._summaries.items()

    async def feedback(self) -> dict[str, float]:
        """request id → its latest score."""
        _, scores = await self._scores.items()
        return {s.request_id: s.score for s in scores}

    async def get_many(self, entry_ids: Sequence[str]) -> list[dict]:
        """The whole records of these entries, in the order asked for (those no longer kept left out)."""
        if not entry_ids:
            return []
        if self.redis.usable:
            pipe = self.redis.client.pipeline(transaction=False)  # type: ignore[union-attr]
            for entry_id in entry_ids:
                pipe.xrange(STREAM, entry_id, entry_id)
            found = await self.redis.call(pipe.execute())
            if found is not None:
                return await _parsed([(rows[0][0].decode(), rows[0][1][b"d"]) for rows in found if rows])
        wanted = set(entry_ids)
        local = {entry_id: blob for entry_id, blob in self._local if entry_id in wanted}
        return await _parsed([(i, local[i]) for i in entry_ids if i in local])

    async def get(self, entry_id: str) -> dict | None:
        found = await self.get_many([entry_id])
        return found[0] if found else None


class _Follower(Generic[T]):
    """One stream's records, parsed once each and kept (as many as the log keeps): each look reads only the entries
    added since the last one, from Redis or from the ring buffer, whichever readers see now."""

    def __init__(
        self, log: DecisionLog, stream: str, local: deque[tuple[str, bytes]], parse: Callable[[str, bytes], T]
    ) -> None:
        self.log = log
        self.stream = stream
        self.local = local
        self.parse = parse
        self._items: deque[T] = deque(maxlen=log.max_entries)
        self._source: Source | None = None
        self._last_id: str | None = None
        self._reading = asyncio.Lock()  # two pages looking at once must not both append what is new

    async def items(self) -> tuple[Source, list[T]]:
        async with self._reading:
            return await self._caught_up()

    async def _caught_up(self) -> tuple[Source, list[T]]:
        source = self.log.source
        if source != self._source:  # the other store holds other entries: start again from it
            self._items.clear()
            self._source, self._last_id = source, None
        rows = await self._read_redis() if source == "redis" else self._read_local()
        if rows is None:  # Redis failed just now: look again, in memory
            self._source = None
            return await self._caught_up()
        for n, (entry_id, blob) in enumerate(rows):
            self._items.append(self.parse(entry_id, blob))
            self._last_id = entry_id
            if n % PARSED_ON_THE_LOOP == PARSED_ON_THE_LOOP - 1:
                await asyncio.sleep(0)  # a first look at 10,000 entries lets requests through as it goes
        return source, list(self._items)

    async def _read_redis(self) -> list[tuple[str, bytes]] | None:
        rows: list[tuple[str, bytes]] = []
        after = self._last_id
        while True:
            low = f"({after}" if after else "-"
            chunk = await self.log.redis.call(self.log.redis.client.xrange(self.stream, low, "+", count=READ_CHUNK))  # type: ignore[union-attr]
            if chunk is None:
                return None
            rows += [(i.decode(), f[b"d"]) for i, f in chunk]
            if len(chunk) < READ_CHUNK:
                return rows[-self.log.max_entries :]
            after = rows[-1][0]

    def _read_local(self) -> list[tuple[str, bytes]]:
        last = _sequence_of(self._last_id) if self._last_id else 0
        return [(i, b) for i, b in self.local if _sequence_of(i) > last]


def _sequence_of(local_id: str) -> int:
    return int(local_id.rsplit("-", 1)[1])


async def _parsed(rows: list[tuple[str, bytes]]) -> list[dict]:
    if len(rows) < PARSED_ON_THE_LOOP:
        return _items(rows)
    return await anyio.to_thread.run_sync(_items, rows)  # a thousand take tens of ms: not on the event loop


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


def _items(rows: Iterable[tuple[str, bytes]]) -> list[dict]:
    return [{"id": entry_id, **json.loads(blob)} for entry_id, blob in rows]
