"""Cool-downs that every replica sharing a Redis sees.

Each retriable failure is counted in Redis (`llmrank:cooldown:failures:<backend>`, expiring after the cool-down
period) and announced on the channel `llmrank:cooldowns:<db>`; the replica whose failure reaches the threshold sets
`llmrank:cooldown:until:<backend>` (expiring when the cool-down ends) and announces that. Every replica follows the
channel and keeps what it heard in memory, so routing a request reads nothing from Redis. With Redis down each
replica counts its own failures, as a lone gateway does; when Redis is back the listener re-reads whatever keys are
left (none, after a restart of a Redis that keeps nothing) and sharing resumes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from gateway.cache import RedisLink
from gateway.cooldown import Cooldowns

log = structlog.get_logger(__name__)

CHANNEL = "llmrank:cooldowns"
FAILURES = "llmrank:cooldown:failures:"
UNTIL = "llmrank:cooldown:until:"


class SharedCooldowns(Cooldowns):
    def __init__(
        self,
        failures: int,
        period_s: float,
        redis: RedisLink,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(failures, period_s, clock)
        self.redis = redis
        self._wall = wall  # shared deadlines are wall-clock times: replicas do not share a monotonic clock
        self._shared_until: dict[str, float] = {}
        self._shared_failures: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # pub/sub channels are server-wide, not per database: gateways on other databases of the same Redis are
        # other deployments, and must not hear these cool-downs
        db = redis.client.connection_pool.connection_kwargs.get("db", 0) if redis.client is not None else 0
        self.channel = f"{CHANNEL}:{db}"

    def cooling(self, name: str) -> bool:
        return super().cooling(name) or self._shared_until.get(name, 0.0) > self._wall()

    def state(self, name: str) -> dict[str, float | int]:
        own = super().state(name)
        shared_left = max(0.0, self._shared_until.get(name, 0.0) - self._wall())
        return {
            "failures_in_a_row": max(int(own["failures_in_a_row"]), self._shared_failures.get(name, 0)),
            "cooling_s": round(max(float(own["cooling_s"]), shared_left), 1),
        }

    def failed(self, name: str) -> bool:
        started = super().failed(name)
        if self.period_s > 0:
            self._spawn(self._count_failure(name, started))
        return started

    def succeeded(self, name: str) -> None:
        super().succeeded(name)
        known = self._shared_failures.pop(name, None) is not None
        known |= self._shared_until.pop(name, None) is not None
        if known:  # only a backend some replica saw fail costs a write; a success on a healthy one costs nothing
            self._spawn(self._clear(name))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if not self.redis.usable:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count_failure(self, name: str, started_here: bool) -> None:
        client = self.redis.client
        assert client is not None
        period_ms = int(self.period_s * 1000)
        counting = client.pipeline()
        counting.incr(FAILURES + name)
        counting.pexpire(FAILURES + name, period_ms)
        counted = await self.redis.call(counting.execute())
        if counted is None:
            return
        count = int(counted[0])
        until = None
        if started_here or count >= self.failures:
            until = self._wall() + self.period_s
            starting = client.pipeline()
            starting.set(UNTIL + name, until, px=period_ms)
            starting.delete(FAILURES + name)
            await self.redis.call(starting.execute())
            log.warning("backend_cooling_down_everywhere", backend=name, failures=count, seconds=self.period_s)
        await self.redis.call(
            client.publish(self.channel, json.dumps({"backend": name, "failures": count, "until": until}))
        )

    async def _clear(self, name: str) -> None:
        client = self.redis.client
        assert client is not None
        await self.redis.call(client.delete(FAILURES + name, UNTIL + name))
        await self.redis.call(client.publish(self.channel, json.dumps({"backend": name, "cleared": True})))

    def _apply(self, message: dict[str, Any]) -> None:
        name = message["backend"]
        if message.get("cleared"):
            self._shared_failures.pop(name, None)
            self._shared_until.pop(name, None)
            return
        self._shared_failures[name] = int(message["failures"])
        if message.get("until"):
            self._shared_until[name] = float(message["until"])
            self._shared_failures.pop(name, None)

    async def listen(self, retry_s: float = 1.0) -> None:
        """Follow the channel for as long as the gateway runs; after a lost connection, reconnect, then re-read the
        shared state (what was announced while away is in the keys)."""
        if self.redis.url is None:
            return
        following = True  # until the first failure says otherwise: it is logged once per outage
        while True:
            client = aioredis.Redis.from_url(self.redis.url, socket_connect_timeout=self.redis.timeout_s)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self._reread(client)
                if not following:
                    log.info("cooldown_channel_followed_again")
                following = True
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._apply(json.loads(message["data"]))
            except (RedisError, OSError, TimeoutError, ValueError, KeyError) as exc:
                if following:
                    log.warning("cooldown_channel_lost", error=type(exc).__name__, retry_s=retry_s)
                following = False
            finally:
                await pubsub.aclose()
                await client.aclose()
            await asyncio.sleep(retry_s)

    async def _reread(self, client: aioredis.Redis) -> None:
        until: dict[str, float] = {}
        failures: dict[str, int] = {}
        async for key in client.scan_iter(match="llmrank:cooldown:*"):
            value = await client.get(key)
            if value is None:
                continue
            text = key.decode()
            if text.startswith(UNTIL):
                until[text.removeprefix(UNTIL)] = float(value)
            elif text.startswith(FAILURES):
                failures[text.removeprefix(FAILURES)] = int(value)
        self._shared_until, self._shared_failures = until, failures

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
