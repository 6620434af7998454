"""`llmrank collect`: a backend's answers to your prompts, graded by a judge model, as rows `llmrank calibrate` reads.

Each prompt goes to the backend through the gateway's own upstream layer (the same keys from the env vars that
models.yaml names, the same transport, time-out and error handling); a judge model grades the answer from 1 to 10
with MT-Bench's single-answer rubric (Zheng et al., 2023, "Judging LLM-as-a-Judge"), and the row is written at once:

    {"key", "prompt", "quality": (grade − 1) / 9, "grade", "cost", "prompt_tokens", "completion_tokens"}

A judge reply without a parsable `[[grade]]` is asked again (JUDGE_TRIES in all); after that the row is written with
`quality: null` and `missing` saying why, which `llmrank calibrate` skips: a missing grade is never a score. Rows are
keyed by a digest of the prompt, so a second run over the same file asks only for the prompts not written yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from tqdm import tqdm

from gateway.direct import DirectUpstream
from gateway.dispatch import generated_text, usage_of
from gateway.errors import GatewayError
from gateway.registry import Backend
from gateway.upstream import Upstream, count_completion_tokens, count_prompt_tokens

log = structlog.get_logger(__name__)

JUDGE_TRIES = 3
CALL_TRIES = 3  # a retriable backend failure (5xx, 429, time-out) is tried again, with a growing pause
RETRY_PAUSE_S = 0.5
GRADE = re.compile(r"\[\[\s*(10|[1-9])(?:\.0+)?\s*\]\]")
RUBRIC = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
    "user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, "
    "accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a short "
    "explanation. Be as objective as possible. After providing your explanation, you must rate the response on a "
    'scale of 1 to 10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)


@dataclass(frozen=True)
class Transports:
    """How to call a backend: through LiteLLM or directly, as its `transport` says."""

    litellm: Upstream
    direct: DirectUpstream

    def for_backend(self, backend: Backend) -> Upstream | DirectUpstream:
        return self.direct if backend.call_transport == "direct" else self.litellm

    @classmethod
    def with_keys(cls, api_keys: Mapping[str, str], timeout_s: float) -> Transports:
        return cls(Upstream(lambda: api_keys, timeout_s), DirectUpstream(lambda: api_keys, timeout_s))


def read_prompts(path: Path) -> list[str]:
    """JSONL with a `prompt` (or `messages`' last user turn) per line, or plain text with one prompt per line."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix.lower() not in {".jsonl", ".json"}:
        return lines
    prompts = []
    for number, line in enumerate(lines, 1):
        row = json.loads(line)
        if isinstance(row.get("prompt"), str):
            prompts.append(row["prompt"])
        elif isinstance(row.get("messages"), list):
            prompts.append(next(m["content"] for m in reversed(row["messages"]) if m.get("role") == "user"))
        else:
            raise ValueError(f"{path}:{number}: a row needs a string 'prompt' or a 'messages' list")
    return prompts


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:20]


def written_keys(out: Path) -> set[str]:
    """The prompts an earlier run already wrote (a last line cut short by an interruption is ignored)."""
    if not out.exists():
        return set()
    keys = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            keys.add(json.loads(line)["key"])
        except (ValueError, KeyError):
            continue
    return keys


def parse_grade(reply: str) -> int | None:
    found = GRADE.findall(reply)
    return int(found[-1]) if found else None


async def ask(transports: Transports, backend: Backend, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The backend's answer, retrying what another try might fix."""
    for attempt in range(CALL_TRIES):
        try:
            return await transports.for_backend(backend).complete(
                backend, {"model": backend.name, "messages": messages}
            )
        except GatewayError as exc:
            if not exc.retriable or attempt == CALL_TRIES - 1:
                raise
            await asyncio.sleep(RETRY_PAUSE_S * 2**attempt)
    raise AssertionError("unreachable")


async def grade(transports: Transports, judge: Backend, prompt: str, answer: str) -> int | None:
    content = RUBRIC.format(question=prompt, answer=answer)
    for _ in range(JUDGE_TRIES):
        reply = await ask(transports, judge, [{"role": "user", "content": content}])
        found = parse_grade("".join(generated_text(reply)))
        if found is not None:
            return found
    return None


async def collect_row(transports: Transports, backend: Backend, judge: Backend, prompt: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    answer = await ask(transports, backend, messages)
    text = "".join(generated_text(answer))
    usage = usage_of(answer) or {}
    prompt_tokens = int(usage.get("prompt_tokens") or count_prompt_tokens(messages, prompt))
    completion_tokens = int(usage.get("completion_tokens") or count_completion_tokens(text))
    billed = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    found = await grade(transports, judge, prompt, text)
    row: dict[str, Any] = {
        "key": prompt_key(prompt),
        "prompt": prompt,
        "quality": None if found is None else (found - 1) / 9,
        "grade": found,
        "cost": transports.litellm.billed_usage(backend, billed),  # the gateway's own pricing
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }
    if found is None:
        row["missing"] = f"the judge gave no [[grade]] in {JUDGE_TRIES} replies"
    return row


async def collect(
    prompts: Sequence[str],
    backend: Backend,
    judge: Backend,
    transports: Transports,
    out: Path,
    concurrency: int = 4,
    progress: bool = True,
) -> dict[str, int]:
    """Write a graded row per prompt not yet in `out`, at most `concurrency` prompts in flight; returns counts."""
    done = written_keys(out)
    todo = list(dict.fromkeys(p for p in prompts if prompt_key(p) not in done))
    slots = asyncio.Semaphore(concurrency)
    counts = {"asked": len(todo), "already_written": len(prompts) - len(todo), "graded": 0, "missing": 0, "failed": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as sink, tqdm(total=len(todo), desc="collect", disable=not progress) as bar:

        async def one(prompt: str) -> None:
            async with slots:
                try:
                    row = await collect_row(transports, backend, judge, prompt)
                except GatewayError as exc:
                    counts["failed"] += 1
                    log.warning("collect_failed", backend=backend.name, error=exc.message)
                    return
                finally:
                    bar.update(1)
            counts["missing" if row["quality"] is None else "graded"] += 1
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()

        await asyncio.gather(*(one(p) for p in todo))
    await transports.direct.close()
    return counts
