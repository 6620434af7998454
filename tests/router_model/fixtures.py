"""A tiny RouterBench-shaped table built in code, so every number in the tests can be checked by hand."""

from __future__ import annotations

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
