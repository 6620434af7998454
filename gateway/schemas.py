"""The chat-completions request: what the gateway checks, with every other OpenAI field passed through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from gateway.errors import InvalidRequest

ROUTING_ALIASES = ("auto",)
M = TypeVar("M", bound=BaseModel)
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# Content parts whose payload LiteLLM reads (to count tokens and build the upstream call): checked, so that a
# malformed one is the client's 400 and not a failed backend.
PART_PAYLOADS: dict[str, tuple[Callable[[object], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "a string `text`"),
    "image_url": (
        lambda v: isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("url"), str)),
        "`image_url`: a URL string or an object with a string `url`",
    ),
    "input_audio": (
        lambda v: isinstance(v, dict) and isinstance(v.get("data"), str) and isinstance(v.get("format"), str),
        "`input_audio`: an object with a string `data` (base64) and a string `format`",
    ),
    "file": (
        lambda v: isinstance(v, dict) and any(isinstance(v.get(k), str) for k in ("file_data", "file_id")),
        "`file`: an object with a string `file_data` or `file_id`",
    ),
}


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: StrictStr
    arguments: StrictStr


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    function: FunctionCall


class Message(BaseModel):
    """Typed where a malformed value would break token counting or the upstream's parser: a 400 names the field."""

    model_config = ConfigDict(extra="allow")

    role: StrictStr
    content: str | list[dict[str, Any]] | None = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}")
        return role

    @field_validator("content")
    @classmethod
    def _parts_carry_their_payload(cls, content: str | list[dict[str, Any]] | None) -> object:
        for i, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type")
            if not isinstance(kind, str):
                raise ValueError(f"part {i} needs a string `type`")
            check, needs = PART_PAYLOADS.get(kind, (lambda _: True, ""))
            if not check(part.get(kind)):
                raise ValueError(f"part {i} of type {kind!r} needs {needs}")
        return content

    def text(self) -> str:
        """The message's text; content parts that are not text are skipped."""
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return ""


class ChatRequest(BaseModel):
    """What routing needs and what LiteLLM reads is typed; every other field is passed on (see
    `upstream.upstream_arguments`)."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool = False
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    n: StrictInt | None = Field(None, ge=1, le=16)
    # OpenAI's ranges: out of them, the client gets the 400 naming the field before a prompt is scored or sent
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    presence_penalty: float | None = Field(None, ge=-2, le=2, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, ge=-2, le=2, allow_inf_nan=False)
    seed: StrictInt | None = None
    # LiteLLM reads these while building the call; malformed, it raised there and every backend counted a failure
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None

    def passthrough(self) -> dict[str, Any]:
        """The body to send upstream: every field the client sent except `model`."""
        body = self.model_dump(exclude_unset=True, exclude={"model"}, mode="json")
        body["messages"] = self.wire_messages()
        return body

    def wire_messages(self) -> list[dict[str, Any]]:
        """The messages as the client sent them: what is sent upstream and what its prompt tokens are counted on."""
        return [m.model_dump(exclude_unset=True, mode="json") for m in self.messages]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(min_length=1, max_length=128)
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


def parse_chat_request(raw: bytes) -> ChatRequest:
    return _parse(raw, ChatRequest)


def parse_feedback(raw: bytes) -> FeedbackRequest:
    return _parse(raw, FeedbackRequest)


def _parse(raw: bytes, model: type[M]) -> M:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = ".".join(str(p) for p in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{param}: {message}" if param else message, param=param) from exc
