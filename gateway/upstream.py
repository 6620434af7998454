"""The boundary to LiteLLM: the only module of the gateway that imports it (the router's optional feature judge,
router_model/judge.py, is the other caller). Calls, prices, token counts, error mapping."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

# LiteLLM fetches its price map over the network at import unless told not to; this is the module that imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import anyio  # noqa: E402
import litellm  # noqa: E402
import structlog  # noqa: E402
from litellm import exceptions as llx  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from gateway.errors import (
    GatewayError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotCalled,
    UpstreamRateLimited,
    UpstreamTimeout,
    redacted,
)
from gateway.registry import Backend, ConfigError

log = structlog.get_logger(__name__)

# LiteLLM prints a "Give Feedback / Get Help" banner to stdout on every failed call, between the JSON log lines; the
# gateway logs each failure itself.
litellm.suppress_debug_info = True

DEMO_REPLY = "This is a demo answer from {name}, routed by LLMRank. Configure real backends in config/models.yaml."
TOKENIZER_MODEL = "gpt-3.5-turbo"

# Most specific first: LiteLLM's exceptions subclass each other (Timeout is an APIConnectionError, …).
EXCEPTION_MAP: tuple[tuple[type[Exception], type[GatewayError]], ...] = (
    (llx.Timeout, UpstreamTimeout),
    (llx.RateLimitError, UpstreamRateLimited),
    (llx.ContextWindowExceededError, UpstreamBadRequest),
    (llx.ContentPolicyViolationError, UpstreamBadRequest),
    (llx.UnsupportedParamsError, UpstreamBadRequest),
    (llx.BadRequestError, UpstreamBadRequest),
    (llx.InvalidRequestError, UpstreamBadRequest),
    (llx.UnprocessableEntityError, UpstreamBadRequest),
    (llx.NotFoundError, UpstreamError),
    (llx.AuthenticationError, UpstreamError),
    (llx.PermissionDeniedError, UpstreamError),
    (llx.ServiceUnavailableError, UpstreamError),
    (llx.InternalServerError, UpstreamError),
    (llx.BadGatewayError, UpstreamError),
    (llx.APIConnectionError, UpstreamError),
    (llx.APIResponseValidationError, UpstreamError),
    (llx.MockException, UpstreamError),
    (llx.APIError, UpstreamError),
    # Raised only by LiteLLM's own proxy (budgets, guardrails); listed so that nothing falls to the catch-all.
    (llx.BudgetExceededError, UpstreamError),
    (llx.GuardrailRaisedException, UpstreamBadRequest),
    (llx.BlockedPiiEntityError, UpstreamBadRequest),
    (llx.SensitiveDataRouteException, UpstreamBadRequest),
    (llx.ModifyResponseException, UpstreamError),
    (llx.OpenAIError, UpstreamError),
    (Exception, UpstreamError),
)


def model_map_entry(backend: Backend) -> dict[str, Any]:
    """LiteLLM's model map on the backend's model (prices, context window, features); {} where it has none."""
    model = backend.litellm_model
    return litellm.model_cost.get(model) or litellm.model_cost.get(model.split("/", 1)[-1]) or {}


def prices(backend: Backend) -> tuple[float, float]:
    """Dollars per input and output token: the registry's, else LiteLLM's price map."""
    if backend.input_cost_per_token is not None and backend.output_cost_per_token is not None:
        return backend.input_cost_per_token, backend.output_cost_per_token
    entry = model_map_entry(backend)
    if "input_cost_per_token" not in entry:
        raise ConfigError(
            f"backend {backend.name!r}: LiteLLM has no price for {backend.litellm_model!r}; "
            "set input_cost_per_token and output_cost_per_token"
        )
    return (
        backend.input_cost_per_token if backend.input_cost_per_token is not None else entry["input_cost_per_token"],
        backend.output_cost_per_token
        if backend.output_cost_per_token is not None
        else entry.get("output_cost_per_token", 0.0),
    )


def warm_up() -> None:
    """Pay first-call costs at start-up rather than on the first request: the OpenAI SDK that LiteLLM calls imports
    its resource modules on a client's first use (0.9 s here), and the token counter loads its encoding."""
    import openai.resources  # noqa: F401

    count_prompt_tokens([{"role": "user", "content": "warm up"}], "warm up")


def count_prompt_tokens(messages: list[dict[str, Any]], text: str) -> int:
    """Prompt tokens for the cost estimate. Images count as LiteLLM's default size (never fetched); audio parts are
    left out (their tokens depend on the backend's audio encoder, and its usage prices them); messages that
    LiteLLM's counter rejects are estimated from `text` (what the router reads) rather than failing the request."""
    try:
        return int(
            litellm.token_counter(
                model=TOKENIZER_MODEL, messages=_without_audio(messages), use_default_image_token_count=True
            )
        )
    except Exception as exc:
        log.warning("prompt_tokens_estimated", error=type(exc).__name__)
        return int(litellm.token_counter(model=TOKENIZER_MODEL, text=text))


def _without_audio(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**m, "content": [p for p in m["content"] if p.get("type") != "input_audio"]}
        if isinstance(m.get("content"), list)
        else m
        for m in messages
    ]


def count_completion_tokens(completion: str) -> int:
    """An answer's tokens, for an answer whose backend reported no usage."""
    return int(litellm.token_counter(model=TOKENIZER_MODEL, text=completion)) if completion else 0


# Counting 4 KB of text takes well under a millisecond (0.3 ms), less than handing it to a worker thread and back;
# counting is linear (about 55 ms for 1 MB), and the event loop that would wait serves every other request.
INLINE_COUNT_CHARS = 4_096
T = TypeVar("T")


class PromptTokens:
    """A request's prompt tokens, counted once, when first needed: by the router's cost estimate, or to price an
    answer that came without usage. `size`: the request body's bytes, which decide whether counting leaves the
    event loop."""

    def __init__(self, messages: list[dict[str, Any]], size: int) -> None:
        self._messages = messages
        self._size = size
        self._count: int | None = None

    async def count(self, fallback_text: str = "") -> int:
        """`fallback_text` estimates messages LiteLLM's counter rejects (`count_prompt_tokens`); the first count
        is the one kept."""
        if self._count is None:
            count = functools.partial(count_prompt_tokens, self._messages, fallback_text)
            self._count = await count_without_blocking(self._size, count)
        return self._count


async def count_without_blocking(size: int, count: Callable[[], T]) -> T:
    """`count()` on the event loop when `size` (characters or bytes to count) is small, else in a worker thread.
    Shielded from cancellation: a stream whose client has left is priced while its request is being cancelled,
    and an unshielded hand-off to the thread would raise before counting."""
    if size <= INLINE_COUNT_CHARS:
        return count()
    with anyio.CancelScope(shield=True):
        counted = await anyio.to_thread.run_sync(count)
    return counted


# The request fields of OpenAI's chat-completions API. Only these may become LiteLLM arguments: LiteLLM also reads
# arguments such as api_base, api_key, mock_response or extra_headers, and a client must never set those.
OPENAI_CHAT_FIELDS = frozenset(
    {
        "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
        "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
        "user", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "functions",
        "function_call", "modalities", "audio", "prediction", "reasoning_effort", "service_tier", "store",
        "web_search_options", "safety_identifier", "prompt_cache_key", "verbosity",
    }
)  # fmt: skip
CLIENT_FIELDS_NEVER_SENT = frozenset({"extra_body", "extra_headers", "extra_query"})


@functools.lru_cache(maxsize=256)
def _supported_params(litellm_model: str) -> frozenset[str]:
    """The OpenAI parameters LiteLLM lists for this model's provider (looked up once per model)."""
    provider, _, model = litellm_model.partition("/")
    return frozenset(litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or ())


@functools.lru_cache(maxsize=256)
def _argument_fields(litellm_model: str) -> frozenset[str]:
    """The OpenAI fields LiteLLM takes as arguments for this model."""
    supported = _supported_params(litellm_model) if litellm_model.startswith("openai/") else OPENAI_CHAT_FIELDS
    return (supported & OPENAI_CHAT_FIELDS) | {"messages", "stream"}


def reports_stream_usage(litellm_model: str) -> bool:
    """Whether LiteLLM passes `stream_options` on for this model, so that a stream can end with its usage."""
    try:
        return "stream_options" in _supported_params(litellm_model)
    except Exception:  # a provider LiteLLM cannot look up: ask for nothing it might reject
        return False


def upstream_arguments(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """The client's body as LiteLLM arguments, with nothing that could redirect or alter the call.

    OpenAI fields LiteLLM supports for this model are arguments; for an OpenAI-compatible backend every other
    field travels in `extra_body` (sent upstream as JSON, never read by LiteLLM); other providers drop them.
    """
    provider = backend.litellm_model.partition("/")[0]
    allowed = _argument_fields(backend.litellm_model)
    arguments = {k: v for k, v in body.items() if k in allowed}
    extra = {k: v for k, v in body.items() if k not in allowed and k not in CLIENT_FIELDS_NEVER_SENT}
    if extra and provider == "openai":
        arguments["extra_body"] = extra
    return arguments


class Attempt:
    """One call to a backend; `sent` turns True when LiteLLM is about to hand the request to the provider."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


_ATTEMPT: ContextVar[Attempt | None] = ContextVar("llmrank_upstream_attempt", default=None)


class SendWatcher(CustomLogger):
    """LiteLLM runs its input callbacks' `log_pre_api_call` once the request is built, just before sending it (in
    a copy of the caller's context, so the Attempt object set there is the caller's own)."""

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.sent = True


SEND_WATCHER = SendWatcher()


class Upstream:
    """Calls one backend through LiteLLM and speaks only in the gateway's own errors."""

    def __init__(
        self,
        api_keys: Callable[[], Mapping[str, str]],
        timeout_s: float,
        prices: Callable[[], Mapping[str, tuple[float, float]]] | None = None,
    ) -> None:
        self._api_keys = api_keys
        self.timeout_s = timeout_s
        self._prices = prices  # the live config's backend → (input, output) dollars per token
        if SEND_WATCHER not in litellm.input_callback:
            litellm.input_callback.append(SEND_WATCHER)

    def _kwargs(self, backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **upstream_arguments(backend, body),
            "model": backend.litellm_model,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            "api_key": self._api_keys().get(backend.name, "no-key"),
        }
        if backend.api_base:
            kwargs["api_base"] = backend.api_base
        if backend.demo:
            kwargs["mock_response"] = DEMO_REPLY.format(name=backend.name)
        return kwargs

    def reports_stream_usage(self, backend: Backend) -> bool:
        return reports_stream_usage(backend.litellm_model)

    async def complete(self, backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
        """The OpenAI-shaped response, its `model` the backend's name."""
        attempt = Attempt()
        _ATTEMPT.set(attempt)
        try:
            response = await litellm.acompletion(**self._kwargs(backend, {**body, "stream": False}))
        except Exception as exc:
            raise self.translate(exc, backend, attempt.sent) from exc
        payload = response.model_dump(exclude_none=True)
        payload["model"] = backend.name
        payload.pop("_hidden_params", None)
        return payload

    async def stream(self, backend: Backend, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Chunks as dicts; raises the gateway's errors, before or after the first chunk."""
        attempt = Attempt()
        _ATTEMPT.set(attempt)
        try:
            chunks = await litellm.acompletion(**self._kwargs(backend, {**body, "stream": True}))
            async for chunk in chunks:
                payload = chunk.model_dump(exclude_none=True)
                payload["model"] = backend.name
                if "usage" not in payload and (usage := _kept_back_usage(chunk)) is not None:
                    payload["usage"] = usage
                yield payload
        except GatewayError:
            raise
        except Exception as exc:
            raise self.translate(exc, backend, attempt.sent) from exc

    def billed_usage(self, backend: Backend, usage: Mapping[str, Any]) -> float:
        """Dollars for an OpenAI `usage` object as a backend sent it: billed tokens × the backend's prices (the
        registry's, else LiteLLM's map; a count that is not a count is 0). Computed here rather than with
        `litellm.completion_cost`, which repeats LiteLLM's model lookup per call."""
        known = self._prices() if self._prices is not None else {}
        p_in, p_out = known.get(backend.name) or prices(backend)
        return _token_count(usage, "prompt_tokens") * p_in + _token_count(usage, "completion_tokens") * p_out

    def translate(self, exc: Exception, backend: Backend, sent: bool = True) -> GatewayError:
        """LiteLLM's exception → the gateway's, with a message that holds no secret. `sent`: whether LiteLLM got
        as far as sending the request; a failure before that is not the backend's."""
        target = next(ours for theirs, ours in EXCEPTION_MAP if isinstance(exc, theirs))
        status = getattr(exc, "status_code", None)
        if target is UpstreamBadRequest:
            detail = redacted(str(getattr(exc, "message", "") or exc), self._api_keys().values())
            return UpstreamBadRequest.rejected_by(backend.name, detail)
        if not sent:
            return UpstreamNotCalled(
                f"backend {backend.name}: LiteLLM could not prepare the request ({_root_cause(exc)}); nothing was sent"
            )
        suffix = f" (status {status})" if isinstance(status, int) else ""
        return target(f"backend {backend.name} failed: {type(exc).__name__}{suffix}")


def _kept_back_usage(chunk: Any) -> dict[str, Any] | None:
    """The usage LiteLLM holds back from a stream's last chunk when it was not asked for (`stream_options`): the
    provider's own figures where it sends them (Anthropic's `message_delta`, for one), else zeros."""
    hidden = getattr(chunk, "_hidden_params", None)
    usage = hidden.get("usage") if isinstance(hidden, dict) else None
    return usage.model_dump(exclude_none=True) if isinstance(usage, litellm.Usage) else None


def _token_count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


def _root_cause(exc: BaseException) -> str:
    """The type of the innermost exception LiteLLM wrapped (a type name only: messages may echo the request)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return type(exc).__name__
