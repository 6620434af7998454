"""Calls an OpenAI-compatible backend without LiteLLM (`transport: direct` in models.yaml).

The client's body goes to `{api_base}/chat/completions` as it came (the model renamed, the SDK-only `extra_*`
fields dropped) on one pooled aiohttp session, and the backend's answer comes back as it was sent but for
`model`. What LiteLLM does per call (argument handling, the OpenAI SDK, response objects, its logging and cost
hooks) is most of what a routed cache hit adds through LiteLLM (docs/BENCHMARKS.md); the dispatcher prices the
answer's usage for both transports alike. Speaks only in the gateway's own errors, as `Upstream` does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp

from gateway.errors import (
    GatewayError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    redacted,
)
from gateway.registry import Backend
from gateway.upstream import CLIENT_FIELDS_NEVER_SENT

# Statuses that say the request itself was wrong, so no other backend is tried (LiteLLM maps them alike).
REJECTED = frozenset({400, 413, 422})
FAILED_AS: Mapping[int, type[UpstreamError]] = {408: UpstreamTimeout, 429: UpstreamRateLimited}
DONE = b"[DONE]"


class DirectUpstream:
    def __init__(self, api_keys: Callable[[], Mapping[str, str]], timeout_s: float) -> None:
        self._api_keys = api_keys
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # a stream may run for long; each read (and the connect) gets the timeout instead
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _session_now(self) -> aiohttp.ClientSession:
        """One session for all calls, made on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            # no trust_env: it makes aiohttp read the proxy variables and ~/.netrc on every request (+0.4 ms)
            self._session = aiohttp.ClientSession()
        return self._session

    def reports_stream_usage(self, backend: Backend) -> bool:
        """OpenAI's API ends a stream with its usage when asked (`stream_options`), and compatible servers follow."""
        return True

    async def complete(self, backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
        """The backend's response, its `model` the backend's name."""
        try:
            async with self._post(backend, body, stream=False) as response:
                raw = await response.read()
                if not 200 <= response.status < 300:
                    raise self._status_error(backend, response.status, raw)
        except GatewayError:
            raise
        except Exception as exc:
            raise _transport_error(backend, exc) from exc
        payload = _json_object(backend, raw)
        if not isinstance(payload.get("choices"), list):
            raise UpstreamError(f"backend {backend.name} failed: the response has no choices")
        payload["model"] = backend.name
        return payload

    async def stream(self, backend: Backend, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Chunks as dicts, each as soon as the backend sends it; raises the gateway's errors, before or after the
        first chunk."""
        try:
            async with self._post(backend, body, stream=True) as response:
                if not 200 <= response.status < 300:
                    raise self._status_error(backend, response.status, await response.read())
                async for data in _sse_data(response.content):
                    if data == DONE:
                        return
                    chunk = _json_object(backend, data)
                    if "error" in chunk:
                        raise UpstreamError(f"backend {backend.name} failed mid-stream: it sent an error event")
                    chunk["model"] = backend.name
                    yield chunk
        except GatewayError:
            raise
        except Exception as exc:
            raise _transport_error(backend, exc) from exc

    def _post(self, backend: Backend, body: dict[str, Any], stream: bool) -> Any:
        assert backend.api_base is not None  # the registry requires it for transport: direct
        payload = {k: v for k, v in body.items() if k not in CLIENT_FIELDS_NEVER_SENT}
        payload |= {"model": backend.served_model, "stream": stream}
        headers = {"Authorization": f"Bearer {self._api_keys().get(backend.name, 'no-key')}"}
        return self._session_now().post(
            f"{backend.api_base.rstrip('/')}/chat/completions",
            json=payload,
            headers=headers,
            timeout=self._stream_timeout if stream else self._timeout,
            allow_redirects=False,  # a redirect would carry the key elsewhere; OpenAI's API has none
        )

    def _status_error(self, backend: Backend, status: int, raw: bytes) -> GatewayError:
        if status in REJECTED:
            detail = redacted(_error_message(raw), self._api_keys().values())
            return UpstreamBadRequest.rejected_by(backend.name, detail)
        return FAILED_AS.get(status, UpstreamError)(f"backend {backend.name} failed: status {status}")


def _transport_error(backend: Backend, exc: Exception) -> UpstreamError:
    """A failure of the connection itself: refused, reset, cut mid-body, or too slow."""
    kind = UpstreamTimeout if isinstance(exc, TimeoutError) else UpstreamError
    return kind(f"backend {backend.name} failed: {type(exc).__name__}")


def _json_object(backend: Backend, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamError(f"backend {backend.name} failed: its answer is not a JSON object")
    return value


def _error_message(raw: bytes) -> str:
    """The message of an OpenAI-shaped error body, else the body's start."""
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str):
            return message
    except (ValueError, AttributeError):
        pass
    return raw[:500].decode("utf-8", "replace")


async def _sse_data(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The `data:` payloads of a server-sent event stream, whatever the size of a line. When the backend breaks the
    connection, the events it sent before that still come out, then the error."""
    pending = b""
    try:
        async for piece in content.iter_any():
            pending += piece
            if b"\n" not in piece:
                continue
            *lines, pending = pending.split(b"\n")
            for line in _data_lines(lines):
                yield line
    except aiohttp.ClientPayloadError:
        *lines, _ = (pending + _received_before_the_break(content)).split(b"\n")
        for line in _data_lines(lines):
            yield line
        raise
    for line in _data_lines([pending]):
        yield line


def _data_lines(lines: list[bytes]) -> Iterator[bytes]:
    return (line[5:].strip() for line in lines if line.startswith(b"data:"))


def _received_before_the_break(content: aiohttp.StreamReader) -> bytes:
    """What arrived before the connection broke and was not read yet: aiohttp raises a broken body's error on the
    next read even while it holds such data, so it is taken from the buffer directly."""
    return content._read_nowait(-1)
