"""Two gateway replicas behind nginx, sharing one Redis (`make scale-test`; `.ci/run` runs it after `make test`).

Everything is real and on loopback: `llmrank serve` processes, a redis-server of the test's own (so it can be killed
and started again), nginx round-robin with deploy/nginx/llmrank.conf, the test upstream speaking OpenAI's API. The
tests run in file order and share the deployment; the last one stops replica A with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import backend_entry
from tests.support.cluster import Balancer, RedisServer, Replica
from tests.support.servers import serve
from tests.support.upstream import UpstreamControl, build_upstream

pytestmark = pytest.mark.scale

DRAIN_S, GRACE_S = 2.0, 20.0
PERF = {"X-Budget-Tier": "perf"}


@dataclass
class Deployment:
    a: Replica
    b: Replica
    balancer: Balancer
    redis: RedisServer
    control: UpstreamControl


def pool(base: str, flaky_path: str) -> list[dict[str, Any]]:
    """`flaky` ranks first at the perf tier (and is too dear for the others); on replica A its server fails."""
    return [
        backend_entry("flaky", "gpt-4-1106-preview", f"{base}/b/{flaky_path}/v1", 1e-5, quality_offset=1.0),
        backend_entry("mid", "gpt-3.5-turbo-1106", f"{base}/b/mid/v1", 1e-6),
        backend_entry("cheap", "mistralai/mistral-7b-chat", f"{base}/b/cheap/v1", 2e-7),
    ]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("scale")
    control = UpstreamControl(behaviour={"flaky_a": "error500"}, chunk_delay_s=0.1)
    store = RedisServer(folder)
    store.start()
    with serve(build_upstream(control)) as base:
        settings = {
            "LLMRANK_REDIS_URL": store.url,
            "LLMRANK_DRAIN_S": str(DRAIN_S),
            "LLMRANK_SHUTDOWN_GRACE_S": str(GRACE_S),
            "LLMRANK_COOLDOWN_FAILURES": "3",
            "LLMRANK_COOLDOWN_S": "120",
            "LLMRANK_FEEDBACK_FILE": str(folder / "feedback.jsonl"),
        }
        a = Replica("a", folder, pool(base, "flaky_a"), settings)
        b = Replica("b", folder, pool(base, "flaky_b"), settings)
        for replica in (a, b):
            replica.start()
        for replica in (a, b):
            replica.wait_ready()
        balancer = Balancer(folder, [a, b])
        balancer.start()
        try:
            yield Deployment(a, b, balancer, store, control)
        finally:
            balancer.stop()
            for replica in (a, b):
                if replica.proc is not None and replica.proc.poll() is None:
                    replica.stop()
            store.kill()


def chat(url: str, prompt: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers or {}, timeout=30)


def route(url: str, prompt: str) -> dict[str, Any]:
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    return httpx.post(f"{url}/v1/route", json=body, timeout=30).json()


def test_a_prompt_scored_on_one_replica_is_a_cache_hit_on_the_other(deployment):
    prompt = f"Which river flows through Vienna? ({time.monotonic_ns()})"
    assert route(deployment.a.url, prompt)["cache"] == "miss"
    assert route(deployment.b.url, prompt)["cache"] == "hit"


def test_feedback_through_the_balancer_is_accepted_whichever_replica_routed(deployment):
    answers = [chat(deployment.balancer.url, f"Name a prime above {n * 10}.") for n in range(8)]
    assert all(a.status_code == 200 for a in answers)
    routed_by = replicas_that_routed(deployment, [a.headers["x-request-id"] for a in answers])
    assert set(routed_by.values()) == {"a", "b"}  # round-robin used both
    for answer in answers:
        feedback = {"request_id": answer.headers["x-request-id"], "score": 0.5}
        response = httpx.post(f"{deployment.balancer.url}/v1/feedback", json=feedback, timeout=10)
        assert response.status_code == 200, response.text


def replicas_that_routed(deployment: Deployment, request_ids: list[str]) -> dict[str, str]:
    """request id → the replica ("a" or "b") that recorded its decision in the shared log."""
    pids = {f":{deployment.a.proc.pid}": "a", f":{deployment.b.proc.pid}": "b"}  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while True:
        items = httpx.get(f"{deployment.a.url}/ui/api/decisions?limit=1000", timeout=10).json()["items"]
        found = {i["request_id"]: pids[next(p for p in pids if i["replica"].endswith(p))] for i in items}
        if set(request_ids) <= set(found) or time.monotonic() > deadline:
            return {rid: found[rid] for rid in request_ids if rid in found}
        time.sleep(0.05)


def flaky_cooling_s(replica: Replica) -> float:
    backends = httpx.get(f"{replica.url}/ui/api/pool", timeout=10).json()["backends"]
    return next(b["cooldown"]["cooling_s"] for b in backends if b["name"] == "flaky")


def test_a_backend_failing_on_replica_a_is_skipped_by_replica_b(deployment):
    control = deployment.control
    for n in range(3):
        assert chat(deployment.a.url, f"Prove that {n} + 1 > {n}.", PERF).status_code == 200  # a fallback answered
    assert sum(1 for name, _ in control.received if name == "flaky_a") == 3
    deadline = time.monotonic() + 2
    while flaky_cooling_s(deployment.b) == 0:
        assert time.monotonic() < deadline, "replica B never heard that flaky cools down"
        time.sleep(0.01)
    before = sum(1 for name, _ in control.received if name == "flaky_b")
    answer = chat(deployment.b.url, "Prove that the sum of two even numbers is even.", PERF)
    assert answer.status_code == 200 and answer.headers["x-llmrank-model"] != "flaky"
    assert sum(1 for name, _ in control.received if name == "flaky_b") == before  # B never called it


async def drive(url: str, clients: int, duration_s: float, prompts: list[str]) -> tuple[int, list[str]]:
    """`clients` concurrent callers, every other request streamed, for `duration_s`: how many answers came back
    complete, and what went wrong with the others (status, exception, or a stream without all its parts)."""
    done = 0
    problems: list[str] = []
    stop_at = time.monotonic() + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def caller(n: int, client: httpx.AsyncClient) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            stream = (n + i) % 2 == 0
            body = {
                "model": "auto",
                "stream": stream,
                "messages": [{"role": "user", "content": prompts[(n + i) % len(prompts)]}],
            }
            try:
                problem = await (one_stream(client, url, body) if stream else one_answer(client, url, body))
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                done += 1
            else:
                problems.append(problem)

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(caller(n, client) for n in range(clients)))
    return done, problems


async def one_answer(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str | None:
    response = await client.post(f"{url}/v1/chat/completions", json=body)
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]}"
    content = response.json()["choices"][0]["message"]["content"]
    return None if content.startswith("answer from ") else f"unexpected answer {content!r}"


async def one_stream(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str | None:
    """A stream counts as complete with all five parts, a finish_reason and `[DONE]`, in that order."""
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return f"stream status {response.status_code}"
        events = [line.removeprefix("data: ") async for line in response.aiter_lines() if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return f"truncated stream ({len(events)} events, no [DONE])"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    finished = any(c["choices"][0].get("finish_reason") for c in chunks if c.get("choices"))
    expected = "".join(f"part{i} " for i in range(5))
    return None if text == expected and finished else f"incomplete stream {text!r}"


PROMPTS = [f"Give one fact about the number {n}." for n in range(12)]


def test_redis_killed_and_restarted_mid_run_fails_no_request_and_sharing_resumes(deployment):
    async def run() -> tuple[int, list[str]]:
        load = asyncio.create_task(drive(deployment.balancer.url, 16, 12, PROMPTS))
        await asyncio.sleep(3)
        deployment.redis.kill()
        await asyncio.sleep(4)
        deployment.redis.start()
        return await load

    done, problems = asyncio.run(run())
    print(f"\nRedis killed for 4 s under 16 clients: {done} complete answers, {len(problems)} failed")
    assert problems == [] and done > 50
    for replica in (deployment.a, deployment.b):  # each finds Redis again by itself
        deadline = time.monotonic() + 10
        while httpx.get(f"{replica.url}/readyz", timeout=5).json()["redis"] != "up":
            assert time.monotonic() < deadline, f"replica {replica.name} did not reconnect to Redis"
            time.sleep(0.1)
    prompt = f"Which sea lies east of Italy? ({time.monotonic_ns()})"
    assert route(deployment.a.url, prompt)["cache"] == "miss"
    assert route(deployment.b.url, prompt)["cache"] == "hit"  # the feature cache is shared again
    session = httpx.get(f"{deployment.b.url}/ui/api/session", timeout=5).json()
    assert session["source"] == "redis"  # and so is the decisions log


def test_sigterm_to_a_replica_under_load_loses_no_request(deployment):
    """32 clients, streaming and not, for 60 s through nginx; replica A gets SIGTERM after 20 s. Every request must
    end with a complete answer; A must keep serving while it drains, finish what it holds, and exit 0."""
    a = deployment.a
    assert a.proc is not None
    pid = a.proc.pid
    signalled: dict[str, float] = {}

    async def run() -> tuple[int, list[str]]:
        load = asyncio.create_task(drive(deployment.balancer.url, 32, 60, PROMPTS))
        await asyncio.sleep(20)
        signalled["at"] = time.time()
        a.proc.terminate()  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        signalled["readyz"] = httpx.get(f"{a.url}/readyz", timeout=5).status_code
        return await load

    done, problems = asyncio.run(run())
    exit_code = a.proc.wait(timeout=DRAIN_S + GRACE_S + 10)
    served_by_a_after = decisions_of(deployment, pid, since=signalled["at"])
    print(
        f"\nSIGTERM to A under 32 clients for 60 s: {done} complete answers, {len(problems)} failed; A answered "
        f"{len(served_by_a_after)} after the signal and exited {exit_code}"
    )
    assert problems == [], Counter(problems).most_common(5)
    assert done > 200
    assert signalled["readyz"] == 503  # out of rotation at once
    assert exit_code == 0
    assert served_by_a_after, "replica A served nothing while it drained"


def decisions_of(deployment: Deployment, pid: int, since: float) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(deployment.redis.url)
    stream: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange("llmrank:decisions")  # type: ignore[assignment]
    entries = [json.loads(fields[b"d"]) for _, fields in stream]
    client.close()
    return [e for e in entries if e["replica"].endswith(f":{pid}") and e["time"] >= since]
