"""The routing engine on its own: one encode per prompt in flight, whoever waits for it; as many different prompts
in flight as it has scoring slots; a prompt scored alone may use every thread, one scored beside others one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.cache import FeatureCache, RedisLink
from gateway.metrics import Metrics
from gateway.routing import RoutingEngine


def engine_with_gated_encoder(router, monkeypatch, failures: int = 0, slots: int = 1, narrows: list | None = None):
    """An engine whose encoder waits for `gate` to open and fails its first `failures` calls; `calls` gets each
    call's prompt and `narrows`, when given, whether it was told to encode on one thread."""
    gate = threading.Event()
    calls: list[str] = []
    narrows = [] if narrows is None else narrows
    vectorize = router.vectorize

    def gated(prompts, narrow=False, judged=None):
        calls.append(prompts[0])
        narrows.append(narrow)
        gate.wait(10)
        if len(calls) <= failures:
            raise RuntimeError("encoder failed")
        return vectorize(prompts, narrow=narrow, judged=judged)

    monkeypatch.setattr(router, "vectorize", gated)
    cache = FeatureCache(RedisLink(None), ttl_s=60, max_entries=100)
    return RoutingEngine(router, cache, Metrics(), slots=slots), gate, calls


async def test_a_caller_that_goes_away_does_not_cancel_the_encode_for_the_others(router, monkeypatch):
    engine, gate, calls = engine_with_gated_encoder(router, monkeypatch)
    first = asyncio.create_task(engine.vector_for("Which gas do plants absorb?"))
    second = asyncio.create_task(engine.vector_for("Which gas do plants absorb?"))
    await asyncio.sleep(0.1)
    first.cancel()
    gate.set()
    _, predicted, cache = await second
    assert first.cancelled() and cache == "miss" and calls == ["Which gas do plants absorb?"]
    _, again, cache = await engine.vector_for("Which gas do plants absorb?")
    assert cache == "hit" and (again == predicted).all()


async def test_a_failed_encode_fails_its_waiters_and_the_next_request_tries_again(router, monkeypatch):
    engine, gate, calls = engine_with_gated_encoder(router, monkeypatch, failures=1)
    waiters = [asyncio.create_task(engine.vector_for("Name a prime number.")) for _ in range(3)]
    await asyncio.sleep(0.1)
    gate.set()
    for waiter in waiters:
        with pytest.raises(RuntimeError, match="encoder failed"):
            await waiter
    _, _, cache = await engine.vector_for("Name a prime number.")
    assert cache == "miss" and len(calls) == 2


@pytest.mark.parametrize("slots", [1, 2])
async def test_different_prompts_are_scored_at_once_up_to_the_slot_count(router, monkeypatch, slots):
    engine, gate, calls = engine_with_gated_encoder(router, monkeypatch, slots=slots)
    prompts = ["Name a prime number.", "Which gas do plants absorb?", "Sort a list in Python."]
    tasks = [asyncio.create_task(engine.vector_for(p)) for p in prompts]
    await asyncio.sleep(0.3)
    assert len(calls) == slots  # the rest wait for a slot
    gate.set()
    assert [cache for _, _, cache in await asyncio.gather(*tasks)] == ["miss"] * 3
    assert sorted(calls) == sorted(prompts)


async def test_a_miss_scored_alone_uses_every_thread_and_misses_beside_others_use_one(router, monkeypatch):
    narrows: list[bool] = []
    engine, gate, _ = engine_with_gated_encoder(router, monkeypatch, slots=2, narrows=narrows)
    gate.set()
    await engine.vector_for("Name a prime number.")
    gate.clear()
    tasks = [asyncio.create_task(engine.vector_for(p)) for p in ("Which gas do plants absorb?", "Sort a list.")]
    await asyncio.sleep(0.3)
    gate.set()
    await asyncio.gather(*tasks)
    # alone; then of the two, the first to start was alone and the other beside it (worker threads log in any order)
    assert narrows[0] is False and sorted(narrows[1:]) == [False, True]
