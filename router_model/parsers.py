"""Rule-based prompt features: pure functions of the text, each with a name and a one-line description."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from router_model.text import split_fewshot


@dataclass
class ParsedPrompt:
    """A prompt split into solved examples and the question; signals used by several features are memoised."""

    text: str
    query: str
    n_examples: int
    _memo: dict[str, float] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, text: str) -> ParsedPrompt:
        n_examples, query = split_fewshot(text)
        return cls(text=text, query=query, n_examples=n_examples)

    @cached_property
    def q(self) -> str:
        return self.query.lower()

    def memo(self, key: str, compute: Callable[[ParsedPrompt], float]) -> float:
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]


def _has(pattern: str) -> Callable[[ParsedPrompt], float]:
    """Whether a lower-case pattern occurs in the lower-cased question (several times faster on a long prompt than
    case-insensitive matching, with the same results on ASCII text)."""
    regex = re.compile(pattern, re.MULTILINE)
    return lambda p: float(bool(regex.search(p.q)))


def _matches_up_to(regex: re.Pattern[str], text: str, limit: int) -> int:
    """How many times `regex` matches, counting no further than `limit`: a long prompt is not scanned to its end
    for a count that saturates early."""
    return sum(1 for _ in itertools.islice(regex.finditer(text), limit))


def _density(words: str) -> Callable[[ParsedPrompt], float]:
    """Words of the lower-cased question that start with one of `words`, counted up to three, over three."""
    regex = re.compile(rf"\b({words})\w*")
    return lambda p: p.memo(words, lambda p: _matches_up_to(regex, p.q, 3) / 3)


_OPTIONS = re.compile(r"^\s*\(?([A-H])[\).:]\s+\S", re.MULTILINE)
_SCIENCE = r"energy|atom|cell|molecul|force|gravity|planet|organism|chemical|species|temperature|electric|magnet"
_MATH = r"how many|how much|total|sum|percent|calculate|equation|number|integer|average|\d+\s*[\+\-\*/×÷]\s*\d+"
_CODE = r"function|python|list|string|array|return|def |class |algorithm|regex|tuple|dictionary"
_HUMANITIES = r"history|law|philosoph|moral|politic|econom|religio|literature|war|court|culture"
_TEMPORAL = r"before|after|year|century|yesterday|tomorrow|later|earlier|when|since|until|ago|era"
_HEDGES = r"might|may|could|possibly|perhaps|unclear|either|ambiguous|depends"
_PROBABILISTIC = r"most likely|least likely|probably|more likely|chance|probability|best explains"
_REASONING = r"why|explain|because|therefore|infer|conclude|step by step|prove|which statement|best"


_CODE_REQUEST = re.compile(r"\bwrite (a|an) (python )?(function|program|script|class)\b|```|\bdef \w+\(")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_SINGLE_LETTER = re.compile(r"single (choice|letter)|letter of the correct|answer with [a-d]\b")


_science, _math, _code, _humanities = (_density(words) for words in (_SCIENCE, _MATH, _CODE, _HUMANITIES))


def _n_options(p: ParsedPrompt) -> float:
    return p.memo("n_options", lambda p: float(len(set(_OPTIONS.findall(p.query)))))


def _is_multiple_choice(p: ParsedPrompt) -> float:
    return float(_n_options(p) >= 2)


def _is_code_generation(p: ParsedPrompt) -> float:
    return p.memo("code", lambda p: float(bool(_CODE_REQUEST.search(p.q))))


def _is_math_word_problem(p: ParsedPrompt) -> float:
    has_numbers = _matches_up_to(_NUMBER, p.query, 2) == 2
    return float(has_numbers and bool(re.search(r"how (many|much)|what is the (total|number|sum)", p.q)))


def _is_commonsense_completion(p: ParsedPrompt) -> float:
    return float(bool(re.search(r"\b_\b|what happens next|then,|\.\.\.$", p.query)))


def _wants_single_letter(p: ParsedPrompt) -> float:
    return p.memo("letter", lambda p: float(bool(_SINGLE_LETTER.search(p.q))))


def _length_normalised(p: ParsedPrompt) -> float:
    return min(1.0, math.log1p(len(p.text)) / math.log1p(32_000))


def _english_ratio(p: ParsedPrompt) -> float:
    if not p.text:
        return 1.0
    if p.text.isascii():
        return 1.0
    return len(p.text.encode("ascii", "ignore")) / len(p.text)


@dataclass(frozen=True)
class RuleFeature:
    """`measured`: a count or length of the text, always parsed; the others are judgements about the prompt that
    an LLM judge may give instead (router_model/judge.py)."""

    name: str
    description: str
    compute: Callable[[ParsedPrompt], float]
    measured: bool = False


RULE_FEATURES: tuple[RuleFeature, ...] = (
    RuleFeature("task_multiple_choice", "the question lists lettered options", _is_multiple_choice),
    RuleFeature("task_code_generation", "asks for a function or program", _is_code_generation),
    RuleFeature("task_math_word_problem", "numbers plus a 'how many/much' style question", _is_math_word_problem),
    RuleFeature("task_commonsense_completion", "fill-the-blank or 'what happens next'", _is_commonsense_completion),
    RuleFeature("task_summarisation", "asks for a summary or a title", _has(r"summari[sz]e|summary|\btitle\b|tl;dr")),
    RuleFeature("task_classification", "asks to classify or label", _has(r"classify|categor|sentiment|label")),
    RuleFeature(
        "task_open_chat",
        "free-form request without options or code",
        lambda p: float(not _is_multiple_choice(p) and not _is_code_generation(p)),
    ),
    RuleFeature("knowledge_science", "science vocabulary (physics, biology, chemistry)", _science),
    RuleFeature("knowledge_math", "arithmetic or quantitative vocabulary", _math),
    RuleFeature("knowledge_code", "programming vocabulary", _code),
    RuleFeature("knowledge_humanities", "history, law, ethics or social-science vocabulary", _humanities),
    RuleFeature("knowledge_temporal", "temporal reasoning cues (before, after, year …)", _density(_TEMPORAL)),
    RuleFeature(
        "knowledge_context",
        "resolving a reference inside the text (blank or pronoun)",
        _has(r"\b_\b|\b(he|she|they|it)\b.*\b(he|she|they|it)\b"),
    ),
    RuleFeature("output_single_letter", "expects one option letter", _wants_single_letter),
    RuleFeature("output_number", "expects a number", _has(r"how (many|much)|what is \d|calculate|\bsolve\b")),
    RuleFeature("output_code", "expects code", _is_code_generation),
    RuleFeature(
        "output_free_text",
        "expects free prose",
        lambda p: float(not _wants_single_letter(p) and not _is_code_generation(p) and not _is_multiple_choice(p)),
    ),
    RuleFeature(
        "output_deterministic",
        "one checkable right answer",
        lambda p: float(bool(_is_multiple_choice(p) or _is_code_generation(p) or _is_math_word_problem(p))),
    ),
    RuleFeature("complexity_ambiguity", "hedged or ambiguous wording", _density(_HEDGES)),
    RuleFeature("complexity_what_happens_next", "scenario continuation cue", _has(r"what happens next|then,|next,")),
    RuleFeature("complexity_probabilistic", "probabilistic phrasing ('most likely' …)", _density(_PROBABILISTIC)),
    RuleFeature("hint_needs_reasoning", "explanation or multi-step cues", _density(_REASONING)),
    RuleFeature(
        "hint_world_knowledge",
        "needs facts about the world (science or humanities)",
        lambda p: max(_science(p), _humanities(p)),
    ),
    RuleFeature(
        "knowledge_domain_specificity",
        "strength of the dominant domain's vocabulary",
        lambda p: max(f(p) for f in (_science, _math, _code, _humanities)),
    ),
    RuleFeature(
        "hint_long_context", "long prompt (over ~2,000 characters)", lambda p: float(len(p.text) > 2000), measured=True
    ),
    RuleFeature(
        "options_count", "number of lettered options / 8", lambda p: min(1.0, _n_options(p) / 8), measured=True
    ),
    RuleFeature(
        "fewshot_examples",
        "solved examples before the question / 10",
        lambda p: min(1.0, p.n_examples / 10),
        measured=True,
    ),
    RuleFeature("length_normalised", "log prompt length, 0 … 1 at 32k characters", _length_normalised, measured=True),
    RuleFeature(
        "query_length_normalised",
        "log question length",
        lambda p: min(1.0, math.log1p(len(p.query)) / math.log1p(32_000)),
        measured=True,
    ),
    RuleFeature(
        "language_ascii_ratio", "share of ASCII characters (a proxy for English)", _english_ratio, measured=True
    ),
)


def rule_features(prompt: ParsedPrompt) -> list[float]:
    return [f.compute(prompt) for f in RULE_FEATURES]
