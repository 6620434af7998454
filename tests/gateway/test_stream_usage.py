"""The usage a stream's backend reports: asked for on the client's behalf, and kept from a client that did not ask."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

import anyio
from hypothesis import given
from hypothesis import strategies as st

from gateway.dispatch import asks_for_usage, generated_text, usage_of, with_usage_asked_for, without_usage
from gateway.upstream import INLINE_COUNT_CHARS, PromptTokens, count_without_blocking

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
content = st.fixed_dictionaries({"choices": st.just([{"index": 0, "delta": {"content": "x"}}])})
with_null_usage = content.map(lambda c: {**c, "usage": None})  # OpenAI sends "usage": null until the last chunk
usage_only = st.just({"choices": [], "usage": USAGE})
last_with_usage = content.map(lambda c: {**c, "usage": USAGE})  # some servers put it on the last content chunk


async def _listed(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def source() -> AsyncGenerator[dict[str, Any], None]:
        for chunk in chunks:
            yield chunk

    return [chunk async for chunk in without_usage(source())]


@given(st.lists(st.one_of(content, with_null_usage, usage_only, last_with_usage), max_size=12))
def test_a_client_that_did_not_ask_gets_every_content_chunk_in_order_and_no_usage(chunks):
    seen = asyncio.run(_listed(chunks))
    assert all("usage" not in c for c in seen)
    assert seen == [{k: v for k, v in c.items() if k != "usage"} for c in chunks if c["choices"]]


def test_usage_is_added_to_the_clients_stream_options_without_dropping_theirs():
    body = {"stream": True, "stream_options": {"other": 1}}
    assert not asks_for_usage(body)
    asked = with_usage_asked_for(body)
    assert asked["stream_options"] == {"other": 1, "include_usage": True} and asks_for_usage(asked)
    assert body["stream_options"] == {"other": 1}  # the client's body is left as it was
    assert with_usage_asked_for({"stream": True, "stream_options": None})["stream_options"] == {"include_usage": True}


def test_the_text_counted_for_an_answer_is_every_choices_content_and_tool_arguments():
    chunk = {
        "choices": [
            {"delta": {"content": "a"}},
            {"delta": {"tool_calls": [{"function": {"arguments": '{"x": 1}'}}, {"function": None}]}},
            {"delta": None},
            "not a choice",
        ]
    }
    assert list(generated_text(chunk)) == ["a", '{"x": 1}']
    assert list(generated_text({"choices": [{"message": {"content": "hi"}, "index": 0}]})) == ["hi"]
    assert list(generated_text({"choices": None})) == []


def test_usage_that_counts_no_tokens_is_no_usage():
    """LiteLLM reports zeros for a backend that sent no usage; pricing that as free would hide the spend."""
    assert usage_of({"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}) is None
    assert usage_of({"usage": None}) is None and usage_of({}) is None
    assert usage_of({"usage": USAGE}) == USAGE


def test_a_long_count_runs_off_the_event_loop_and_finishes_when_its_request_is_cancelled():
    """Pricing by count reads the whole prompt (about 55 ms for 1 MB); on the event loop it would stall every other
    request. A client that leaves mid-stream cancels its request, and its answer must still be priced."""
    done: list[int] = []

    def count() -> int:
        time.sleep(0.2)
        done.append(threading.get_ident())
        return 7

    async def main() -> None:
        loop_thread = threading.get_ident()
        assert await count_without_blocking(INLINE_COUNT_CHARS, threading.get_ident) == loop_thread
        counted = []
        with anyio.move_on_after(0.05):
            counted.append(await count_without_blocking(INLINE_COUNT_CHARS + 1, count))
        assert counted == [7]  # the count came back despite the cancellation
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()  # already cancelled, as a stream's request is once its client has left
            counted.append(await count_without_blocking(INLINE_COUNT_CHARS + 1, count))
        assert counted == [7, 7]
        assert len(done) == 2 and loop_thread not in done  # in a worker thread

    asyncio.run(main())


def test_a_requests_prompt_is_counted_once_for_routing_and_pricing(monkeypatch):
    """The router counts a routed request's prompt for its cost estimate; pricing an answer that came without usage
    reuses that count instead of reading the whole prompt again."""
    from gateway import upstream

    calls: list[str] = []
    monkeypatch.setattr(upstream, "count_prompt_tokens", lambda messages, text: calls.append(text) or 11)
    prompt = PromptTokens([{"role": "user", "content": "hello"}], size=100)

    async def main() -> list[int]:
        return [await prompt.count(fallback_text="routing text"), await prompt.count()]

    assert asyncio.run(main()) == [11, 11]
    assert calls == ["routing text"]
