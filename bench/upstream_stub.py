"""An OpenAI-compatible upstream that answers at once with a fixed small response (plain and streamed).

    python -m bench.upstream_stub --port 9100

Raw ASGI, so that the stub itself adds as little as possible to what the benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence

import uvicorn

ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
}
CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
]


# as OpenAI's API does when asked with stream_options.include_usage: one more chunk, no choices, the usage
USAGE_CHUNK = {"choices": [], "usage": ANSWER["usage"]}


def _chunk_bytes(chunks: Sequence[Mapping[str, object]]) -> bytes:
    events = []
    for chunk in chunks:
        payload = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "stub", **chunk}
        events.append(f"data: {json.dumps(payload)}\n\n")
    return ("".join(events) + "data: [DONE]\n\n").encode()


STREAM_BODY = _chunk_bytes(CHUNKS)
STREAM_BODY_WITH_USAGE = _chunk_bytes([*CHUNKS, USAGE_CHUNK])


def _is_true(body: bytes, key: bytes) -> bool:
    """Whether the JSON body sets `key` to true, read without parsing it (the stub adds as little as it can)."""
    return b'"%s": true' % key in body or b'"%s":true' % key in body


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if _is_true(body, b"stream"):
        payload = STREAM_BODY_WITH_USAGE if _is_true(body, b"include_usage") else STREAM_BODY
        content_type = b"text/event-stream"
    else:
        payload, content_type = json.dumps({**ANSWER, "created": int(time.time())}).encode(), b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
