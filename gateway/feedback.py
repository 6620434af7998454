"""Outcome feedback: what each routed request was, a 0–1 score for it later, kept for `llmrank calibrate`.

Each routed request's backend, profile and feature vector are remembered for `feedback_ttl_s` (Redis with a TTL,
and an in-process LRU). A score is appended to the Redis stream `llmrank:feedback`, or to a local JSONL file when
Redis is absent or down, so a score is never lost because Redis is.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from gateway.cache import LRUCache, RedisLink

log = structlog.get_logger(__name__)

STREAM = "llmrank:feedback"
STREAM_MAXLEN = 1_000_000


@dataclass(frozen=True)
class RoutedRequest:
    request_id: str
    backend: str
    profile: str
    vector: bytes  # the router's PromptVector.to_bytes()
    router_version: str  # what made the vector: calibration uses only vectors of its own network

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "vector": base64.b64encode(self.vector).decode()}).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> RoutedRequest:
        data = json.loads(raw)
        vector = base64.b64decode(data["vector"])
        return cls(data["request_id"], data["backend"], data["profile"], vector, data.get("router_version", ""))


class FeedbackStore:
    def __init__(self, redis: RedisLink, file: Path, ttl_s: int, max_local: int = 10_000) -> None:
        self.redis = redis
        self.file = file
        self.ttl_s = ttl_s
        self._local: LRUCache[bytes] = LRUCache(max_local)

    async def remember(self, routed: RoutedRequest) -> None:
        """Into Redis when it answers, else into memory (bounded): one copy, not two."""
        blob = routed.to_json()
        stored = None
        if self.redis.usable:
            stored = await self.redis.call(self.redis.client.set(_key(routed.request_id), blob, ex=self.ttl_s))  # type: ignore[union-attr]
        if not stored:
            self._local.set(routed.request_id, blob)

    async def lookup(self, request_id: str) -> RoutedRequest | None:
        blob = self._local.get(request_id)
        if blob is None and self.redis.usable:
            blob = await self.redis.call(self.redis.client.get(_key(request_id)))  # type: ignore[union-attr]
        return RoutedRequest.from_json(blob) if isinstance(blob, bytes) else None

    async def record(self, request_id: str, score: float) -> RoutedRequest | None:
        """Store the score with the request's features; None when the request id is unknown (or expired)."""
        routed = await self.lookup(request_id)
        if routed is None:
            return None
        entry = json.loads(routed.to_json()) | {"score": score, "time": time.time()}
        stored = None
        if self.redis.usable:
            stored = await self.redis.call(
                self.redis.client.xadd(STREAM, {"entry": json.dumps(entry)}, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[union-attr]
            )
        if stored is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with self.file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
        log.info("feedback_recorded", backend=routed.backend, score=score, stored="redis" if stored else "file")
        return routed


def read_feedback(redis_url: str | None, file: Path) -> list[dict[str, Any]]:
    """Every stored score with its request's features: the Redis stream and the local file together."""
    entries: list[dict[str, Any]] = []
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        try:
            stream: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(STREAM)  # type: ignore[assignment]
            entries += [json.loads(fields[b"entry"]) for _, fields in stream]
        except redis.RedisError as exc:
            log.warning("feedback_stream_unreadable", error=type(exc).__name__)
        finally:
            client.close()
    if file.exists():
        entries += [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    for entry in entries:
        entry["vector"] = base64.b64decode(entry["vector"])
    return entries


def _key(request_id: str) -> str:
    return f"llmrank:request:{request_id}"
