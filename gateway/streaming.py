"""Server-sent events as the OpenAI SDK reads them: `data: {chunk}` lines, then `data: [DONE]`.

Failures before the first byte are handled by the dispatcher (fallback or a JSON error); a failure after it
can only be reported in-band, as one error event, and the stream then ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import structlog
from starlette.responses import StreamingResponse

from gateway.dispatch import OpenStream
from gateway.errors import GatewayError, error_body

log = structlog.get_logger(__name__)


def sse(payload: Mapping[str, object]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def _events(stream: OpenStream) -> AsyncIterator[bytes]:
    try:
        yield sse(stream.first)
        async for chunk in stream.rest:
            yield sse(chunk)
    except GatewayError as exc:
        log.warning("stream_failed_midway", backend=stream.backend.name, error=exc.message)
        yield sse(error_body(exc.message, exc.type, exc.param, exc.code))
        return
    finally:
        await stream.rest.aclose()
    yield b"data: [DONE]\n\n"


def streaming_response(stream: OpenStream, headers: Mapping[str, str]) -> StreamingResponse:
    return StreamingResponse(
        _events(stream),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
    )
