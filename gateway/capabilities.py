"""Which backends can take a request at all: its prompt must fit the backend's context, the answer it asks for
(`max_tokens`) the backend's output limit, and images, audio, files or tools need a backend that accepts them.
Routing ranks only those, so a long prompt never goes to a short-context model that would reject it, whatever its
predicted value.

A backend's limits come from `config/models.yaml` where given, else from LiteLLM's model map where it knows the
model; what neither says is not checked (a server of one's own is assumed to take anything until told otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import Unfit
from gateway.registry import Backend
from gateway.schemas import ChatRequest


@dataclass(frozen=True)
class Capabilities:
    max_input_tokens: int | None = None  # None: not known, not checked
    max_output_tokens: int | None = None
    vision: bool | None = None
    tools: bool | None = None
    audio: bool | None = None
    files: bool | None = None


@dataclass(frozen=True)
class Needs:
    """What a request asks of the backend that answers it."""

    prompt_tokens: int
    output_tokens: int | None = None  # the max_tokens asked for, if any
    vision: bool = False
    tools: bool = False
    audio: bool = False
    files: bool = False


def capabilities_of(backend: Backend, known: Mapping[str, Any]) -> Capabilities:
    """The registry's limits; for those it leaves out, what LiteLLM's model map says of the backend's model
    (`known`, its entry: `upstream.model_map_entry`)."""
    return Capabilities(
        max_input_tokens=_first(backend.max_input_tokens, known.get("max_input_tokens")),
        max_output_tokens=_first(backend.max_output_tokens, known.get("max_output_tokens")),
        vision=_first(backend.supports_vision, known.get("supports_vision")),
        tools=_first(backend.supports_tools, known.get("supports_function_calling")),
        audio=_first(backend.supports_audio, known.get("supports_audio_input")),
        files=_first(backend.supports_files, known.get("supports_pdf_input")),
    )


def needs_of(chat: ChatRequest, prompt_tokens: int) -> Needs:
    """`max_completion_tokens` (or the older `max_tokens`) asks for an output limit; an `image_url`, `input_audio`
    or `file` part in any message for vision, audio or files; a tool or function definition for tools."""
    parts = {
        part.get("type") for message in chat.messages if isinstance(message.content, list) for part in message.content
    }
    return Needs(
        prompt_tokens,
        chat.max_completion_tokens or chat.max_tokens,
        vision="image_url" in parts,
        tools=bool(chat.tools or chat.functions),
        audio="input_audio" in parts,
        files="file" in parts,
    )


def unfit(backend: Backend, capabilities: Capabilities, needs: Needs) -> Unfit | None:
    """Why `backend` cannot take a request with these needs, or None when it can (as far as is known)."""
    limit = capabilities.max_input_tokens
    if limit is not None and needs.prompt_tokens > limit:
        return Unfit(backend.name, "context", f"the prompt's {needs.prompt_tokens} tokens exceed its {limit}")
    most = capabilities.max_output_tokens
    if most is not None and needs.output_tokens is not None and needs.output_tokens > most:
        return Unfit(backend.name, "output", f"max_tokens {needs.output_tokens} exceeds its {most}")
    if needs.vision and capabilities.vision is False:
        return Unfit(backend.name, "vision", "it takes no images")
    if needs.audio and capabilities.audio is False:
        return Unfit(backend.name, "audio", "it takes no audio")
    if needs.files and capabilities.files is False:
        return Unfit(backend.name, "files", "it takes no files")
    if needs.tools and capabilities.tools is False:
        return Unfit(backend.name, "tools", "it takes no tools")
    return None


def sort_out(
    backends: Sequence[Backend], capabilities: Mapping[str, Capabilities], needs: Needs
) -> tuple[list[Backend], list[Unfit]]:
    """The backends that can take the request, in order, and why each of the others cannot."""
    fitting: list[Backend] = []
    unfitting: list[Unfit] = []
    for backend in backends:
        reason = unfit(backend, capabilities[backend.name], needs)
        if reason is None:
            fitting.append(backend)
        else:
            unfitting.append(reason)
    return fitting, unfitting


def _first(configured: Any, known: Any) -> Any:
    return configured if configured is not None else known
