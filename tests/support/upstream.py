"""A real OpenAI-speaking HTTP server for tests, with per-backend behaviour the test controls.

Backends reach it at `{base}/b/<name>/v1`; `behaviour[name]` picks what that backend does: "ok", "error500",
"error429", "error400" (its message echoes the caller's key, as some servers' do), "redirect" (a 307 to the
"trap" backend), "hang", "invalid_json", "close_midstream", "no_usage" (no usage in answers, and none in streams
even when asked for, as some OpenAI-compatible servers do), "running_usage" (a stream asked for usage carries the
usage so far on every chunk, then the total); `content[name]` is what that backend answers, or a function of the
request body that gives it (default "answer from <name>"); `answer_delay_s[name]` holds that backend's answers back;
`chunk_delay_s` spaces streamed chunks; every request body is recorded in `received`, and its authorization and
user-agent headers in `authorization` and `user_agents`; `most_in_flight[name]` is the most requests a backend held
at once before answering.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class UpstreamControl:
    behaviour: dict[str, str] = field(default_factory=dict)
    content: dict[str, str | Callable[[dict[str, Any]], str]] = field(default_factory=dict)
    answer_delay_s: dict[str, float] = field(default_factory=dict)
    chunk_delay_s: float = 0.0
    chunks: int = 5
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    user_agents: list[str | None] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)


def completion(name: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"upstream-{name}",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }


def chunk(name: str, text: str, finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": f"upstream-{name}",
        "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def build_upstream(control: UpstreamControl) -> Starlette:
    async def chat(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.json()
        control.received.append((name, body))
        control.authorization.append(request.headers.get("authorization"))
        control.user_agents.append(request.headers.get("user-agent"))
        control.in_flight[name] += 1
        control.most_in_flight[name] = max(control.most_in_flight[name], control.in_flight[name])
        try:
            await asyncio.sleep(control.answer_delay_s.get(name, 0.0))
            return await respond(name, body, request)
        finally:
            control.in_flight[name] -= 1

    async def respond(name: str, body: dict[str, Any], request: Request) -> Response:
        mode = control.behaviour.get(name, "ok")
        if mode == "redirect":
            return Response(status_code=307, headers={"location": str(request.url).replace(f"/b/{name}/", "/b/trap/")})
        if mode == "error400":
            message = f"model cannot take this request (key {request.headers.get('authorization')})"
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=400)
        if mode == "error500":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
        if mode == "error429":
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}}, status_code=429)
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "invalid_json":
            return Response(b"{not json", media_type="application/json")
        if body.get("stream"):
            usage = mode != "no_usage" and bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(stream(name, mode, usage), media_type="text/event-stream")
        content = control.content.get(name, f"answer from {name}")
        answer = completion(name, content(body) if callable(content) else content)
        if mode == "no_usage":
            del answer["usage"]
        return JSONResponse(answer)

    async def stream(name: str, mode: str, usage: bool):  # type: ignore[no-untyped-def]
        for i in range(control.chunks):
            if mode == "close_midstream" and i == 2:
                raise RuntimeError("upstream closed the stream")
            if mode == "running_usage" and usage:  # usage so far on every chunk, as vLLM's continuous_usage_stats
                running = {"prompt_tokens": 12, "completion_tokens": i + 1, "total_tokens": 13 + i}
                part = json.loads(chunk(name, f"part{i} ").decode().removeprefix("data: ")) | {"usage": running}
                yield f"data: {json.dumps(part)}\n\n".encode()
            else:
                yield chunk(name, f"part{i} ")
            await asyncio.sleep(control.chunk_delay_s)
        yield chunk(name, "", finish="stop")
        if usage:  # as OpenAI does: one more chunk, no choices, the whole call's usage
            final = json.loads(chunk(name, "").decode().removeprefix("data: "))
            final |= {"choices": [], "usage": completion(name, "")["usage"]}
            yield f"data: {json.dumps(final)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def messages(request: Request) -> Response:
        """Anthropic's Messages API, for backends LiteLLM calls as `anthropic/…`: 21 input and 5 output tokens."""
        name = request.path_params["name"]
        body = await request.json()
        control.received.append((name, body))
        if not body.get("stream"):
            return JSONResponse(anthropic_message(body["model"], ANTHROPIC_TEXT, stop_reason="end_turn"))
        return StreamingResponse(anthropic_stream(body["model"]), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/b/{name}/v1/chat/completions", chat, methods=["POST"]),
            Route("/b/{name}/v1/messages", messages, methods=["POST"]),
        ]
    )


ANTHROPIC_TEXT = "hello from claude"
ANTHROPIC_USAGE = {"input_tokens": 21, "output_tokens": 5}


def anthropic_message(model: str, text: str, stop_reason: str | None) -> dict[str, Any]:
    content = [{"type": "text", "text": text}] if text else []
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "usage": ANTHROPIC_USAGE}  # fmt: skip


async def anthropic_stream(model: str):  # type: ignore[no-untyped-def]
    """Anthropic's event stream: input tokens come with message_start, output tokens with message_delta."""

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    yield event(
        "message_start",
        {"message": {**anthropic_message(model, "", None), "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}},
    )
    yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    for word in ANTHROPIC_TEXT.split(" "):
        yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word + " "}})
    yield event("content_block_stop", {"index": 0})
    yield event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
    yield event("message_stop", {})
