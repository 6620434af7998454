"""Loading RouterBench tables in their published forms, the paper's filters, and the split."""

from __future__ import annotations

import numpy as np
import pytest

from router_model.data import (
    apply_filters,
    from_frame,
    load_routerbench,
    read_frame,
    stratified_share,
    stratified_split,
)
from router_model.text import prompt_text, split_fewshot
from tests.conftest import DATA_FILE
from tests.router_model.fixtures import frame


def rows(bench: str, n: int, q_big: float = 1.0, q_small: float = 0.0) -> list:
    return [(bench, f"{bench} question {i}?", q_big, q_small, 0.01, 0.001) for i in range(n)]


def test_filters_drop_small_benchmarks_chinese_unsolved_and_missing_rows():
    table = frame(
        rows("big-bench", 60)
        + rows("tiny-bench", 10)
        + [("big-bench", "这是一个中文问题", 1.0, 1.0, 0.01, 0.001)]
        + [("big-bench", "nobody solves this", 0.0, 0.0, 0.01, 0.001)]
        + [("big-bench", "score lost", float("nan"), 1.0, 0.01, 0.001)]
    )
    kept, report = apply_filters(from_frame(table))
    assert report.rows_read == 73
    assert report.small_benchmarks == {"tiny-bench": 10}
    assert (report.cjk_prompts, report.unsolved, report.missing_scores) == (1, 1, 1)
    assert report.rows_kept == len(kept) == 60
    assert set(kept.benchmarks) == {"big-bench"}


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".pkl"])
def test_reads_parquet_csv_and_the_official_pickle(tmp_path, suffix):
    table = frame(rows("a", 55))
    path = tmp_path / f"routerbench{suffix}"
    {".parquet": table.to_parquet, ".csv": table.to_csv, ".pkl": table.to_pickle}[suffix](path)
    if suffix == ".csv":
        table.to_csv(path, index=False)
    data, _ = load_routerbench(path)
    assert data.models == ("big", "small")
    assert data.prompts[0] == "a question 0?"
    assert data.cost.shape == (55, 2)


def test_unsupported_format_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="unsupported format '.txt'"):
        read_frame(tmp_path / "x.txt")


def test_split_is_70_15_15_per_benchmark_and_reproducible():
    benchmarks = np.array(["a"] * 100 + ["b"] * 40)
    split = stratified_split(benchmarks, seed=3)
    assert [len(split[k]) for k in ("train", "val", "test")] == [98, 21, 21]
    assert (benchmarks[split["test"]] == "a").sum() == 15
    assert np.array_equal(split["test"], stratified_split(benchmarks, seed=3)["test"])
    assert not set(split["train"]) & set(split["test"])


def test_a_share_of_the_training_rows_is_taken_per_benchmark_and_reproducible():
    benchmarks = np.array(["a"] * 100 + ["b"] * 40)
    train = stratified_split(benchmarks, seed=3)["train"]
    share = stratified_share(train, benchmarks, 0.5, seed=1)
    assert set(share) < set(train)
    assert [(benchmarks[share] == name).sum() for name in ("a", "b")] == [35, 14]
    assert np.array_equal(share, stratified_share(train, benchmarks, 0.5, seed=1))
    assert not np.array_equal(share, stratified_share(train, benchmarks, 0.5, seed=2))
    assert np.array_equal(stratified_share(train, benchmarks, 1.0, seed=1), train)


def test_prompt_lists_are_joined_and_fewshot_examples_split_off():
    assert prompt_text("['part one', 'part two']") == "part one\npart two"
    assert prompt_text("[not a list") == "[not a list"
    text = "Q: 1+1?\nAnswer:\n2\n\nQ: 2+2?\nAnswer:\n4\n\nQ: 3+3?\nAnswer:"
    assert split_fewshot(text) == (2, "Q: 3+3?\nAnswer:")
    assert split_fewshot("Write a function.") == (0, "Write a function.")


@pytest.mark.skipif(not DATA_FILE.exists(), reason="shared RouterBench data not beside the project")
def test_shared_data_loads_with_the_documented_counts():
    data, report = load_routerbench(DATA_FILE)
    assert report.rows_read == 2218
    assert len(data.models) == 11
    assert set(data.benchmarks) == {"arc-challenge", "winogrande", "mbpp"}
    assert report.unsolved == 54 and report.missing_scores == 13
