"""Which text of a conversation the router scores, and the cache key for it."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

from gateway.schemas import Message

MAX_ROUTING_CHARS = 16_000


def routing_text(messages: Sequence[Message], max_chars: int = MAX_ROUTING_CHARS) -> str:
    """The system prompt and the latest user turn, with earlier turns in front as context.

    The encoder keeps the end of the text, so the latest turn goes last and the oldest context is the first
    to fall outside its window; `max_chars` bounds the work on very long conversations.
    """
    system = [m.text() for m in messages if m.role in ("system", "developer")]
    user_turns = [i for i, m in enumerate(messages) if m.role == "user"]
    last = user_turns[-1] if user_turns else len(messages) - 1
    tail = "\n\n".join([*system, messages[last].text()]).strip()[-max_chars:]
    context: list[str] = []
    budget = max_chars - len(tail)
    for message in reversed(messages[:last]):
        if message.role in ("system", "developer"):
            continue
        text = message.text()
        if not text or budget - len(text) < 0:
            break
        context.insert(0, text)
        budget -= len(text) + 2
    return "\n\n".join([*context, tail]).strip()


def cache_key(router_version: str, text: str) -> str:
    normalised = "\n".join(line.rstrip() for line in unicodedata.normalize("NFC", text).strip().splitlines())
    digest = hashlib.sha256(f"{router_version}\x00{normalised}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"llmrank:features:{digest}"
