"""Property tests over the request schema: every answer is a valid completion or an OpenAI-shaped 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import standard_backends

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "function", "developer", "wizard", ""])
CONTENT = (
    st.text(max_size=200)
    | st.none()
    | st.integers()
    | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": st.text(max_size=40)}))
)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES | st.integers(), "content": CONTENT},
    optional={
        "name": st.text(max_size=10),
        "tool_calls": JSON,
        "tool_call_id": st.text(max_size=10),
        "function_call": JSON,
    },
)
REQUEST = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "cheap", "mid", "nope"]) | st.text(max_size=10) | st.integers()},
    optional={
        "messages": st.lists(MESSAGE, max_size=5) | JSON,
        "max_tokens": st.integers(-(10**12), 10**12) | st.text(max_size=5) | st.none(),
        "stream": st.booleans() | st.text(max_size=3),
        "temperature": st.floats(-5, 5) | st.text(max_size=3),
        "n": st.integers(-3, 40),
        "tools": JSON,
        "unknown_field": JSON,
    },
)

VALID_REQUEST = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["auto", "cheap", "mid"]),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=300)}
            ),
            min_size=1,
            max_size=4,
        ),
    },
    optional={
        "max_tokens": st.integers(1, 10**9),
        "temperature": st.floats(0, 2),
        "stream": st.booleans(),
        "stop": st.lists(st.text(max_size=5), max_size=3),
        "user": st.text(max_size=20),
        "unknown_field": JSON,
    },
)


def assert_valid_answer(response: httpx.Response) -> None:
    assert response.status_code == 200 or 400 <= response.status_code < 500, (response.status_code, response.text)
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.rstrip().endswith("data: [DONE]")
        else:
            assert response.json()["choices"]
        return
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
    assert "Traceback" not in response.text


# Reproducible runs that may take their time: the gateway, not hypothesis, sets the pace.
FUZZ = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True}


@pytest.fixture()
def client(gateway_factory, upstream) -> Iterator[httpx.Client]:
    """A client of a gateway in front of the standard test backends."""
    base, _ = upstream
    with httpx.Client(base_url=gateway_factory(standard_backends(base)), timeout=60) as http:
        yield http


def test_random_request_shaped_bodies_get_an_answer_or_a_4xx(client):

    @settings(max_examples=120, **FUZZ)
    @given(REQUEST)
    def check(body: dict) -> None:
        response = client.post("/v1/chat/completions", json=body, headers={"X-Budget-Tier": "cost"})
        assert_valid_answer(response)

    check()


def test_random_json_and_bytes_get_a_4xx(client):

    @settings(max_examples=80, **FUZZ)
    @given(JSON | st.binary(max_size=200).map(lambda b: b))
    def check(body: object) -> None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500
        assert_valid_answer(response)

    check()


def test_extreme_but_valid_requests_are_answered(client):
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(10_000)]
    assert_valid_answer(client.post("/v1/chat/completions", json={"model": "auto", "messages": many}))
    huge = [{"role": "user", "content": "word " * 200_000}]
    assert_valid_answer(client.post("/v1/chat/completions", json={"model": "auto", "messages": huge}))
    empty = [{"role": "user", "content": ""}]
    assert_valid_answer(client.post("/v1/chat/completions", json={"model": "auto", "messages": empty}))
    tool_turns = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert_valid_answer(client.post("/v1/chat/completions", json={"model": "auto", "messages": tool_turns}))


def test_deep_nesting_is_a_400_not_a_crash(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    deep = b'{"model": "auto", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = httpx.post(f"{url}/v1/chat/completions", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert httpx.get(f"{url}/healthz").status_code == 200
