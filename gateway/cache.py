"""Feature-vector cache: an in-process LRU in front of Redis; Redis being down costs a miss, never a request."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Literal

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

RedisState = Literal["up", "down", "disabled"]


class LRUCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def set(self, key: str, value: bytes) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class FeatureCache:
    """`get` / `set` never raise: after a Redis error the cache serves from memory and retries Redis later."""

    def __init__(
        self,
        redis_url: str | None,
        ttl_s: int,
        max_entries: int,
        timeout_s: float = 0.25,
        retry_after_s: float = 2.0,
    ) -> None:
        self.ttl_s = ttl_s
        self.local = LRUCache(max_entries)
        self.retry_after_s = retry_after_s
        self._redis = (
            aioredis.Redis.from_url(redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
            if redis_url
            else None
        )
        self._down_until = 0.0
        self._was_down = False

    @property
    def state(self) -> RedisState:
        if self._redis is None:
            return "disabled"
        return "down" if self._was_down else "up"

    async def get(self, key: str) -> bytes | None:
        value = self.local.get(key)
        if value is not None or not self._redis_usable():
            return value
        remote = await self._call(self._redis.get(key))  # type: ignore[union-attr]
        if isinstance(remote, bytes):
            self.local.set(key, remote)
            return remote
        return None

    async def set(self, key: str, value: bytes) -> None:
        self.local.set(key, value)
        if self._redis_usable():
            await self._call(self._redis.set(key, value, ex=self.ttl_s))  # type: ignore[union-attr]

    async def ping(self) -> RedisState:
        if self._redis is None:
            return "disabled"
        self._down_until = 0.0
        await self._call(self._redis.ping())
        return self.state

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    def _redis_usable(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    async def _call(self, op: object) -> object:
        try:
            result = await op  # type: ignore[misc]
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
