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
