"""The decisions log: capped in Redis and in memory, never failing when Redis is absent or down; its statistics."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway.cache import RedisLink
from gateway.decision_stats import BUCKETS, quality_by_backend, spend_and_traffic
from gateway.decisions import FEEDBACK_STREAM, STREAM, DecisionLog, Summary
from tests.conftest import REDIS_URL, standard_backends
from tests.support.servers import free_port


def record(n: int, **extra: object) -> dict[str, object]:
    fields = {"time": float(n), "tier": "cost", "backend": "cheap", "outcome": "ok", "predicted_quality": 0.5}
    return (
        {"request_id": f"req_{n}", "n": n, "estimated_cost": 0.1, "cost": 0.1, "route_ms": 1, "upstream_ms": 2}
        | fields
        | extra
    )


@pytest.mark.parametrize("with_redis", [True, False])
async def test_summaries_read_only_what_is_new_and_keep_the_cap(redis_db, with_redis):
    log = DecisionLog(RedisLink(REDIS_URL if with_redis else None), max_entries=30)
    for n in range(20):
        log.record(record(n))
    await log.flush()
    _, first = await log.summaries()
    for n in range(20, 45):
        log.record(record(n, tier="perf" if n % 2 else "cost"))
    await log.flush()
    source, summaries = await log.summaries()
    assert source == ("redis" if with_redis else "memory")
    assert [s.request_id for s in first] == [f"req_{n}" for n in range(20)]
    assert [s.request_id for s in summaries] == [f"req_{n}" for n in range(15, 45)]
    perf = [s.id for s in reversed(summaries) if s.tier == "perf"][:3]
    assert [r["n"] for r in await log.get_many(perf)] == [43, 41, 39]


async def test_the_redis_stream_is_kept_at_its_cap_exactly(redis_db):
    log = DecisionLog(RedisLink(REDIS_URL), max_entries=50)
    for n in range(120):
        log.record(record(n))
        if n % 40 == 39:
            await log.flush()
    await log.flush()
    assert redis_db.xlen(STREAM) == 50
    source, items = await log.recent(100)
    assert source == "redis" and [i["n"] for i in items] == list(range(119, 69, -1))
    assert await log.get(items[3]["id"]) == items[3]


async def test_without_redis_the_ring_buffer_keeps_the_newest():
    log = DecisionLog(RedisLink(None), max_entries=10)
    for n in range(25):
        log.record(record(n))
    await log.flush()
    source, items = await log.recent(100)
    assert source == "memory" and [i["n"] for i in items] == list(range(24, 14, -1))
    assert await log.get(items[0]["id"]) == items[0]


async def test_redis_down_moves_records_to_memory_without_raising():
    log = DecisionLog(RedisLink(f"redis://127.0.0.1:{free_port()}/0"), max_entries=10)
    log.record(record(1))
    log.record_feedback("req_1", "cheap", 0.5)
    await log.flush()
    source, items = await log.recent(10)
    assert source == "memory" and [i["n"] for i in items] == [1]
    assert await log.feedback() == {"req_1": 0.5}


async def test_feedback_keeps_each_requests_latest_score(redis_db):
    log = DecisionLog(RedisLink(REDIS_URL), max_entries=10)
    log.record_feedback("req_1", "cheap", 0.2)
    log.record_feedback("req_2", "mid", 1.0)
    log.record_feedback("req_1", "cheap", 0.9)
    await log.flush()
    assert await log.feedback() == {"req_1": 0.9, "req_2": 1.0}
    assert redis_db.xlen(FEEDBACK_STREAM) == 3


async def test_pages_looking_at_once_see_each_decision_once(redis_db):
    log = DecisionLog(RedisLink(REDIS_URL), max_entries=5000)
    for n in range(3000):
        log.record(record(n))
    await log.flush()
    looks = await asyncio.gather(*(log.summaries() for _ in range(4)))
    assert all(len(summaries) == 3000 for _, summaries in looks)
    _, again = await log.summaries()
    assert len({s.id for s in again}) == len(again) == 3000


def decision(t: float, backend: str | None, tier: str, cost: float | None, estimated: float, q: float = 0.5):
    outcome = "ok" if backend else "error"
    upstream_ms = None if backend is None else 10.0
    return Summary(f"{t}-0", t, f"req_{t}", tier, backend, outcome, q, estimated, cost, 1.0, upstream_ms)


def test_spend_and_traffic_by_hand():
    now = 10_000.0
    records = [
        decision(now - 7200, "mid", "balanced", 9.0, 9.0),  # outside the 1 h window
        decision(now - 3500, "cheap", "cost", 0.1, 0.2),  # first bucket
        decision(now - 10, "cheap", "cost", 0.3, 0.2),  # last bucket
        decision(now - 5, "mid", "perf", 1.0, 2.0),
        decision(now - 1, None, "perf", None, 2.0),  # no backend answered
    ]
    stats = spend_and_traffic(records, 3600, now)
    assert stats["requests"] == 4 and stats["outcomes"] == {"ok": 3, "error": 1}
    cheap, mid = stats["backends"]["cheap"], stats["backends"]["mid"]
    assert cheap["cost"] == pytest.approx(0.4) and cheap["estimated_cost"] == pytest.approx(0.4)
    assert cheap["cumulative_cost"][0] == pytest.approx(0.1) and cheap["cumulative_cost"][-1] == pytest.approx(0.4)
    assert cheap["requests_per_bucket"][0] == 1 and cheap["requests_per_bucket"][BUCKETS - 1] == 1
    assert mid["requests"] == 1 and mid["share"] == pytest.approx(1 / 3)
    assert stats["by_tier"] == {"cost": {"cheap": 2}, "perf": {"mid": 1, "(failed)": 1}}
    assert stats["latency_ms"]["upstream"] == {"p50": 10.0, "p95": 10.0}


def test_quality_by_backend_pairs_predictions_with_the_scores_they_got():
    records = [
        decision(1, "cheap", "cost", 0.1, 0.1, q=0.8),
        decision(2, "cheap", "cost", 0.1, 0.1, q=0.6),
        decision(3, "mid", "perf", 0.1, 0.1, q=0.9),
    ]
    [cheap, mid] = quality_by_backend(records, {"req_1": 0.2})
    assert (cheap["answers"], cheap["mean_predicted_quality"], cheap["feedback"]) == (2, pytest.approx(0.7), 1)
    assert cheap["mean_feedback_score"] == 0.2 and cheap["gap"] == pytest.approx(0.2 - 0.8)
    assert (mid["feedback"], mid["gap"]) == (0, None)


def wait_for_items(url: str, count: int) -> dict:
    deadline = time.monotonic() + 10
    while True:
        body = httpx.get(f"{url}/ui/api/decisions").json()
        if len(body["items"]) >= count or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_with_redis_down_the_gateway_logs_decisions_in_memory_and_says_so(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    for tier in ("perf", "cost"):
        body = {"model": "auto", "messages": [{"role": "user", "content": "Name a prime."}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers={"X-Budget-Tier": tier}).status_code == 200
    listed = wait_for_items(url, 2)
    assert listed["source"] == "memory" and [i["tier"] for i in listed["items"]] == ["cost", "perf"]


def test_a_stream_the_client_left_mid_way_is_logged_with_its_cost(gateway_factory, upstream):
    base, control = upstream
    control.chunk_delay_s = 0.2  # five chunks: a second of stream, of which the client reads one
    url = gateway_factory(standard_backends(base))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Tell a long story."}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_lines())
    deadline = time.monotonic() + 10
    while not (items := [i for i in wait_for_items(url, 1)["items"] if i["request_id"] == request_id]):
        assert time.monotonic() < deadline, "the abandoned stream was never logged"
        time.sleep(0.05)
    assert items[0]["stream"] is True and items[0]["cost"] > 0 and items[0]["outcome"] == "ok"


def test_with_the_log_off_its_endpoints_say_so_in_openais_shape(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base), decisions_log=False)
    response = httpx.get(f"{url}/ui/api/decisions")
    assert response.status_code == 404 and response.json()["error"]["code"] == "decisions_log_off"
    assert httpx.get(f"{url}/ui/api/pool").status_code == 200  # the pool does not need the log


def test_bad_query_parameters_get_openai_shaped_errors(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    for path, param in (
        ("decisions?limit=0", "limit"),
        ("decisions?limit=abc", "limit"),
        ("summary?window=2d", "window"),
    ):
        error = httpx.get(f"{url}/ui/api/{path}").json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param
    assert httpx.get(f"{url}/ui/api/decisions/0-0").json()["error"]["code"] == "decision_not_found"
