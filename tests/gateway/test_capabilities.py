"""A routed request goes only to backends that can take it: its prompt within their context, its images, audio,
files and tools to backends that accept them; with none, a 400 in OpenAI's shape and no backend called."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.capabilities import Capabilities, Needs, Unfit, capabilities_of, needs_of, sort_out
from gateway.errors import NoBackendFits
from gateway.registry import Backend
from gateway.schemas import parse_chat_request
from tests.conftest import standard_backends

# A WinoGrande-style puzzle, where the bundled router's perf tier trusts only GPT-4 ("strong"); 33 prompt tokens.
HARD = "The trophy doesn't fit into the brown suitcase because the _ is too large.\nA) trophy\nB) suitcase\nAnswer:"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
PDF = {"type": "file", "file": {"filename": "note.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def backend(name: str = "b", **limits: object) -> Backend:
    return Backend.model_validate({"name": name, "litellm_model": f"openai/{name}", "profile": "p", **limits})


def test_the_registry_says_first_then_litellms_model_map_and_what_neither_says_is_not_checked():
    known = {"max_input_tokens": 128_000, "max_output_tokens": 16_384, "supports_vision": True}
    assert capabilities_of(backend(max_input_tokens=8192, supports_vision=False), known) == Capabilities(
        max_input_tokens=8192, max_output_tokens=16_384, vision=False
    )
    heard = {"supports_audio_input": True, "supports_pdf_input": False}
    assert capabilities_of(backend(), heard) == Capabilities(audio=True, files=False)
    assert capabilities_of(backend(supports_audio=False, supports_files=True), heard) == Capabilities(
        audio=False, files=True
    )
    assert capabilities_of(backend(), {}) == Capabilities()
    assert sort_out([backend()], {"b": Capabilities()}, Needs(10**6, vision=True, tools=True)) == ([backend()], [])


def test_a_request_needs_its_max_tokens_vision_audio_or_files_for_its_parts_and_tools_for_tools_or_functions():
    def needs(**body: object) -> Needs:
        return needs_of(parse_chat_request(json.dumps({"model": "auto", **body}).encode()), 5)

    text = [{"role": "user", "content": "hi"}]
    assert needs(messages=text) == Needs(5)
    assert needs(messages=[{"role": "user", "content": [{"type": "text", "text": "what is this?"}, IMAGE]}]).vision
    assert needs(messages=[{"role": "user", "content": [AUDIO]}]) == Needs(5, audio=True)
    assert needs(messages=[*text, {"role": "user", "content": [{"type": "text", "text": "sum up"}, PDF]}]) == Needs(
        5, files=True
    )
    assert needs(messages=text, tools=[TOOL]) == Needs(5, tools=True)
    assert needs(messages=text, functions=[TOOL["function"]]).tools
    assert needs(messages=text, max_tokens=300) == Needs(5, 300)
    assert needs(messages=text, max_tokens=300, max_completion_tokens=200).output_tokens == 200


def test_each_left_out_backend_says_why_and_openais_context_code_is_used_only_when_length_is_every_reason():
    short, blind = backend("short", max_input_tokens=100), backend("blind", supports_vision=False)
    caps = {"short": Capabilities(100), "blind": Capabilities(vision=False)}
    fitting, unfit = sort_out([short, blind], caps, Needs(101, vision=True))
    assert fitting == [] and [(u.backend, u.reason) for u in unfit] == [("short", "context"), ("blind", "vision")]
    assert "short: the prompt's 101 tokens exceed its 100" in NoBackendFits.because(unfit).message
    assert NoBackendFits.because(unfit).code == "no_backend_fits"
    assert NoBackendFits.because(unfit[:1]).code == "context_length_exceeded"
    tools_only = NoBackendFits.because([Unfit("short", "tools", "it takes no tools")])
    assert (tools_only.code, tools_only.param) == ("no_backend_fits", "tools")
    assert sort_out([short, blind], caps, Needs(100)) == ([short, blind], [])
    assert sort_out([short], caps, Needs(5, tools=True)) == ([short], [])
    terse = backend("terse", max_output_tokens=1000)
    _, [long_answer] = sort_out([terse], {"terse": Capabilities(max_output_tokens=1000)}, Needs(5, 2000))
    assert (long_answer.reason, long_answer.detail) == ("output", "max_tokens 2000 exceeds its 1000")
    assert NoBackendFits.because([long_answer]).param == "max_tokens"
    deaf, paperless = backend("deaf", supports_audio=False), backend("paperless", supports_files=False)
    caps = {"deaf": Capabilities(audio=False), "paperless": Capabilities(files=False)}
    heard = sort_out([deaf, paperless], caps, Needs(5, audio=True))
    assert heard == ([paperless], [Unfit("deaf", "audio", "it takes no audio")])
    read = sort_out([deaf, paperless], caps, Needs(5, files=True))
    assert read == ([deaf], [Unfit("paperless", "files", "it takes no files")])


limits = st.builds(
    Capabilities,
    max_input_tokens=st.none() | st.integers(1, 200),
    max_output_tokens=st.none() | st.integers(1, 200),
    vision=st.none() | st.booleans(),
    tools=st.none() | st.booleans(),
    audio=st.none() | st.booleans(),
    files=st.none() | st.booleans(),
)
requests = st.builds(
    Needs,
    st.integers(0, 250),
    st.none() | st.integers(1, 250),
    vision=st.booleans(),
    tools=st.booleans(),
    audio=st.booleans(),
    files=st.booleans(),
)


@given(st.lists(limits, min_size=1, max_size=6), requests)
def test_a_backend_is_left_out_exactly_when_a_limit_it_states_is_broken_and_the_rest_keep_their_order(caps, needs):
    backends = [backend(f"b{i}") for i in range(len(caps))]
    fitting, unfit = sort_out(backends, {b.name: c for b, c in zip(backends, caps, strict=True)}, needs)
    for b, c in zip(backends, caps, strict=True):
        broken = (
            (c.max_input_tokens is not None and needs.prompt_tokens > c.max_input_tokens)
            or (None not in (c.max_output_tokens, needs.output_tokens) and needs.output_tokens > c.max_output_tokens)
            or (needs.vision and c.vision is False)
            or (needs.tools and c.tools is False)
            or (needs.audio and c.audio is False)
            or (needs.files and c.files is False)
        )
        assert (b in fitting) is not broken
    assert fitting == [b for b in backends if b in fitting]
    assert sorted([b.name for b in fitting] + [u.backend for u in unfit]) == sorted(b.name for b in backends)


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)


def routed_to(url: str, tier: str, **request: Any) -> str:
    """The backend that answered a routed request."""
    raw = client(url).chat.completions.with_raw_response.create(
        model="auto", extra_headers={"X-Budget-Tier": tier}, **request
    )
    return raw.headers["x-llmrank-model"]


def with_limits(backends: list[dict], **limits: dict) -> list[dict]:
    return [{**b, **limits.get(b["name"], {})} for b in backends]


def test_a_prompt_longer_than_a_backends_context_goes_to_one_that_takes_it(gateway_factory, upstream):
    base, control = upstream
    url = gateway_factory(with_limits(standard_backends(base), strong={"max_input_tokens": 50}))

    def ask(prompt: str) -> str:
        return routed_to(url, "perf", messages=[{"role": "user", "content": prompt}])

    assert ask(HARD) == "strong"
    longer = f"{HARD}\n{HARD}"
    assert ask(longer) != "strong" and [name for name, _ in control.received].count("strong") == 1
    explained = httpx.post(f"{url}/v1/route", json={"model": "auto", "messages": [{"role": "user", "content": longer}]})
    assert explained.json()["unfit"] == [
        {"backend": "strong", "reason": "context", "detail": "the prompt's 59 tokens exceed its 50"}
    ]
    assert "strong" not in [c["backend"] for c in explained.json()["candidates"]]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_unfit_backends_total{backend="strong",reason="context"} 2.0' in metrics


def test_a_longer_answer_than_a_backend_gives_goes_to_one_that_gives_it(gateway_factory, upstream):
    base, control = upstream
    url = gateway_factory(with_limits(standard_backends(base), strong={"max_output_tokens": 1000}))

    def ask(**limit: Any) -> str:
        return routed_to(url, "perf", messages=[{"role": "user", "content": HARD}], **limit)

    assert ask(max_tokens=1000) == "strong"
    assert ask(max_tokens=2000) != "strong" and [name for name, _ in control.received].count("strong") == 1


def test_images_and_tools_go_only_to_backends_that_take_them(gateway_factory, upstream):
    base, control = upstream
    url = gateway_factory(
        with_limits(
            standard_backends(base),
            strong={"supports_vision": True, "supports_tools": True},
            mid={"supports_vision": False},
            cheap={"supports_vision": False, "supports_tools": False},
        )
    )

    def cheapest(**request: Any) -> str:
        return routed_to(url, "cost", **request)

    pictured = [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}, IMAGE]}]
    assert cheapest(messages=pictured) == "strong"
    assert cheapest(messages=[{"role": "user", "content": "hi"}], tools=[TOOL]) == "mid"
    assert [name for name, _ in control.received] == ["strong", "mid"]


def test_audio_and_files_go_only_to_backends_that_take_them(gateway_factory, upstream):
    base, control = upstream
    url = gateway_factory(
        with_limits(
            standard_backends(base),
            strong={"supports_audio": True, "supports_files": True},
            mid={"supports_audio": False, "supports_files": True},
            cheap={"supports_audio": False, "supports_files": False},
        )
    )

    def cheapest(*parts: dict) -> str:
        return routed_to(
            url,
            "cost",
            messages=[{"role": "user", "content": [{"type": "text", "text": "What does this say?"}, *parts]}],
        )

    assert cheapest() == "cheap"
    assert cheapest(PDF) == "mid"
    assert cheapest(AUDIO) == "strong"
    assert [name for name, _ in control.received] == ["cheap", "mid", "strong"]
    sent = control.received[-1][1]["messages"][0]["content"]
    assert sent[1] == AUDIO  # the part reaches the backend as the client sent it


def test_a_request_no_backend_can_take_is_refused_in_openais_shape_and_calls_none(gateway_factory, upstream):
    base, control = upstream
    limits = {name: {"max_input_tokens": 20} for name in ("strong", "mid", "cheap")}
    url = gateway_factory(with_limits(standard_backends(base), **limits))
    with pytest.raises(openai.BadRequestError) as refused:
        client(url).chat.completions.create(model="auto", messages=[{"role": "user", "content": HARD}])
    assert refused.value.code == "context_length_exceeded" and refused.value.param == "messages"
    assert "strong: the prompt's 33 tokens exceed its 20" in refused.value.message
    assert control.received == []
    named = client(url).chat.completions.create(model="cheap", messages=[{"role": "user", "content": HARD}])
    assert named.choices[0].message.content == "answer from cheap"  # a backend asked for by name is not checked
