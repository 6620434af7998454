"""The OpenAI SDK against the gateway under uvicorn, with LiteLLM calling a real local upstream."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import litellm
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.upstream import reports_stream_usage
from tests.conftest import TRANSPORTS, backend_entry, standard_backends
from tests.support.waiting import wait_until

# A WinoGrande-style pronoun puzzle, where the bundled router trusts only GPT-4, and a greeting.
HARD = "The trophy doesn't fit into the brown suitcase because the _ is too large.\nA) trophy\nB) suitcase\nAnswer:"
EASY = "hi"


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def routed(url: str, prompt: str, tier: str) -> str:
    raw = client(url).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}], extra_headers={"X-Budget-Tier": tier}
    )
    return raw.headers["x-llmrank-model"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_routed_answer_is_openai_shaped_with_routing_headers(gateway_factory, upstream, transport):
    base, _ = upstream
    url = gateway_factory(standard_backends(base, transport))
    raw = client(url).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Write a function that sorts a list."}]
    )
    completion = raw.parse()
    chosen = raw.headers["x-llmrank-model"]
    assert completion.choices[0].message.content == f"answer from {chosen}"
    assert completion.model == chosen
    assert raw.headers["x-llmrank-tier"] == "balanced"
    assert float(raw.headers["x-llmrank-lambda"]) > 0
    assert float(raw.headers["x-llmrank-route-ms"]) > 0
    assert raw.headers["x-llmrank-cache"] == "miss"
    assert raw.headers["x-request-id"].startswith("req_")


def test_same_prompt_twice_is_a_cache_hit_stored_in_redis(gateway_factory, upstream, redis_db):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    messages = [{"role": "user", "content": "Name three prime numbers."}]
    first = client(url).chat.completions.with_raw_response.create(model="auto", messages=messages)
    second = client(url).chat.completions.with_raw_response.create(model="auto", messages=messages)
    assert (first.headers["x-llmrank-cache"], second.headers["x-llmrank-cache"]) == ("miss", "hit")
    assert wait_until(lambda: len(redis_db.keys("llmrank:features:*")) == 1)  # written after the answer


def test_a_cache_hit_scores_exactly_as_its_miss(gateway_factory, upstream, redis_db):
    """A hit in the same gateway reuses the remembered network output; one in a second gateway sharing the Redis
    database scores the stored vector again. Both must rank and score as the miss did."""
    base, _ = upstream
    first = gateway_factory(standard_backends(base))
    second = gateway_factory(standard_backends(base))

    def route(url: str) -> dict:
        body = {"model": "auto", "messages": [{"role": "user", "content": HARD}]}
        return httpx.post(f"{url}/v1/route", json=body, headers={"X-Budget-Tier": "balanced"}).json()

    miss, hit_here = route(first), route(first)
    assert wait_until(lambda: len(redis_db.keys("llmrank:features:*")) == 1)
    hit_from_redis = route(second)
    assert [d["cache"] for d in (miss, hit_here, hit_from_redis)] == ["miss", "hit", "hit"]
    assert miss["candidates"] == hit_here["candidates"] == hit_from_redis["candidates"]


def test_a_burst_of_one_new_prompt_encodes_it_once(gateway_factory, upstream, router, monkeypatch):
    """Eight clients sending the same new prompt at once (a retry storm, a shared template) wait for one encode
    instead of queueing eight behind the encoder."""
    prompt = f"Which planet has the most moons? ({uuid.uuid4().hex})"
    encoded = []
    vectorize = router.vectorize

    def slow_vectorize(prompts, narrow=False, judged=None):
        encoded.extend(p for p in prompts if p == prompt)
        time.sleep(0.5)  # keeps the first encode in flight while the burst arrives
        return vectorize(prompts, narrow=narrow, judged=judged)

    monkeypatch.setattr(router, "vectorize", slow_vectorize)
    base, _ = upstream
    url = gateway_factory(standard_backends(base))

    def ask(_: int):
        return client(url).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}]
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert encoded == [prompt]
    assert {a.headers["x-llmrank-model"] for a in answers} == {answers[0].headers["x-llmrank-model"]}
    assert all(a.headers["x-llmrank-cache"] == "miss" for a in answers)
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_feature_cache_total{result="miss"} 1.0' in metrics
    assert 'llmrank_feature_cache_total{result="shared"} 7.0' in metrics


def test_tier_changes_the_choice_for_a_hard_prompt(gateway_factory, upstream):
    """The perf tier pays for the strong model on a pronoun puzzle; the dearer the tier, never the cheaper pick."""
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    price = {b["name"]: b["input_cost_per_token"] for b in standard_backends(base)}
    picks = [routed(url, HARD, tier) for tier in ("perf", "balanced", "cost")]
    assert picks[0] == "strong" and picks[2] == "cheap"
    assert price[picks[0]] >= price[picks[1]] >= price[picks[2]]
    assert routed(url, EASY, "cost") == "cheap"


def test_tier_header_is_case_insensitive_and_unknown_tier_is_a_400(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    assert routed(url, HARD, "PERF") == "strong"
    with pytest.raises(openai.BadRequestError) as info:
        routed(url, HARD, "premium")
    error = info.value.body
    assert "perf, balanced, cost" in error["message"]
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_backend_name_passes_through_with_every_field_unchanged(gateway_factory, upstream, transport):
    base, control = upstream
    url = gateway_factory(standard_backends(base, transport))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    completion = client(url).chat.completions.create(
        model="mid",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        temperature=0.3,
        max_tokens=17,
        stop=["\n\n"],
        user="team-a",
        tools=tools,
        tool_choice="auto",
        response_format={"type": "json_object"},
        seed=5,
    )
    assert completion.model == "mid"
    name, body = control.received[-1]
    assert name == "mid"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 17 and body["stop"] == ["\n\n"]
    assert body["user"] == "team-a" and body["tools"] == tools and body["tool_choice"] == "auto"
    assert body["response_format"] == {"type": "json_object"} and body["seed"] == 5
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stream_chunks_arrive_incrementally_and_end_with_done(gateway_factory, upstream, transport):
    base, control = upstream
    control.chunk_delay_s = 0.25
    url = gateway_factory(standard_backends(base, transport))
    arrivals, text = [], ""
    started = time.monotonic()
    for chunk in client(url).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "tell me a story"}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            text += chunk.choices[0].delta.content
    assert text == "part0 part1 part2 part3 part4 "
    assert arrivals[-1] - arrivals[0] > 0.75, arrivals
    assert sse_lines(url, "auto", "x")[-1] == "data: [DONE]"


def sse_lines(url: str, model: str, content: str) -> list[str]:
    """A streamed answer's non-empty lines as sent, read without the SDK."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        return [line for line in response.iter_lines() if line]


def spend_of(url: str, backend: str) -> list[float]:
    return [
        s.value
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        for s in family.samples
        if s.name == "llmrank_spend_dollars_total" and s.labels == {"backend": backend}
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_with_usage_adds_its_billed_cost_to_the_spend(gateway_factory, upstream, transport):
    """Asked for with stream_options, a stream's last chunk carries its usage: the client gets it, and /metrics
    counts its cost (the test upstream bills 12 prompt and 7 completion tokens; cheap costs 2e-7 / 4e-7 per token)."""
    base, _ = upstream
    url = gateway_factory(standard_backends(base, transport))
    chunks = list(
        client(url).chat.completions.create(
            model="cheap",
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert spend_of(url, "cheap") == [pytest.approx(12 * 2e-7 + 7 * 4e-7)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_is_priced_even_when_the_client_did_not_ask_for_usage(gateway_factory, upstream, transport):
    """The gateway asks the backend for the stream's usage itself, counts its cost, and keeps it from a client
    that did not ask: no usage-only chunk, no usage field."""
    base, control = upstream
    url = gateway_factory(standard_backends(base, transport))
    events = [line.removeprefix("data: ") for line in sse_lines(url, "cheap", "hello")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks), chunks
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "part0 part1 part2 part3 part4 "
    assert control.received[-1][1]["stream_options"] == {"include_usage": True}
    assert spend_of(url, "cheap") == [pytest.approx(12 * 2e-7 + 7 * 4e-7)]


def counted_cost(content: str, answer: str, price: float) -> float:
    """Tokens counted with LiteLLM's tokenizer (as the gateway prices an answer that came without usage) × the test
    backends' prices (input `price`, output twice it)."""
    prompt = litellm.token_counter(model="gpt-3.5-turbo", messages=[{"role": "user", "content": content}])
    return prompt * price + litellm.token_counter(model="gpt-3.5-turbo", text=answer) * 2 * price


@pytest.mark.parametrize("prompt", ["hello", "hello there " * 500], ids=["short", "long"])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_an_answer_without_usage_is_priced_from_its_counted_tokens(
    gateway_factory, upstream, transport, stream, prompt
):
    """A server that sends no usage (none in its JSON, none in a stream even when asked) still shows on /metrics:
    its tokens are counted (a long prompt's in a worker thread)."""
    base, control = upstream
    control.behaviour["cheap"] = "no_usage"
    url = gateway_factory(standard_backends(base, transport))
    if stream:
        lines = sse_lines(url, "cheap", prompt)
        assert lines[-1] == "data: [DONE]" and all('"usage"' not in line for line in lines)
        text = "part0 part1 part2 part3 part4 "
    else:
        answer = client(url).chat.completions.create(model="cheap", messages=[{"role": "user", "content": prompt}])
        text = answer.choices[0].message.content or ""
    assert spend_of(url, "cheap") == [pytest.approx(counted_cost(prompt, text, 2e-7))]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_usage_reported_on_every_chunk_is_counted_once(gateway_factory, upstream, transport):
    """Usage is the call's so far: a server that sends it with every chunk (vLLM's continuous_usage_stats) is
    priced by the last one, not by the sum."""
    base, control = upstream
    control.behaviour["cheap"] = "running_usage"
    url = gateway_factory(standard_backends(base, transport))
    assert sse_lines(url, "cheap", "hello")[-1] == "data: [DONE]"
    assert spend_of(url, "cheap") == [pytest.approx(12 * 2e-7 + 7 * 4e-7)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_backend_with_stream_usage_off_is_not_asked_and_its_streams_are_counted(gateway_factory, upstream, transport):
    """`stream_usage: false` is for a server that rejects `stream_options`: the gateway adds none of its own."""
    base, control = upstream
    backends = [{**b, "stream_usage": b["name"] != "cheap"} for b in standard_backends(base, transport)]
    url = gateway_factory(backends)
    assert sse_lines(url, "cheap", "hello")[-1] == "data: [DONE]"
    assert "stream_options" not in control.received[-1][1]
    assert spend_of(url, "cheap") == [pytest.approx(counted_cost("hello", "part0 part1 part2 part3 part4 ", 2e-7))]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_an_anthropic_backend_is_priced_from_the_tokens_it_billed(gateway_factory, upstream, stream):
    """LiteLLM takes no `stream_options` for Anthropic, so the gateway does not ask; LiteLLM keeps the usage that
    Anthropic's stream reports back from the chunks, and the gateway prices that instead of counting tokens."""
    base, control = upstream
    claude = backend_entry("claude", "claude-instant-v1", f"{base}/b/claude", 1e-6)
    url = gateway_factory([*standard_backends(base), {**claude, "litellm_model": "anthropic/claude-3-haiku-20240307"}])
    if stream:
        lines = sse_lines(url, "claude", "hello")
        assert lines[-1] == "data: [DONE]" and all('"usage"' not in line for line in lines)
        chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello from claude "
        assert "stream_options" not in control.received[-1][1]
    else:
        answer = client(url).chat.completions.create(model="claude", messages=[{"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content == "hello from claude"
    assert control.received[-1][0] == "claude"
    assert spend_of(url, "claude") == [pytest.approx(21 * 1e-6 + 5 * 2e-6)]


def test_usage_is_asked_for_only_where_litellm_passes_it_on():
    assert reports_stream_usage("openai/my-model")
    assert not reports_stream_usage("anthropic/claude-3-haiku-20240307")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_client_streams_and_completes(gateway_factory, upstream, transport):
    base, _ = upstream
    url = gateway_factory(standard_backends(base, transport))
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as aclient:
        completion = await aclient.chat.completions.create(
            model="cheap", messages=[{"role": "user", "content": "hello"}]
        )
        assert completion.choices[0].message.content == "answer from cheap"
        parts = [
            c.choices[0].delta.content
            async for c in await aclient.chat.completions.create(
                model="cheap", messages=[{"role": "user", "content": "hello"}], stream=True
            )
            if c.choices and c.choices[0].delta.content
        ]
    assert "".join(parts) == "part0 part1 part2 part3 part4 "


def test_models_lists_alias_and_backends(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    ids = [m.id for m in client(url).models.list()]
    assert ids == ["auto", "strong", "mid", "cheap"]


def test_route_endpoint_explains_without_calling_a_backend(gateway_factory, upstream):
    base, control = upstream
    url = gateway_factory(standard_backends(base))
    response = httpx.post(
        f"{url}/v1/route",
        json={"model": "auto", "messages": [{"role": "user", "content": HARD}]},
        headers={"X-Budget-Tier": "perf"},
    )
    decision = response.json()
    assert response.status_code == 200 and control.received == []
    assert decision["model"] == "strong" and decision["tier"] == "perf"
    assert [c["backend"] for c in decision["candidates"]][0] == "strong"
    assert sorted(c["backend"] for c in decision["candidates"]) == ["cheap", "mid", "strong"]
    assert len(decision["attributions"]) == 8
    assert {"feature", "value", "attribution", "description"} <= set(decision["attributions"][0])


def test_router_scores_system_prompt_and_latest_user_turn(gateway_factory, upstream):
    """Earlier turns are context; a conversation ending in the WinoGrande puzzle routes like the puzzle alone."""
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    conversation = [
        {"role": "system", "content": "You answer riddles."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi! Ask me anything."},
        {"role": "user", "content": HARD},
    ]
    alone = httpx.post(
        f"{url}/v1/route", json={"model": "auto", "messages": [conversation[0], conversation[-1]]}
    ).json()
    full = httpx.post(f"{url}/v1/route", json={"model": "auto", "messages": conversation}).json()
    greeting = httpx.post(f"{url}/v1/route", json={"model": "auto", "messages": conversation[:2]}).json()
    assert full["cache"] == "miss" and alone["cache"] == "miss"
    assert full["model"] == alone["model"]
    utilities = {c["backend"]: c["utility"] for c in full["candidates"]}
    assert utilities != {c["backend"]: c["utility"] for c in greeting["candidates"]}


@pytest.mark.parametrize("prompt", ["x", "x y " * 2000], ids=["short", "long"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_disconnect_mid_stream_leaves_the_gateway_serving(gateway_factory, upstream, transport, prompt):
    """The answer the client left is still priced, from its counted tokens (a long prompt's in a worker thread,
    while the request is being cancelled)."""
    base, control = upstream
    control.chunk_delay_s = 0.3
    control.chunks = 20
    url = gateway_factory(standard_backends(base, transport))
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json={"model": "cheap", "stream": True, "messages": [{"role": "user", "content": prompt}]},
    ) as response:
        first = next(line for line in response.iter_lines() if line)
    assert first.startswith("data: ")
    assert wait_until(lambda: bool(spend_of(url, "cheap")))
    assert spend_of(url, "cheap")[0] > counted_cost(prompt, "", 2e-7)
    control.chunk_delay_s = 0.0
    control.chunks = 2
    again = client(url).chat.completions.create(model="cheap", messages=[{"role": "user", "content": "y"}])
    assert again.choices[0].message.content == "answer from cheap"
