"""Cool-downs shared through Redis: a backend that keeps failing on one gateway is skipped by another that shares its
Redis, without failing there first; with Redis unreachable each gateway still cools down on its own."""

from __future__ import annotations

import time

import httpx
import redis

from tests.conftest import standard_backends
from tests.support.servers import free_port

PROMPT = {"model": "auto", "messages": [{"role": "user", "content": "Prove that 17 is prime."}]}
PERF = {"X-Budget-Tier": "perf"}


def cooling_s(url: str, backend: str) -> float:
    pool = httpx.get(f"{url}/ui/api/pool").json()["backends"]
    return next(b["cooldown"]["cooling_s"] for b in pool if b["name"] == backend)


def wait_cooling(url: str, backend: str, within_s: float = 2.0) -> float:
    """Seconds until `url` reports `backend` cooling down."""
    started = time.monotonic()
    while cooling_s(url, backend) == 0:
        assert time.monotonic() - started < within_s, f"{url} never heard that {backend} cools down"
        time.sleep(0.01)
    return time.monotonic() - started


def failing_first(base: str) -> list[dict]:
    strong, mid, cheap = standard_backends(base)
    return [strong | {"quality_offset": 1.0}, mid, cheap]  # strong ranks first at the perf tier


def test_a_backend_failing_on_one_gateway_is_skipped_by_another(gateway_factory, upstream, redis_db):
    base, control = upstream
    control.behaviour["strong"] = "error500"
    a = gateway_factory(failing_first(base), cooldown_failures=3, cooldown_s=30)
    b = gateway_factory(failing_first(base), cooldown_failures=3, cooldown_s=30)
    for _ in range(3):
        assert (
            httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF).status_code == 200
        )  # a fallback answers
    assert [name for name, _ in control.received].count("strong") == 3
    wait_cooling(b, "strong")
    control.received.clear()
    answer = httpx.post(f"{b}/v1/chat/completions", json=PROMPT, headers=PERF)
    assert answer.status_code == 200 and answer.headers["x-llmrank-model"] != "strong"
    assert [name for name, _ in control.received] == [answer.headers["x-llmrank-model"]]  # b never tried strong
    assert redis_db.pttl("llmrank:cooldown:until:strong") > 25_000


def test_failures_on_two_gateways_add_up(gateway_factory, upstream, redis_db):
    base, control = upstream
    control.behaviour["strong"] = "error500"
    a = gateway_factory(failing_first(base), cooldown_failures=2, cooldown_s=30)
    b = gateway_factory(failing_first(base), cooldown_failures=2, cooldown_s=30)
    httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF)
    httpx.post(
        f"{b}/v1/chat/completions", json=PROMPT, headers=PERF
    )  # one failure each: the second reaches the threshold
    wait_cooling(a, "strong")
    wait_cooling(b, "strong")


def test_a_success_clears_the_shared_cool_down_state(gateway_factory, upstream, redis_db):
    base, control = upstream
    control.behaviour["strong"] = "error500"
    a = gateway_factory(failing_first(base), cooldown_failures=3, cooldown_s=30)
    httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF)
    deadline = time.monotonic() + 2
    while redis_db.get("llmrank:cooldown:failures:strong") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    control.behaviour.pop("strong")
    assert httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF).headers["x-llmrank-model"] == "strong"
    deadline = time.monotonic() + 2
    while redis_db.exists("llmrank:cooldown:failures:strong"):
        assert time.monotonic() < deadline, "the success did not clear the shared count"
        time.sleep(0.01)


def test_with_redis_unreachable_a_gateway_still_cools_down_on_its_own(gateway_factory, upstream):
    base, control = upstream
    control.behaviour["strong"] = "error500"
    a = gateway_factory(
        failing_first(base), cooldown_failures=2, cooldown_s=30, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    for _ in range(2):
        assert httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF).status_code == 200
    assert cooling_s(a, "strong") > 0


def test_gateways_on_another_database_of_the_same_redis_do_not_hear_these_cool_downs(gateway_factory, upstream):
    """Pub/sub channels are server-wide: the channel carries the database number, which keeps deployments apart."""
    base, control = upstream
    control.behaviour["strong"] = "error500"
    other_db = redis.Redis.from_url("redis://127.0.0.1:6379/10")
    try:
        a = gateway_factory(failing_first(base), cooldown_failures=1, cooldown_s=30)
        elsewhere = gateway_factory(failing_first(base), cooldown_s=30, redis_url="redis://127.0.0.1:6379/10")
        same = gateway_factory(failing_first(base), cooldown_s=30)
        httpx.post(f"{a}/v1/chat/completions", json=PROMPT, headers=PERF)
        wait_cooling(same, "strong")
        assert cooling_s(elsewhere, "strong") == 0
    finally:
        other_db.flushdb()
        other_db.close()
