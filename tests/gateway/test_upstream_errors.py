"""LiteLLM's exceptions are translated at one boundary, completely, into the gateway's own."""

from __future__ import annotations

import inspect

import pytest
from litellm import exceptions as llx
from structlog.testing import capture_logs

from gateway.errors import UpstreamBadRequest, UpstreamError, UpstreamRateLimited, UpstreamTimeout
from gateway.registry import Backend
from gateway.upstream import EXCEPTION_MAP, Upstream, count_prompt_tokens

BACKEND = Backend(name="b", litellm_model="openai/b", profile="p")


def test_every_litellm_exception_has_an_explicit_mapping():
    """A new LiteLLM exception must be placed on purpose, not land in the catch-all."""
    classes = [c for _, c in inspect.getmembers(llx, inspect.isclass) if issubclass(c, Exception)]
    unmapped = [c.__name__ for c in classes if next(k for k, _ in EXCEPTION_MAP if issubclass(c, k)) is Exception]
    assert classes and unmapped == []


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        (llx.Timeout("slow", model="b", llm_provider="openai"), UpstreamTimeout, 504),
        (llx.RateLimitError("busy", llm_provider="openai", model="b"), UpstreamRateLimited, 429),
        (llx.InternalServerError("boom", llm_provider="openai", model="b"), UpstreamError, 502),
        (llx.APIConnectionError("refused", llm_provider="openai", model="b"), UpstreamError, 502),
        (llx.BadRequestError("context too long", model="b", llm_provider="openai"), UpstreamBadRequest, 400),
        (RuntimeError("anything else"), UpstreamError, 502),
    ],
)
def test_translation_keeps_the_kind_and_status(exc, expected, status):
    translated = Upstream(lambda: {}, 1.0).translate(exc, BACKEND)
    assert type(translated) is expected and translated.status == status
    assert "backend b" in translated.message


def test_translated_messages_never_carry_the_key():
    upstream = Upstream(lambda: {"b": "sk-secret-abc"}, 1.0)
    exc = llx.BadRequestError("invalid key sk-secret-abc for model", model="b", llm_provider="openai")
    assert "sk-secret-abc" not in upstream.translate(exc, BACKEND).message


def test_prompt_tokens_fall_back_to_the_routing_text_when_litellm_cannot_count_the_messages():
    plain = [{"role": "user", "content": "Which planet is the largest?"}]
    assert count_prompt_tokens(plain, "unused") > 5
    # LiteLLM's counter raises on a tool call without `function` (the schema rejects it; this is the second line)
    odd = [{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}]
    with capture_logs() as logs:
        estimated = count_prompt_tokens(odd, "one two three four five six seven eight")
    assert estimated == 8
    assert [entry["event"] for entry in logs] == ["prompt_tokens_estimated"]


def test_an_audio_part_is_left_out_of_the_prompt_tokens_rather_than_making_the_count_an_estimate():
    text = {"type": "text", "text": "Which planet is the largest?"}
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
    with capture_logs() as logs:
        counted = count_prompt_tokens([{"role": "user", "content": [text, audio]}], "unused")
    assert counted == count_prompt_tokens([{"role": "user", "content": [text]}], "unused")
    assert logs == []
