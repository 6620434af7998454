"""`transport: direct`: the OpenAI request forwarded without LiteLLM. The behaviour both transports share (answers,
streams, fallbacks, time-outs, secrets) is tested under both in the other modules; these are the direct call's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp.base_protocol import BaseProtocol

from gateway.direct import _sse_data
from gateway.registry import Backend
from tests.conftest import TRANSPORTS, backend_entry, ranked, standard_backends

WINO = "The trophy doesn't fit into the brown suitcase because the _ is too large.\nA) trophy\nB) suitcase\nAnswer:"


def test_direct_litellm_and_auto_backends_serve_side_by_side(gateway_factory, upstream):
    """`auto` (the default) calls an OpenAI-compatible server directly; `litellm` forces LiteLLM."""
    base, control = upstream
    url = gateway_factory(
        [
            backend_entry("fast", "gpt-3.5-turbo-1106", f"{base}/b/fast/v1", 1e-6, transport="direct"),
            backend_entry("usual", "gpt-4-1106-preview", f"{base}/b/usual/v1", 1e-5, transport="litellm"),
            backend_entry("plain", "gpt-4-1106-preview", f"{base}/b/plain/v1", 1e-5),
        ]
    )
    for name in ("fast", "usual", "plain"):
        response = httpx.post(
            f"{url}/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "hi"}]}
        )
        assert (
            response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == f"answer from {name}"
        )
    sent = dict(zip([name for name, _ in control.received], control.user_agents, strict=True))
    assert "aiohttp" in sent["fast"] and "OpenAI" not in sent["fast"]
    assert "OpenAI" in sent["usual"]  # LiteLLM calls through the OpenAI SDK
    assert "aiohttp" in sent["plain"]  # auto: an openai/<model> with an api_base is called directly
    assert control.received[0][1]["model"] == "fast"  # the served name, without LiteLLM's provider prefix


def test_auto_goes_through_litellm_for_every_other_provider():
    def backend(**fields: object) -> Backend:
        return Backend(name="b", profile="gpt-4-1106-preview", **fields)  # type: ignore[arg-type]

    assert backend(litellm_model="openai/x", api_base="http://h/v1").call_transport == "direct"
    assert backend(litellm_model="openai/gpt-4o-mini").call_transport == "litellm"  # OpenAI itself: no api_base
    assert backend(litellm_model="anthropic/claude-3-5-haiku", api_base="http://h").call_transport == "litellm"
    assert backend(litellm_model="openai/x", api_base="http://h/v1", demo=True).call_transport == "litellm"
    assert backend(litellm_model="openai/x", api_base="http://h/v1", transport="litellm").call_transport == "litellm"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_rejected_request_is_a_400_in_the_backends_words_without_the_key_and_not_retried(
    gateway_factory, upstream, transport
):
    base, control = upstream
    secret = "sk-strong-secret-42"
    backends = standard_backends(base, transport)
    backends[0]["api_key_env"] = "STRONG_KEY"
    control.behaviour["strong"] = "error400"
    url = gateway_factory(backends, environ={"STRONG_KEY": secret})
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": WINO}]},
        headers={"X-Budget-Tier": "perf"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "upstream_rejected"
    assert "backend strong rejected the request" in error["message"]
    assert "model cannot take this request" in error["message"] and secret not in error["message"]
    assert [name for name, _ in control.received] == ["strong"]


def test_a_redirect_is_a_failure_not_followed_with_the_key(gateway_factory, upstream):
    """(LiteLLM's OpenAI SDK follows a same-origin redirect; the direct call follows none.)"""
    base, control = upstream
    backends = standard_backends(base, "direct")
    backends[0]["api_key_env"] = "STRONG_KEY"
    control.behaviour["strong"] = "redirect"
    url = gateway_factory(backends, environ={"STRONG_KEY": "sk-not-for-the-trap"})
    first, second, _ = ranked(url, WINO, "perf")
    assert first == "strong"
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": WINO}]},
        headers={"X-Budget-Tier": "perf"},
    )
    assert response.status_code == 200 and response.headers["x-llmrank-model"] == second
    assert [name for name, _ in control.received] == ["strong", second]


class Pieces:
    """Stands in for aiohttp's StreamReader: the body arrives in the pieces given."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    async def iter_any(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


async def test_server_sent_events_are_read_across_pieces_and_at_any_length():
    long = b"x" * 300_000  # past aiohttp's 64 KiB line limit
    pieces = Pieces(
        b'data: {"a"',
        b": 1}\n\n: comment\nevent: message\r\ndata: " + long[:100],
        long[100:] + b"\r\n\n",
        b"data: [DONE]",
    )
    assert [data async for data in _sse_data(pieces)] == [b'{"a": 1}', long, b"[DONE]"]  # type: ignore[arg-type]


async def test_events_sent_before_a_broken_connection_come_out_before_its_error():
    """aiohttp raises a broken body's error on the next read even while it still holds data that arrived first; a
    busy gateway reading the stream late must not lose those chunks."""
    content = aiohttp.StreamReader(BaseProtocol(asyncio.get_running_loop()), 2**16, loop=asyncio.get_running_loop())
    content.feed_data(b'data: {"part": 0}\n\ndata: {"part": 1}\n\ndata: {"par')
    content.set_exception(aiohttp.ClientPayloadError("Response payload is not completed"))
    received = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for data in _sse_data(content):
            received.append(data)
    assert received == [b'{"part": 0}', b'{"part": 1}']
