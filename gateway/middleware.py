"""Pure ASGI middleware (context variables survive, unlike BaseHTTPMiddleware): request id, body limit, auth."""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections.abc import Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import GatewayError, PayloadTooLarge, Unauthorized, error_response
from gateway.metrics import Metrics

log = structlog.get_logger(__name__)


class RequestContextMiddleware:
    """One request id on every log line of a request, in the `x-request-id` header, and request metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: frozenset[str], draining: threading.Event) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints  # metric labels: known paths only, never what a client made up
        self.draining = draining  # set on SIGTERM: every answer then closes its connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
                if self.draining.is_set():  # leave no keep-alive connection for the load balancer to reuse
                    message["headers"].append((b"connection", b"close"))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self.metrics.requests.labels(endpoint, str(status)).inc()
                log.info(
                    "request",
                    method=scope["method"],
                    path=endpoint,
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )


def _client_request_id(scope: Scope) -> str | None:
    text = _header(scope, b"x-request-id")
    return text if text and len(text) <= 128 and text.isprintable() else None


class BodyLimitMiddleware:
    """413 for a body over the limit: by Content-Length before anything is read, or as soon as it is exceeded."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _reject(scope, receive, send, PayloadTooLarge(self._message()))
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"


GUARDED = ("/v1/", "/ui/api/")  # the dashboard's page and assets hold no data: only what it reads is guarded


class AuthMiddleware:
    """Bearer gateway keys on the API and the dashboard's data, compared in constant time; no keys configured means
    no auth."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys if k]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or not scope["path"].startswith(GUARDED):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization") or ""
        scheme, _, token = header.partition(" ")
        supplied = token.strip().encode() if scheme.lower() == "bearer" else b""
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(supplied, key)
        if not matched:
            await _reject(scope, receive, send, Unauthorized("invalid or missing gateway API key"))
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _reject(scope: Scope, receive: Receive, send: Send, exc: GatewayError) -> None:
    await error_response(exc)(scope, receive, send)
