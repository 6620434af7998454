"""Which token window should the router embed? For each window and seed, a network is trained and served on the
last W tokens of each question (`llmrank train --max-tokens W --serve-max-tokens W --seed S`), and routing is
scored on that seed's validation and test splits at the network's own tiers (chosen on its validation curve).

    python -m router_model.window_study --data ../shared/data/routerbench_subset.parquet \
        --windows 32 48 64 --seeds 7 11 13 --json docs/results/window_study.json

The seed sets the split as well as the initialisation, so the spread across seeds shows how much of a difference
between windows is noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from router_model.commands import scored_splits
from router_model.train import TrainConfig, train


def study(data_path: Path, windows: list[int], seeds: list[int], cache_dir: Path) -> list[dict[str, Any]]:
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for window in windows:
            for seed in seeds:
                config = TrainConfig(
                    data=data_path, out=Path(scratch) / f"w{window}_s{seed}", seed=seed, max_tokens=window,
                    serve_max_tokens=window, cache_dir=cache_dir, progress=False,
                )  # fmt: skip
                checkpoint = train(config)
                runs.append({"window": window, "seed": seed, "version": checkpoint.version,
                             "trained_and_served": (checkpoint.encoder["trained_max_tokens"],
                                                    checkpoint.encoder["max_tokens"]),
                             **scored_splits(checkpoint, data_path, cache_dir)})  # fmt: skip
                print(_line(runs[-1]), flush=True)
    return runs


def _line(run: dict[str, Any]) -> str:
    parts = [f"window {run['window']:>3}  seed {run['seed']:>3}"]
    for part in ("val", "test"):
        s = run[part]
        parts.append(
            f"{part:>4}: AIQ {s['aiq']:.4f} (kNN {s['knn_aiq']:.4f})"
            f"  perf {s['perf_quality']:.4f} ${s['perf_cost']:.3f}"
            f"  balanced {s['balanced_quality']:.4f} ${s['balanced_cost']:.4f}"
        )
    return "  ".join(parts)


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per window, the mean over seeds of validation and test AIQ and of the balanced tier's quality."""
    rows = []
    for window in sorted({r["window"] for r in runs}):
        mine = [r for r in runs if r["window"] == window]
        row: dict[str, Any] = {"window": window}
        for part in ("val", "test"):
            row[f"{part}_aiq"] = statistics.mean(r[part]["aiq"] for r in mine)
            row[f"{part}_balanced_quality"] = statistics.mean(r[part]["balanced_quality"] for r in mine)
        row["aiq_both"] = (row["val_aiq"] + row["test_aiq"]) / 2
        rows.append(row)
    return rows


def main() -> None:
    from router_model.encoder import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--windows", type=int, nargs="+", default=[32, 48, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 13])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = study(args.data, args.windows, args.seeds, DEFAULT_CACHE_DIR)
    print("\nmean over seeds:")
    for row in summary(runs):
        print(
            f"window {row['window']:>3}: AIQ val {row['val_aiq']:.4f} test {row['test_aiq']:.4f} both "
            f"{row['aiq_both']:.4f}; balanced quality val {row['val_balanced_quality']:.4f} "
            f"test {row['test_balanced_quality']:.4f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "summary": summary(runs)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
