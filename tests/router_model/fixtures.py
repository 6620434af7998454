"""A tiny RouterBench-shaped table built in code, so every number in the tests can be checked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MODELS = ("big", "small")


def frame(rows: list[tuple[str, str, float, float, float, float]]) -> pd.DataFrame:
    """rows: (eval_name, prompt, q_big, q_small, cost_big, cost_small)."""
    return pd.DataFrame(
        [
            {
                "sample_id": f"{bench}.{i}",
                "prompt": repr([prompt]),
                "eval_name": bench,
                "big": q_big,
                "small": q_small,
                "big|total_cost": c_big,
                "small|total_cost": c_small,
                "oracle_model_to_route_to": "big",
            }
            for i, (bench, prompt, q_big, q_small, c_big, c_small) in enumerate(rows)
        ]
    )


def write_tiny_routerbench(path: Path) -> Path:
    """120 rows, two benchmarks: code prompts that only "big" solves mostly, quiz prompts that "small" mostly solves
    too; "big" costs 20 times as much."""
    rng = np.random.default_rng(0)
    rows = []
    for bench, template in (("code", "Write a function to {} a list."), ("quiz", "Which is {}?\nA) x\nB) y\nAnswer:")):
        for i in range(60):
            big, small = 1.0, float(rng.random() < (0.8 if bench == "quiz" else 0.2))
            rows.append((bench, template.format(f"item{i}"), big, small, 0.01, 0.0005))
    frame(rows).to_parquet(path)
    return path


def write_tiny_corpus(folder: Path) -> Path:
    """A corpus folder in the long format, small enough to check by hand.

    Source `quizzes` (task `quiz`, 60 prompts): graded on `big` and `small`, recorded costs on every row.
    Source `chats` (task `chat`, 55 prompts): graded on `big` and `medium`, no recorded costs, completion tokens
    recorded for `big` (40) and for `medium` on its first 10 rows only (then 20). `medium` has no price in
    models.csv. The last quiz prompt nobody solved; the last chat prompt only `big` graded.
    """
    folder.mkdir(parents=True, exist_ok=True)
    prompts: list[tuple[str, ...]] = []
    outcomes: list[tuple[str, str, float, int, int | None, float | None]] = []
    for i in range(60):
        pid = f"quizzes/quiz/{i}"
        prompts.append((pid, "quizzes", "quiz", f"Which is larger, {i} or {i + 1}?", "en"))
        solved = i < 59
        outcomes.append((pid, "big", float(solved), 10, 5, 0.01))
        outcomes.append((pid, "small", float(solved and i % 2 == 0), 10, 5, 0.001))
    for i in range(55):
        pid = f"chats/chat/{i}"
        prompts.append((pid, "chats", "chat", f"Write a short poem about item {i}.", "en"))
        outcomes.append((pid, "big", 0.5, 8, 40, None))
        if i < 54:
            outcomes.append((pid, "medium", 0.75, 8, 20 if i < 10 else None, None))
    pd.DataFrame(prompts, columns=["prompt_id", "source", "task", "prompt", "language"]).to_parquet(
        folder / "prompts.parquet"
    )
    frame_ = pd.DataFrame(
        outcomes, columns=["prompt_id", "model", "quality", "prompt_tokens", "completion_tokens", "cost"]
    )
    frame_["prompt_tokens"] = frame_["prompt_tokens"].astype("Int64")
    frame_["completion_tokens"] = frame_["completion_tokens"].astype("Int64")
    frame_.to_parquet(folder / "outcomes.parquet")
    pd.DataFrame(
        [
            ("big", "routerbench:big-v1; chats:Big", 1e-4, 2e-4),
            ("small", "quizzes:small", 1e-5, 1e-5),
            ("medium", "", None, None),
        ],
        columns=["model", "aliases", "input_cost_per_token", "output_cost_per_token"],
    ).to_csv(folder / "models.csv", index=False)
    return folder
