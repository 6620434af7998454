"""The backend call with fallbacks: try candidates in utility order until one answers, each through its transport
(LiteLLM, or the direct OpenAI-compatible call)."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from gateway.cooldown import Cooldowns
from gateway.direct import DirectUpstream
from gateway.errors import GatewayError, UpstreamError
from gateway.metrics import Metrics
from gateway.registry import Backend
from gateway.upstream import PromptTokens, Upstream, count_completion_tokens, count_without_blocking

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    backend: Backend
    payload: dict[str, Any]


@dataclass
class OpenStream:
    backend: Backend
    first: dict[str, Any]
    rest: AsyncGenerator[dict[str, Any], None]


@dataclass(frozen=True)
class Attempt:
    backend: str
    status: int  # 200, or the error's HTTP status
    ms: float  # to the answer, or to a stream's first chunk
    error: str | None = None  # the error's code or type


@dataclass
class CallTrace:
    """What one request's backend calls did, filled in as they happen; the decisions log reads it afterwards."""

    attempts: list[Attempt] = field(default_factory=list)
    cost: float | None = None  # the answer's, once it is priced (a stream's when it ends)
    usage: dict[str, Any] | None = None


class Transport(Protocol):
    def reports_stream_usage(self, backend: Backend) -> bool: ...

    async def complete(self, backend: Backend, body: dict[str, Any]) -> dict[str, Any]: ...

    def stream(self, backend: Backend, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]: ...


class Dispatcher:
    def __init__(self, upstream: Upstream, direct: DirectUpstream, metrics: Metrics, cooldowns: Cooldowns) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.cooldowns = cooldowns
        self._transports: dict[str, Transport] = {"litellm": upstream, "direct": direct}

    async def complete(
        self, candidates: Sequence[Backend], body: dict[str, Any], prompt: PromptTokens, trace: CallTrace | None = None
    ) -> Answer:
        trace = CallTrace() if trace is None else trace
        errors: list[GatewayError] = []
        for backend in candidates:
            started = time.perf_counter()
            try:
                payload = await self._transports[backend.call_transport].complete(backend, body)
            except GatewayError as exc:
                self._failed(backend, exc, started, trace)
                if not exc.retriable:
                    raise
                errors.append(exc)
                continue
            self._answered(backend, "ok", started, trace)
            cost = await self._priced(backend, prompt, usage_of(payload), "".join(generated_text(payload)), trace)
            log.info("upstream_answered", backend=backend.name, cost=cost, tried=len(errors) + 1)
            return Answer(backend, payload)  # its cost is in `trace`
        raise _all_failed(errors)

    async def open_stream(
        self, candidates: Sequence[Backend], body: dict[str, Any], prompt: PromptTokens, trace: CallTrace | None = None
    ) -> OpenStream:
        """Wait for the first chunk so that early failures can still fall back or become a JSON error.

        A stream's cost is known only from the usage its backend reports at the end, so the gateway asks for it
        wherever the backend can report it (and `stream_usage` is not turned off), and passes usage on only to a
        client that asked for it. A stream that ends without usage is priced from its counted tokens.
        """
        trace = CallTrace() if trace is None else trace
        errors: list[GatewayError] = []
        client_wants_usage = asks_for_usage(body)
        for backend in candidates:
            started = time.perf_counter()
            transport = self._transports[backend.call_transport]
            ask = not client_wants_usage and backend.stream_usage and transport.reports_stream_usage(backend)
            chunks = self._metered(
                backend, prompt, transport.stream(backend, with_usage_asked_for(body) if ask else body), trace
            )
            if not client_wants_usage:
                chunks = without_usage(chunks)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                exc: GatewayError = UpstreamError(f"backend {backend.name} returned an empty stream")
            except GatewayError as raised:
                exc = raised
            else:
                self._answered(backend, "first_chunk", started, trace)
                return OpenStream(backend, first, chunks)
            await chunks.aclose()
            self._failed(backend, exc, started, trace)
            if not exc.retriable:
                raise exc
            errors.append(exc)
        raise _all_failed(errors)

    async def _metered(
        self, backend: Backend, prompt: PromptTokens, chunks: AsyncGenerator[dict[str, Any], None], trace: CallTrace
    ) -> AsyncGenerator[dict[str, Any], None]:
        """A stream, its cost added to the spend once it is over: from the last usage a chunk reported (usage is the
        call's so far, so a backend that reports it on every chunk is counted once), else (a backend that sends
        none, a client that left before it came) from the tokens counted in it."""
        received = False
        usage: dict[str, Any] | None = None
        streamed: list[str] = []
        try:
            async for chunk in chunks:
                received = True
                usage = usage_of(chunk) or usage
                if usage is None:
                    streamed.extend(generated_text(chunk))
                yield chunk
        finally:
            await chunks.aclose()
            if received:
                await self._priced(backend, prompt, usage, "".join(streamed), trace)

    async def _priced(
        self, backend: Backend, prompt: PromptTokens, usage: dict[str, Any] | None, text: str, trace: CallTrace
    ) -> float:
        """Adds an answer's cost to the spend and returns it: the tokens its usage bills × the backend's prices, or,
        for an answer that came without usage, its tokens (the request's prompt and the answer's `text`) counted with
        LiteLLM's tokenizer."""
        if usage is None:
            usage = await self._counted_usage(backend, prompt, text)
        cost = self.upstream.billed_usage(backend, usage)
        self.metrics.spend.labels(backend.name).inc(cost)
        trace.cost, trace.usage = cost, usage
        return cost

    async def _counted_usage(self, backend: Backend, prompt: PromptTokens, text: str) -> dict[str, int]:
        """The answer's tokens counted, off the event loop when there are many of them (a routed request's prompt
        was counted already, for the router's cost estimate)."""
        usage = {
            "prompt_tokens": await prompt.count(),
            "completion_tokens": await count_without_blocking(
                len(text), functools.partial(count_completion_tokens, text)
            ),
        }
        self.metrics.priced_by_count.labels(backend.name).inc()
        log.info("answer_priced_by_count", backend=backend.name, **usage)
        return usage

    def _answered(self, backend: Backend, outcome: str, started: float, trace: CallTrace) -> None:
        seconds = time.perf_counter() - started
        self.metrics.upstream_seconds.labels(backend.name, outcome).observe(seconds)
        trace.attempts.append(Attempt(backend.name, 200, seconds * 1000))
        self.cooldowns.succeeded(backend.name)

    def _failed(self, backend: Backend, exc: GatewayError, started: float, trace: CallTrace) -> None:
        seconds = time.perf_counter() - started
        self.metrics.upstream_seconds.labels(backend.name, "error").observe(seconds)
        trace.attempts.append(Attempt(backend.name, exc.status, seconds * 1000, exc.code or exc.type))
        self.metrics.fallbacks.labels(backend.name, exc.code or exc.type).inc()
        log.warning("upstream_failed", backend=backend.name, status=exc.status, error=exc.message)
        if exc.blames_backend and self.cooldowns.failed(backend.name):
            self.metrics.cooldowns.labels(backend.name).inc()


def usage_of(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The answer's usage, if it counts any tokens (LiteLLM reports zeros where a backend sent none)."""
    usage = answer.get("usage")
    if not isinstance(usage, dict) or not any(usage.get(k) for k in ("prompt_tokens", "completion_tokens")):
        return None
    return usage


def generated_text(answer: dict[str, Any]) -> Iterator[str]:
    """The text an answer (or a stream's chunk) holds: every choice's content and tool-call arguments."""
    for choice in answer.get("choices") or ():
        part = (choice.get("delta") or choice.get("message")) if isinstance(choice, dict) else None
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("content"), str):
            yield part["content"]
        for call in part.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield function["arguments"]


def asks_for_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def with_usage_asked_for(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("stream_options")
    return {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


async def without_usage(chunks: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
    """A stream as a client that did not ask for usage gets it: no usage-only chunk, no `usage` field."""
    try:
        async for chunk in chunks:
            if "usage" not in chunk:
                yield chunk
            elif chunk.get("choices"):
                yield {k: v for k, v in chunk.items() if k != "usage"}
    finally:
        await chunks.aclose()


def _all_failed(errors: list[GatewayError]) -> GatewayError:
    """One error for the client: the last failure's kind, naming every backend tried."""
    if not errors:
        return UpstreamError("no backend available")
    last = errors[-1]
    summary = "; ".join(e.message for e in errors)
    return type(last)(f"all {len(errors)} backend(s) failed: {summary}", code=last.code)
