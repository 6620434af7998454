"""Optional LLM-judged features: a cheap LLM, called through LiteLLM, reads a prompt and gives the judged rule
features (task type, knowledge needs, output format, complexity, routing hints) as one JSON object.

The paper derives its features this way; the default path parses them instead and makes no network call. A
checkpoint trained with a judge names its model (`llmrank train --judge-model`) and is served with that judge, since
its network learnt that judge's values. Measured features (lengths, counts, language) are always parsed. A judged
row holds NaN where the judge gave no usable value, and the parser's value stands in there
(`Featurizer.transform`); a judge that fails gives a row of NaN.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from router_model.parsers import RULE_FEATURES, ParsedPrompt

JUDGED = tuple(f for f in RULE_FEATURES if not f.measured)
JUDGED_COLUMNS = {f.name: i for i, f in enumerate(RULE_FEATURES) if not f.measured}
QUESTION_CHARS = 4000  # the end of the question after any few-shot examples: what the judge reads
REPLY_TOKENS = 600

INSTRUCTIONS = (
    "You label prompts for an LLM router. Do not answer the prompt. Read it and reply with one JSON object whose "
    "keys are exactly the feature names below, each with a number from 0 (not at all) to 1 (fully):\n"
    + "\n".join(f"- {f.name}: {f.description}" for f in JUDGED)
)


class JudgeError(Exception):
    """The judge gave no usable answer (unreachable, an error status, or a reply that is not the JSON asked for)."""


@dataclass(frozen=True)
class JudgeConnection:
    """How to reach a checkpoint's judge model; the model itself is the checkpoint's."""

    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    retries: int = 0  # LiteLLM's retries per call; offline jobs (judge_many) ask for more
    concurrency: int = 8  # calls in flight at once, in judge_many and in the gateway


DEFAULT_CONNECTION = JudgeConnection()  # the provider's own endpoint and key, as LiteLLM finds them


def judge_messages(prompt: str) -> list[dict[str, str]]:
    question = ParsedPrompt.of(prompt).query[-QUESTION_CHARS:]
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": question}]


def unjudged() -> np.ndarray:
    """A row for a prompt the judge gave nothing for: every rule feature falls back to its parser."""
    return np.full(len(RULE_FEATURES), np.nan, dtype=np.float32)


def judged_nothing(rows: np.ndarray) -> np.ndarray | np.bool_:
    """Whether a row (or, for (n, F) rows, each row) is `unjudged()`: the judge gave no value in it."""
    return np.isnan(rows).all(axis=-1)


def parse_judgement(reply: str) -> np.ndarray:
    """(len(RULE_FEATURES),) judged values clipped to 0…1; NaN for measured features and for any the reply lacks or
    gives as a non-number. A reply with no JSON object, or with no judged feature in it, is a JudgeError."""
    found = re.search(r"\{.*\}", reply, re.DOTALL)
    try:
        answer = json.loads(found.group(0)) if found else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise JudgeError("the judge's reply holds no JSON object")
    row = unjudged()
    for name, column in JUDGED_COLUMNS.items():
        value = answer.get(name)
        if isinstance(value, bool | int | float) and math.isfinite(value):
            row[column] = min(1.0, max(0.0, float(value)))
    if judged_nothing(row):
        raise JudgeError("the judge's reply names none of the judged features")
    return row


class FeatureJudge:
    def __init__(self, model: str, connection: JudgeConnection) -> None:
        self.model = model
        self.connection = connection
        self._stores: dict[Path, JudgementStore] = {}  # by file: read once, then kept up to date by `put`

    async def judge(self, prompt: str, retries: int | None = None) -> np.ndarray:
        """One prompt's judged row (`parse_judgement`); JudgeError when the call or its reply fails. The error
        names the failure's kind only: provider messages can echo a request's key."""
        litellm = _litellm()
        c = self.connection
        try:
            response: Any = await litellm.acompletion(
                model=self.model,
                messages=judge_messages(prompt),
                api_base=c.api_base,
                api_key=c.api_key or ("no-key" if c.api_base else None),  # a server of one's own may want none
                timeout=c.timeout_s,
                num_retries=c.retries if retries is None else retries,
                temperature=0,
                max_tokens=REPLY_TOKENS,
                response_format={"type": "json_object"},
                drop_params=True,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of the call means "no judgement", never a crash
            status = getattr(exc, "status_code", None)
            raise JudgeError(f"{type(exc).__name__}" + (f" (status {status})" if status else "")) from None
        content = response.choices[0].message.content if response.choices else None
        return parse_judgement(content or "")

    def judge_many(self, prompts: Sequence[str], cache_dir: Path, progress: bool = False) -> np.ndarray:
        """(n, len(RULE_FEATURES)) judged rows for a training or evaluation set (`without_judgement` counts the
        prompts that got none).

        Each judgement is kept in `cache_dir`, one line per prompt, as soon as it comes: a second run (or one after
        an interruption) asks only for what is missing. Failed prompts are not kept, so a later run asks again.
        """
        path = JudgementStore.path_for(cache_dir, self.model)
        if path not in self._stores:
            self._stores[path] = JudgementStore(cache_dir, self.model)
        store = self._stores[path]
        rows = np.array([store.get(p) for p in prompts], dtype=np.float32).reshape(len(prompts), len(RULE_FEATURES))
        missing = np.flatnonzero(judged_nothing(rows)).tolist()
        if missing:
            asyncio.run(self._judge_into(rows, missing, prompts, store, progress))
        return rows

    async def _judge_into(
        self, rows: np.ndarray, missing: list[int], prompts: Sequence[str], store: JudgementStore, progress: bool
    ) -> None:
        slots = asyncio.Semaphore(self.connection.concurrency)
        bar = tqdm(total=len(missing), desc=f"judge {self.model}", disable=None if progress else True, leave=False)

        async def one(i: int) -> None:
            async with slots:
                try:
                    rows[i] = await self.judge(prompts[i], retries=max(self.connection.retries, 2))
                    store.put(prompts[i], rows[i])
                except JudgeError:
                    pass
            bar.update()

        await asyncio.gather(*(one(i) for i in missing))
        bar.close()


def judgements_for(
    model: str | None, prompts: Sequence[str], connection: JudgeConnection, cache_dir: Path, progress: bool = False
) -> np.ndarray | None:
    """The judged rows of `prompts` for features judged by `model`; None for parsed features (no judge)."""
    return None if model is None else FeatureJudge(model, connection).judge_many(prompts, cache_dir, progress)


def without_judgement(rows: np.ndarray) -> int:
    """Prompts the judge gave nothing for: all their rule features are parsed."""
    return int(judged_nothing(rows).sum())


class JudgementStore:
    """One judge model's judgements by prompt, as JSON lines under `cache_dir/judged/`, in a file per model and
    question asked (INSTRUCTIONS: a change to the features' names or descriptions starts afresh). A last line cut
    short (a run killed while writing it) is dropped, and that prompt is asked again."""

    def __init__(self, cache_dir: Path, model: str) -> None:
        self.path = self.path_for(cache_dir, model)
        self._rows: dict[str, dict[str, float]] = {}
        text = self.path.read_text() if self.path.exists() else ""
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text)
        for line in text.splitlines():
            entry = json.loads(line)
            self._rows[entry["prompt_sha256"]] = entry["features"]

    @staticmethod
    def path_for(cache_dir: Path, model: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
        asked = hashlib.sha256(INSTRUCTIONS.encode()).hexdigest()[:12]
        return cache_dir / "judged" / f"{slug}-{asked}.jsonl"

    def get(self, prompt: str) -> np.ndarray:
        row = unjudged()
        for name, value in self._rows.get(_digest(prompt), {}).items():
            if name in JUDGED_COLUMNS:
                row[JUDGED_COLUMNS[name]] = value
        return row

    def put(self, prompt: str, row: np.ndarray) -> None:
        features = {name: float(row[c]) for name, c in JUDGED_COLUMNS.items() if not np.isnan(row[c])}
        self._rows[_digest(prompt)] = features
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps({"prompt_sha256": _digest(prompt), "features": features}) + "\n")


def _litellm() -> Any:
    """LiteLLM, imported on first use (a second or two), told to read its bundled price map rather than the
    network's, and not to print a banner on each failed call (judge_many counts them)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
