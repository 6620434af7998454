"""The optional LLM feature judge: its reply parsed, its values in place of the parsers', its calls through LiteLLM to
a real OpenAI-speaking server, kept on disk, and a checkpoint trained with it that asks it when routing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gateway.registry import ConfigError
from gateway.settings import Settings
from router_model import judge as judge_module
from router_model.features import Featurizer
from router_model.judge import (
    INSTRUCTIONS,
    JUDGED_COLUMNS,
    FeatureJudge,
    JudgeConnection,
    JudgeError,
    parse_judgement,
    unjudged,
    without_judgement,
)
from router_model.parsers import RULE_FEATURES, ParsedPrompt, rule_features
from router_model.router import Router
from router_model.train import TrainConfig, prepare, train
from tests.conftest import JUDGE_MODEL, JUDGE_REPLY
from tests.router_model.fixtures import write_tiny_routerbench

COLUMN = {f.name: i for i, f in enumerate(RULE_FEATURES)}
QUIZ = "Q: 2+2?\nA: 4\n\nQ: Which gas do plants absorb?\nA) oxygen\nB) carbon dioxide\nAnswer:"


def test_a_reply_gives_the_judged_features_clipped_and_leaves_the_measured_ones_to_the_parsers():
    reply = 'Sure:\n```json\n{"task_multiple_choice": true, "knowledge_science": 1.7, "complexity_ambiguity": -2,\n'
    reply += '"hint_needs_reasoning": "high", "options_count": 0.5, "not_a_feature": 1}\n```'
    row = parse_judgement(reply)
    assert row[COLUMN["task_multiple_choice"]] == 1.0
    assert row[COLUMN["knowledge_science"]] == 1.0 and row[COLUMN["complexity_ambiguity"]] == 0.0
    assert np.isnan(row[COLUMN["hint_needs_reasoning"]])  # not a number
    assert np.isnan(row[COLUMN["options_count"]])  # measured: always parsed
    assert np.count_nonzero(~np.isnan(row)) == 3


@pytest.mark.parametrize("reply", ["", "I cannot label this.", "[1, 2]", '{"answer": "B"}', "{not json}"])
def test_a_reply_without_judged_features_in_a_json_object_is_an_error(reply):
    with pytest.raises(JudgeError):
        parse_judgement(reply)


def test_the_judge_is_asked_only_for_judged_features_and_reads_the_question_after_the_examples():
    judged = {f.name for f in RULE_FEATURES if not f.measured}
    assert set(JUDGED_COLUMNS) == judged and "length_normalised" not in judged
    assert all(f"- {name}: " in INSTRUCTIONS for name in judged)
    assert "Which gas do plants absorb?" in ParsedPrompt.of(QUIZ).query and "2+2" not in ParsedPrompt.of(QUIZ).query


def featurizer(judge_model: str | None) -> Featurizer:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(20, 384)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return Featurizer.fit(("big", "small"), embeddings, rng.random((20, 2)), seed=0, judge_model=judge_model)


def test_judged_values_stand_in_for_the_parsers_where_given_and_nowhere_else():
    f = featurizer(JUDGE_MODEL)
    embedding = np.zeros((1, 384), dtype=np.float32)
    code, choice = COLUMN["task_code_generation"], COLUMN["task_multiple_choice"]
    judged = unjudged()[None, :]
    judged[0, code], judged[0, choice] = 1.0, 0.0
    features = f.transform([QUIZ], embedding, judged=judged)[0]
    parsed = rule_features(ParsedPrompt.of(QUIZ))
    assert (parsed[code], parsed[choice]) == (0.0, 1.0) and (features[code], features[choice]) == (1.0, 0.0)
    others = [i for i in range(len(RULE_FEATURES)) if i not in (code, choice)]
    assert np.array_equal(features[others], np.array(parsed, dtype=np.float32)[others])


def test_judged_features_need_the_judgements_and_parsed_features_refuse_them():
    embedding = np.zeros((1, 384), dtype=np.float32)
    with pytest.raises(ValueError, match=f"judged by {JUDGE_MODEL}"):
        featurizer(JUDGE_MODEL).transform([QUIZ], embedding)
    with pytest.raises(ValueError, match="parsed"):
        featurizer(None).transform([QUIZ], embedding, judged=unjudged()[None, :])


def test_judge_many_asks_once_per_prompt_through_litellm_and_keeps_the_answers(upstream, tmp_path):
    base, control = upstream
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1", api_key="sk-judge"))
    prompts = [QUIZ, "Write a function to reverse a list.", "Say hi."]
    rows = judge.judge_many(prompts, tmp_path)
    assert len(control.received) == 3 and set(control.authorization) == {"Bearer sk-judge"}
    name, body = control.received[0]
    assert name == "judge" and body["temperature"] == 0 and body["messages"][0]["content"] == INSTRUCTIONS
    assert sorted(b["messages"][1]["content"] for _, b in control.received) == sorted(
        ParsedPrompt.of(p).query for p in prompts
    )
    assert (rows[:, COLUMN["task_code_generation"]] == 1.0).all() and (rows[:, COLUMN["knowledge_code"]] == 0.75).all()
    assert np.isnan(rows[:, COLUMN["options_count"]]).all() and without_judgement(rows) == 0
    again = judge.judge_many([*prompts, "One more prompt."], tmp_path)
    assert len(control.received) == 4 and np.array_equal(again[:3], rows, equal_nan=True)
    assert judge.judge_many([], tmp_path).shape == (0, len(RULE_FEATURES))


def test_a_judge_reads_its_store_once_and_keeps_it_in_memory(upstream, tmp_path):
    """`Router.vectorize` asks per call; a long-lived router must not reread a growing file each time."""
    base, control = upstream
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1"))
    first = judge.judge_many([QUIZ], tmp_path)
    [store] = (tmp_path / "judged").iterdir()
    store.unlink()
    assert np.array_equal(judge.judge_many([QUIZ], tmp_path), first, equal_nan=True)
    assert len(control.received) == 1


def test_a_judgement_cut_short_on_disk_is_asked_for_again(upstream, tmp_path):
    base, control = upstream
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1"))
    judge.judge_many([QUIZ, "Say hi."], tmp_path)
    [store] = (tmp_path / "judged").iterdir()
    store.write_text(store.read_text()[:-20])  # the second line, half written
    judge = FeatureJudge(JUDGE_MODEL, judge.connection)  # the next run
    rows = judge.judge_many([QUIZ, "Say hi."], tmp_path)
    assert len(control.received) == 3 and without_judgement(rows) == 0
    assert np.array_equal(judge.judge_many([QUIZ, "Say hi."], tmp_path), rows, equal_nan=True)
    assert len(control.received) == 3 and len(store.read_text().splitlines()) == 2


def test_a_failing_judge_leaves_the_parsers_in_place_and_is_asked_again_next_time(upstream, tmp_path):
    base, control = upstream
    control.behaviour["judge"] = "error500"
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1", timeout_s=5))
    rows = judge.judge_many([QUIZ, "Say hi."], tmp_path)
    assert without_judgement(rows) == 2 and np.isnan(rows).all()
    control.behaviour["judge"] = "ok"
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    asked = len(control.received)
    assert without_judgement(judge.judge_many([QUIZ, "Say hi."], tmp_path)) == 0
    assert len(control.received) == asked + 2


async def test_a_judge_error_names_the_failure_not_the_providers_message(upstream):
    base, control = upstream
    control.behaviour["judge"] = "error400"  # its message echoes the caller's key
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1", api_key="sk-judge-secret"))
    with pytest.raises(JudgeError) as raised:
        await judge.judge(QUIZ)
    assert "status 400" in str(raised.value) and "sk-judge-secret" not in str(raised.value)


def test_a_checkpoint_trained_with_a_judge_names_it_and_asks_it_when_routing(judged_checkpoint, upstream):
    assert judged_checkpoint.judge_calls == 120  # every prompt of the tiny table, once
    meta = json.loads((judged_checkpoint.path / "router.json").read_text())
    card = json.loads((judged_checkpoint.path / "card.json").read_text())
    assert meta["judge"] == JUDGE_MODEL
    assert card["judge"] == {"model": JUDGE_MODEL, "prompts_without_judgement": 0}
    base, control = upstream
    control.content["judge"] = json.dumps({"task_code_generation": 0, "task_multiple_choice": 0.25})
    router = Router.load(
        judged_checkpoint.path, judged_checkpoint.cache_dir, judge_connection=JudgeConnection(f"{base}/b/judge/v1")
    )
    assert router.judge is not None and router.judge.model == JUDGE_MODEL
    vector = router.vectorize(["Write a function to sort a list of numbers."])[0]
    assert [name for name, _ in control.received] == ["judge"]
    assert vector.features[COLUMN["task_code_generation"]] == 0.0
    assert vector.features[COLUMN["task_multiple_choice"]] == 0.25


def test_the_judge_connection_comes_from_the_settings_and_its_key_from_the_env_var_they_name():
    settings = Settings(judge_api_base="http://127.0.0.1:9/v1", judge_api_key_env="JUDGE_KEY", judge_timeout_s=2)
    connection = settings.judge_connection({"JUDGE_KEY": "sk-judge"})
    assert (connection.api_base, connection.api_key, connection.timeout_s) == ("http://127.0.0.1:9/v1", "sk-judge", 2)
    assert "sk-judge" not in repr(connection)
    with pytest.raises(ConfigError, match="JUDGE_KEY, which is not set"):
        settings.judge_connection({})


def parsers_judgement(body: dict) -> str:
    """A judge that gives the parsers' own values for the question it is shown."""
    values = rule_features(ParsedPrompt.of(body["messages"][1]["content"]))
    return json.dumps({name: values[column] for name, column in JUDGED_COLUMNS.items()})


def test_a_judge_that_agrees_with_the_parsers_trains_the_same_network(upstream, tmp_path):
    """Judged features reach every row they belong to (training, validation, test, served) and no other."""
    base, control = upstream
    control.content["judge"] = parsers_judgement
    common = {
        "data": write_tiny_routerbench(tmp_path / "tiny.parquet"),
        "epochs": 3,
        "ablations": False,
        "progress": False,
        "serve_precision": "fp32",
        "cache_dir": tmp_path / "cache",
    }
    parsed = train(TrainConfig(out=tmp_path / "parsed", **common))
    judged = train(
        TrainConfig(
            out=tmp_path / "judged",
            judge_model=JUDGE_MODEL,
            judge_connection=JudgeConnection(f"{base}/b/judge/v1"),
            **common,
        )
    )
    assert len(control.received) == 120 and judged.featurizer.judge_model == JUDGE_MODEL
    assert judged.card["test"] == parsed.card["test"]
    assert judged.card["validation_curve"] == parsed.card["validation_curve"]
    for name, tensor in parsed.heads["quality"].net.state_dict().items():
        assert torch.equal(tensor, judged.heads["quality"].net.state_dict()[name])


def test_training_on_a_share_of_its_split_asks_the_judge_about_the_rows_it_uses_only(upstream, tmp_path):
    base, control = upstream
    control.content["judge"] = parsers_judgement
    config = TrainConfig(
        data=write_tiny_routerbench(tmp_path / "tiny.parquet"),
        out=tmp_path / "out",
        train_fraction=0.5,
        judge_model=JUDGE_MODEL,
        judge_connection=JudgeConnection(f"{base}/b/judge/v1"),
        progress=False,
        cache_dir=tmp_path / "cache",
    )
    prepared = prepare(config)
    assert len(control.received) == sum(len(part) for part in prepared.parts.values()) < len(prepared.data)
    for name, part in prepared.parts.items():
        parsed = np.array([rule_features(ParsedPrompt.of(prompt)) for prompt in part.prompts], dtype=np.float32)
        columns = list(JUDGED_COLUMNS.values())
        assert np.array_equal(prepared.judged[name][:, columns], parsed[:, columns]), name


def test_judgements_kept_for_other_instructions_are_not_reused(upstream, tmp_path, monkeypatch):
    base, control = upstream
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    judge = FeatureJudge(JUDGE_MODEL, JudgeConnection(api_base=f"{base}/b/judge/v1"))
    judge.judge_many([QUIZ], tmp_path)
    monkeypatch.setattr(judge_module, "INSTRUCTIONS", INSTRUCTIONS + "\n- task_translation: asks for a translation")
    judge.judge_many([QUIZ], tmp_path)
    assert len(control.received) == 2 and len(list((tmp_path / "judged").iterdir())) == 2
