"""Prompt text helpers: RouterBench's stringified lists, few-shot splitting, CJK detection."""

from __future__ import annotations

import ast
import re

_ANSWERED_EXAMPLE = re.compile(r"(Answer|A)\s*:\s*\n?\s*\S{1,40}\s*$", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def prompt_text(raw: object) -> str:
    """RouterBench stores prompts as the repr of a list of strings; join its parts with newlines."""
    if isinstance(raw, list | tuple):
        return "\n".join(str(p) for p in raw)
    text = str(raw)
    if text.startswith("[") and text.endswith("]"):
        try:
            parts = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(parts, list):
            return "\n".join(str(p) for p in parts)
    return text


def split_fewshot(text: str) -> tuple[int, str]:
    """Split a prompt into (number of solved examples, the query after them).

    Few-shot prompts put solved examples first and the real question last; the question is what decides which
    model succeeds, so it is what the router embeds and parses.
    """
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    last_example = -1
    for i, block in enumerate(blocks[:-1]):
        if _ANSWERED_EXAMPLE.search(block):
            last_example = i
    if last_example < 0:
        return 0, text.strip()
    n_examples = sum(1 for b in blocks[: last_example + 1] if _ANSWERED_EXAMPLE.search(b))
    return n_examples, "\n\n".join(blocks[last_example + 1 :])


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def embedding_text(prompt: str) -> str:
    """What the sentence encoder sees: the question, without the solved examples in front of it."""
    return split_fewshot(prompt)[1]
