"""The usage a stream's backend reports: asked for on the client's behalf, and kept from a client that did not ask."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.dispatch import asks_for_usage, generated_text, usage_of, with_usage_asked_for, without_usage

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
