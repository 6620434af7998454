"""Reading the corpus's long format and RouterBench's wide files into one table, the paper's filters, the split."""

from __future__ import annotations

import numpy as np
import pytest

from router_model.data import (
    apply_filters,
    from_wide,
    load_data,
    read_corpus,
    read_frame,
    read_tables,
    stratified_share,
    stratified_split,
)
from router_model.text import prompt_text, split_fewshot
from tests.conftest import CORPUS_DIR, DATA_FILE
from tests.router_model.fixtures import frame, write_tiny_corpus


def rows(bench: str, n: int, q_big: float = 1.0, q_small: float = 0.0) -> list:
    return [(bench, f"{bench} question {i}?", q_big, q_small, 0.01, 0.001) for i in range(n)]


def test_the_long_format_becomes_one_row_per_prompt_with_nan_where_a_model_has_no_outcome(tmp_path):
    table, catalogue = read_corpus(write_tiny_corpus(tmp_path / "corpus"))
    assert len(table) == 115 and table.models == ("big", "medium", "small")
    quiz, chat = table.of_source("quizzes"), table.of_source("chats")
    assert np.isnan(quiz.quality[:, 1]).all() and np.isnan(chat.quality[:, 2]).all()
    assert np.isnan(chat.quality[54, 1]) and chat.quality[0, 1] == 0.75
    assert set(table.tasks) == {"quizzes/quiz", "chats/chat"}
    # recorded cost where there is one
    assert quiz.cost[0, 0] == 0.01 and quiz.cost[0, 2] == 0.001
    # else prices × tokens: big 8·1e-4 + 40·2e-4; medium has no price → NaN
    assert chat.cost[0, 0] == pytest.approx(8e-4 + 40 * 2e-4)
    assert np.isnan(chat.cost[:, 1]).all()
    assert catalogue.canonical("big-v1") == "big" and catalogue.canonical("Big") == "big"
    assert catalogue.canonical("small") == "small" and np.isnan(catalogue.prices["medium"][0])


def test_missing_completion_tokens_are_the_models_median_over_its_rows_that_have_them(tmp_path):
    from router_model.data import estimated_completion_tokens

    folder = write_tiny_corpus(tmp_path / "corpus")
    import pandas as pd

    outcomes = pd.read_parquet(folder / "outcomes.parquet")
    tokens = estimated_completion_tokens(outcomes)
    medium = outcomes["model"] == "medium"
    assert (tokens[medium] == 20).all()
    assert (tokens[outcomes["model"] == "big"].iloc[60:] == 40).all()


def test_wide_and_long_merge_over_the_union_of_models_and_wide_names_take_the_corpus_names(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    wide = tmp_path / "rb.parquet"
    table = frame(rows("mbpp", 55))
    table = table.rename(columns={"big": "big-v1", "big|total_cost": "big-v1|total_cost"})
    table.to_parquet(wide)
    merged, _ = read_tables([wide, corpus])  # the folder is read first whatever the order
    assert merged.models == ("big", "medium", "small")
    rb = merged.of_source("routerbench")
    assert len(rb) == 55 and rb.prompt_ids[0] == "routerbench/mbpp/mbpp.0"
    assert (rb.quality[:, 0] == 1.0).all() and (rb.quality[:, 2] == 0.0).all() and np.isnan(rb.quality[:, 1]).all()
    # a wide file of a source the corpus already holds adds nothing
    again, _ = read_tables([corpus, corpus])
    assert len(again) == 115


def test_filters_drop_small_tasks_unsolved_and_single_model_prompts_and_keep_other_languages(tmp_path):
    table = frame(
        rows("big-bench", 60)
        + rows("tiny-bench", 10)
        + [("big-bench", "这是一个中文问题", 1.0, 1.0, 0.01, 0.001)]
        + [("big-bench", "nobody solves this", 0.0, 0.0, 0.01, 0.001)]
        + [("big-bench", "score lost", float("nan"), 1.0, 0.01, 0.001)]
    )
    kept, report = apply_filters(from_wide(table))
    assert report.rows_read == 73
    assert report.small_tasks == {"routerbench/tiny-bench": 10}
    assert (report.unsolved, report.single_model) == (1, 1)
    assert report.rows_kept == len(kept) == 61
    assert "这是一个中文问题" in kept.prompts


def test_the_tiny_corpus_loses_its_unsolved_and_single_model_prompts(tmp_path):
    kept, report, _ = load_data(write_tiny_corpus(tmp_path / "corpus"))
    assert (report.unsolved, report.single_model, report.rows_kept) == (1, 1, 113)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".pkl"])
def test_reads_parquet_csv_and_the_official_pickle(tmp_path, suffix):
    table = frame(rows("a", 55))
    path = tmp_path / f"routerbench{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        {".parquet": table.to_parquet, ".pkl": table.to_pickle}[suffix](path)
    data, _, _ = load_data(path)
    assert data.models == ("big", "small")
    assert data.prompts[0] == "a question 0?"
    assert data.cost.shape == (55, 2)


def test_unsupported_format_and_a_folder_that_is_no_corpus_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="unsupported format '.txt'"):
        read_frame(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="not a corpus folder"):
        read_corpus(tmp_path)


def test_split_is_70_15_15_per_task_and_depends_only_on_the_prompt_ids():
    tasks = np.array(["a"] * 100 + ["b"] * 40)
    ids = [f"id{i}" for i in range(140)]
    split = stratified_split(tasks, ids, seed=3)
    assert [len(split[k]) for k in ("train", "val", "test")] == [98, 21, 21]
    assert (tasks[split["test"]] == "a").sum() == 15
    assert np.array_equal(split["test"], stratified_split(tasks, ids, seed=3)["test"])
    assert not set(split["train"]) & set(split["test"])
    # the same task read in another order, or beside other tasks, has the same held-out prompts
    order = np.arange(139, -1, -1)
    shuffled = stratified_split(tasks[order], [ids[i] for i in order], seed=3)
    assert {ids[order[i]] for i in shuffled["test"]} == {ids[i] for i in split["test"]}
    alone = stratified_split(tasks[:100], ids[:100], seed=3)
    assert {ids[i] for i in alone["test"]} == {ids[i] for i in split["test"] if tasks[i] == "a"}
    assert not np.array_equal(split["test"], stratified_split(tasks, ids, seed=4)["test"])


def test_a_share_of_the_training_rows_is_taken_per_task_and_reproducible():
    tasks = np.array(["a"] * 100 + ["b"] * 40)
    ids = [f"id{i}" for i in range(140)]
    train = stratified_split(tasks, ids, seed=3)["train"]
    share = stratified_share(train, tasks, ids, 0.5, seed=1)
    assert set(share) < set(train)
    assert [(tasks[share] == name).sum() for name in ("a", "b")] == [35, 14]
    assert np.array_equal(share, stratified_share(train, tasks, ids, 0.5, seed=1))
    assert not np.array_equal(share, stratified_share(train, tasks, ids, 0.5, seed=2))
    assert np.array_equal(stratified_share(train, tasks, ids, 1.0, seed=1), train)


def test_prompt_lists_are_joined_and_fewshot_examples_split_off():
    assert prompt_text("['part one', 'part two']") == "part one\npart two"
    assert prompt_text("[not a list") == "[not a list"
    text = "Q: 1+1?\nAnswer:\n2\n\nQ: 2+2?\nAnswer:\n4\n\nQ: 3+3?\nAnswer:"
    assert split_fewshot(text) == (2, "Q: 3+3?\nAnswer:")
    assert split_fewshot("Write a function.") == (0, "Write a function.")


@pytest.mark.skipif(not CORPUS_DIR.exists(), reason="shared corpus not beside the project")
def test_shared_data_loads_with_the_documented_counts():
    data, report, _ = load_data([CORPUS_DIR, DATA_FILE])
    assert report.rows_read == 37_267 and len(data.models) == 92
    assert int(data.observed.sum()) <= 446_403
    assert set(data.sources) == {"alpaca_eval", "llmrouter", "mmlu_pro", "routellm", "routerbench", "routerdc"}
    assert (report.unsolved, report.single_model, report.rows_kept) == (4599, 5, 32_663)
    assert "claude-2" in data.models and "claude-v2" not in data.models


def test_calibration_rows_come_from_a_corpus_folder_by_model_name(tmp_path):
    from router_model.data import read_calibration_rows

    folder = write_tiny_corpus(tmp_path / "corpus")
    prompts, quality, cost = read_calibration_rows(folder, "small")
    assert len(prompts) == 60 and quality[0] == 1.0 and quality[1] == 0.0 and cost is not None and cost[0] == 0.001
    prompts, quality, cost = read_calibration_rows(folder, "medium")
    assert len(prompts) == 54 and (quality == 0.75).all() and cost is None  # medium has no price
    with pytest.raises(ValueError, match="no outcomes of 'nobody'"):
        read_calibration_rows(folder, "nobody")
