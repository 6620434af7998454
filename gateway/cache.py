"""Feature-vector cache: an in-process LRU in front of Redis; Redis being down costs a miss, never a request."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, Generic, Literal, TypeVar

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

RedisState = Literal["up", "down", "disabled"]
V = TypeVar("V")


class LRUCache(Generic[V]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def set(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RedisLink:
    """One Redis connection whose calls never raise: after an error, calls are skipped for `retry_after_s`, then
    tried again (redis-py reconnects by itself)."""

    def __init__(self, url: str | None, timeout_s: float = 0.25, retry_after_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.client = (
            aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s) if url else None
        )
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._was_down = False

    @property
    def state(self) -> RedisState:
        if self.client is None:
            return "disabled"
        return "down" if self._was_down else "up"

    @property
    def usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._down_until

    async def call(self, op: Awaitable[Any]) -> Any:
        """The command's result, or None when Redis failed (the failure is logged once per outage)."""
        try:
            result = await op
        except (TimeoutError, RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_after_s
            if not self._was_down:
                log.warning("redis_unavailable", error=type(exc).__name__, retry_after_s=self.retry_after_s)
            self._was_down = True
            return None
        if self._was_down:
            log.info("redis_reconnected")
            self._was_down = False
        return result

    async def ping(self) -> RedisState:
        if self.client is None:
            return "disabled"
        self._down_until = 0.0
        await self.call(self.client.ping())
        return self.state

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class FeatureCache:
    """`get` / `set` never raise: with Redis down the cache serves from memory and retries Redis later."""

    def __init__(self, redis: RedisLink, ttl_s: int, max_entries: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.local: LRUCache[bytes] = LRUCache(max_entries)
        self._writes: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> bytes | None:
        value = self.local.get(key)
        if value is not None or not self.redis.usable:
            return value
        remote = await self.redis.call(self.redis.client.get(key))  # type: ignore[union-attr]
        if isinstance(remote, bytes):
            self.local.set(key, remote)
            return remote
        return None

    def set(self, key: str, value: bytes) -> None:
        """In memory now, in Redis in the background: the request that computed the vector does not wait for the
        write (under load each await costs a turn of a busy event loop before the backend is called)."""
        self.local.set(key, value)
        if self.redis.usable:
            write = asyncio.create_task(self._store(key, value))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)

    async def _store(self, key: str, value: bytes) -> None:
        await self.redis.call(self.redis.client.set(key, value, ex=self.ttl_s))  # type: ignore[union-attr]

    async def flush(self) -> None:
        """Waits for the Redis writes under way (at shutdown, before the connection closes)."""
        await asyncio.gather(*self._writes)
