"""Every error the gateway returns, built here in one OpenAI shape: {"error": {message, type, param, code}}.

GatewayError
├── InvalidRequest        400  invalid_request_error   malformed JSON, bad fields, unknown tier
│   └── NoBackendFits     400  invalid_request_error   no backend takes its length, max_tokens, media or tools
├── Unauthorized          401  authentication_error    missing or wrong gateway key
├── NotFound              404  not_found_error         unknown model, unknown route
├── PayloadTooLarge       413  invalid_request_error   body over the configured limit
├── UpstreamRateLimited   429  rate_limit_error        every candidate backend said 429
├── UpstreamError         502  api_error               backends failed (5xx, refused, bad answer)
│   └── UpstreamNotCalled 500  api_error               LiteLLM failed before sending anything
├── UpstreamTimeout       504  timeout_error           backends did not answer in time
└── ServiceUnavailable    503  service_unavailable     router not loaded yet
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = structlog.get_logger(__name__)

Reason = Literal["context", "output", "vision", "audio", "files", "tools"]


@dataclass(frozen=True)
class Unfit:
    """Why a backend cannot take a request (`capabilities.sort_out`); the error builder reports it, so it lives here,
    below everything that imports errors."""

    backend: str
    reason: Reason
    detail: str


class GatewayError(Exception):
    status = 500
    type = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    @property
    def retriable(self) -> bool:
        """Whether another backend might succeed where this one failed."""
        return False

    @property
    def blames_backend(self) -> bool:
        """Whether the failure says something about the backend's health (and so counts towards its cool-down)."""
        return self.retriable


class InvalidRequest(GatewayError):
    status, type = 400, "invalid_request_error"


class NoBackendFits(InvalidRequest):
    """Routing found no enabled backend that can take the request (`capabilities.sort_out`)."""

    @classmethod
    def because(cls, unfit: Sequence[Unfit]) -> NoBackendFits:
        """OpenAI's code for a prompt too long for the model where that is every backend's reason: clients that
        shorten and retry on it then work through the gateway too."""
        kinds = {u.reason for u in unfit}
        sole = kinds.pop() if len(kinds) == 1 else None
        code = "context_length_exceeded" if sole == "context" else "no_backend_fits"
        param = {"tools": "tools", "output": "max_tokens"}.get(sole or "", "messages")
        reasons = "; ".join(f"{u.backend}: {u.detail}" for u in unfit)
        return cls(f"no backend can take this request ({reasons})", param=param, code=code)


class Unauthorized(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class NotFound(GatewayError):
    status, type = 404, "not_found_error"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class UpstreamError(GatewayError):
    status, type, code = 502, "api_error", "upstream_error"

    @property
    def retriable(self) -> bool:
        return True


class UpstreamNotCalled(UpstreamError):
    """LiteLLM raised while preparing the call, before anything was sent. Another backend (another provider's
    translation) may still work, but this one's health is unknown, so it never counts towards a cool-down: one
    client's odd request must not sideline a backend for everyone."""

    status, type, code = 500, "api_error", "upstream_not_called"

    @property
    def blames_backend(self) -> bool:
        return False


class UpstreamRateLimited(UpstreamError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class UpstreamTimeout(UpstreamError):
    status, type, code = 504, "timeout_error", "upstream_timeout"


class UpstreamBadRequest(GatewayError):
    """The backend rejected the request itself (its 4xx): passed on, not retried elsewhere."""

    status, type = 400, "invalid_request_error"

    @classmethod
    def rejected_by(cls, backend: str, detail: str) -> UpstreamBadRequest:
        """`detail`: the backend's own words, already free of secrets (see `redacted`)."""
        return cls(f"backend {backend} rejected the request: {detail[:500]}", code="upstream_rejected")


class ServiceUnavailable(GatewayError):
    status, type, code = 503, "service_unavailable", "not_ready"


def redacted(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***: for messages that may echo a request's key."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(exc: GatewayError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), exc.status, headers)


async def handle_gateway_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return error_response(exc, getattr(exc, "headers", None))


async def handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    mapped: dict[int, type[GatewayError]] = {404: NotFound, 405: InvalidRequest, 413: PayloadTooLarge}
    cls = mapped.get(exc.status_code, InvalidRequest)
    body = error_body(str(exc.detail), cls.type)
    return JSONResponse(body, exc.status_code)


async def handle_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return JSONResponse(error_body("internal error", "api_error", None, "internal_error"), 500)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
