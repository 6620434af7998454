"""Named features on prompts whose answers are known."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from router_model.features import Featurizer, feature_infos
from router_model.parsers import RULE_FEATURES, ParsedPrompt, _matches_up_to, rule_features

NAMES = [f.name for f in RULE_FEATURES]


def features_of(text: str) -> dict[str, float]:
    return dict(zip(NAMES, rule_features(ParsedPrompt.of(text)), strict=True))


def test_code_generation_prompt():
    f = features_of("Write a function to find the shared elements from the given two lists.")
    assert f["task_code_generation"] == 1 and f["output_code"] == 1
    assert f["task_multiple_choice"] == 0 and f["output_single_letter"] == 0
    assert f["knowledge_code"] > 0


def test_multiple_choice_science_prompt_with_fewshot_examples():
    example = "Which is a metal?\nA) wood\nB) iron\nAnswer:\nB"
    question = (
        "Which force most likely keeps a planet in orbit?\nA) friction\nB) gravity\nC) magnetism\nD) tension\n"
        'Print only a single choice from "A" or "B" or "C" or "D" without explanation.\nAnswer:'
    )
    f = features_of(f"{example}\n\n{example}\n\n{question}")
    assert f["task_multiple_choice"] == 1 and f["output_single_letter"] == 1 and f["output_deterministic"] == 1
    assert f["options_count"] == 0.5 and f["fewshot_examples"] == 0.2
    assert f["knowledge_science"] > 0 and f["complexity_probabilistic"] > 0


def test_fill_the_blank_and_math_word_problem():
    blank = features_of("The cup fell off the table because _ was slippery.\nA) cup\nB) table")
    assert blank["task_commonsense_completion"] == 1 and blank["knowledge_context"] == 1
    math = features_of("Tom has 3 apples and buys 5 more. How many apples does he have now?")
    assert math["task_math_word_problem"] == 1 and math["output_number"] == 1


def test_language_and_length_signals():
    assert features_of("¿Dónde está la biblioteca?")["language_ascii_ratio"] < 1
    assert features_of("x" * 3000)["hint_long_context"] == 1
    assert features_of("short")["length_normalised"] < features_of("longer " * 100)["length_normalised"]


# vocabulary features read the lower-cased question: the case a cue is written in must not matter
CASE_BLIND = [
    "task_summarisation", "task_classification", "knowledge_science", "knowledge_math", "knowledge_code",
    "knowledge_humanities", "knowledge_temporal", "knowledge_context", "output_number", "complexity_ambiguity",
    "complexity_what_happens_next", "complexity_probabilistic", "hint_needs_reasoning",
]  # fmt: skip
CUES = ["Summary", "title", "CLASSIFY", "energy", "Atom", "how many", "TOTAL", "python", "List", "history", "before",
        "Year", "he", "She", "_", "calculate", "might", "Perhaps", "then,", "next,", "most likely", "Why", "because",
        "the", "a", "7", "3.5", "\n"]  # fmt: skip


@given(st.lists(st.sampled_from(CUES), max_size=60))
def test_vocabulary_features_ignore_case(words):
    text = " ".join(words)
    lower, upper = features_of(text.lower()), features_of(text.upper())
    assert {n: lower[n] for n in CASE_BLIND} == {n: upper[n] for n in CASE_BLIND}


def test_vocabulary_density_saturates_at_three_cues():
    assert features_of("energy")["knowledge_science"] == 1 / 3
    assert features_of("energy atom")["knowledge_science"] == 2 / 3
    assert features_of(" ".join(["energy atom cell"] * 1000))["knowledge_science"] == 1


@given(st.text(alphabet="ab \n", max_size=200), st.integers(0, 5))
def test_match_counting_stops_at_its_limit(text, limit):
    regex = re.compile(r"\bab\w*")
    assert _matches_up_to(regex, text, limit) == min(len(regex.findall(text)), limit)


def test_every_feature_has_a_name_and_description():
    infos = feature_infos(("m1", "m2"))
    assert len({i.name for i in infos}) == len(infos) == len(RULE_FEATURES) + 2 + 2
    assert all(i.description for i in infos)


def test_proxy_success_never_sees_the_prompts_own_label():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    quality = rng.integers(0, 2, size=(40, 2)).astype(np.float32)
    featurizer = Featurizer.fit(("m1", "m2"), emb, quality, seed=0)
    with_self = featurizer.proxy_success(emb)
    without_self = featurizer.proxy_success(emb, exclude=np.arange(40))
    # a prompt is its own nearest neighbour; excluding it must change the estimate somewhere
    assert not np.allclose(with_self, without_self)
    features = featurizer.transform_training([f"p{i}" for i in range(40)], emb)
    assert np.allclose(features[:, -2:], without_self)


def test_proxy_success_reads_only_neighbours_that_graded_the_model_and_falls_back_to_its_mean():
    emb = np.eye(4, 8, dtype=np.float32)
    nan = np.nan
    # model a is graded on rows 0 and 1, b on row 3 only, c on row 2 only; the four rows are orthogonal
    quality = np.array([[1.0, nan, nan], [0.0, nan, nan], [nan, nan, nan], [nan, 0.25, nan]], dtype=np.float32)
    quality[2, 2] = 0.5
    featurizer = Featurizer.fit(("a", "b", "c"), emb, quality, seed=0)
    proxy = featurizer.proxy_success(emb[:1])[0]
    # row 0 is its own neighbour here (no exclusion); similarities 1 and 0 weigh e^0 and e^-10
    w_self, w_other = 1.0, np.exp(-10.0)
    assert proxy[0] == np.float32((w_self * 1.0 + w_other * 0.0) / (w_self + w_other))
    assert np.isclose(proxy[1], 0.25) and np.isclose(proxy[2], 0.5)  # only the rows that graded b, c count
    assert np.isfinite(featurizer.transform(["x"], emb[:1])).all()
    alone = Featurizer.fit(("a", "b"), emb[:2], quality[:2, :2], seed=0)
    assert np.isclose(alone.proxy_success(emb[:1])[0, 1], 0.0)  # b has no graded row: its training mean (none: 0)
