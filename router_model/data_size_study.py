"""Would more rows of the same benchmarks help? A learning curve on one fixed split: for each share of the training
part (taken benchmark by benchmark) and each seed, a network is trained on that share
(`TrainConfig(train_fraction=F, seed=S, split_seed=7)`), and routing is scored on the split's full validation and
test parts at the network's own tiers (chosen on its validation curve).

    python -m router_model.data_size_study --data ../shared/data/routerbench_subset.parquet \
        --fractions 0.25 0.5 0.75 1 --seeds 7 11 13 17 19 --json docs/results/data_size_study.json

The seed picks the share's rows and the network's initialisation; the split stays the same, so every run is scored
on the same validation and test prompts.
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

SCORES = ("aiq", "best_under_half_cost", "perf_quality", "balanced_quality")


def study(
    data_path: Path, fractions: list[float], seeds: list[int], split_seed: int, cache_dir: Path
) -> list[dict[str, Any]]:
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for fraction in fractions:
            for seed in seeds:
                config = TrainConfig(
                    data=data_path, out=Path(scratch) / f"f{fraction}_s{seed}", seed=seed, split_seed=split_seed,
                    train_fraction=fraction, ablations=False, cache_dir=cache_dir, progress=False,
                )  # fmt: skip
                checkpoint = train(config)
                runs.append({"fraction": fraction, "seed": seed, "n_train": checkpoint.card["split"]["n_train"],
                             **scored_splits(checkpoint, data_path, cache_dir)})  # fmt: skip
                print(_line(runs[-1]), flush=True)
    return runs


def _line(run: dict[str, Any]) -> str:
    parts = [f"share {run['fraction']:.2f} ({run['n_train']:>5} rows)  seed {run['seed']:>3}"]
    for part in ("val", "test"):
        s = run[part]
        best = "—" if s["best_under_half_cost"] is None else f"{s['best_under_half_cost']:.4f}"
        parts.append(f"{part:>4}: AIQ {s['aiq']:.4f}  best under half cost {best}  perf {s['perf_quality']:.4f}")
    return "  ".join(parts)


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per share, the mean over seeds of each score on validation and test (runs with no point under half the best
    single model's cost left out of that score's mean)."""
    rows = []
    for fraction in sorted({r["fraction"] for r in runs}):
        mine = [r for r in runs if r["fraction"] == fraction]
        row: dict[str, Any] = {"fraction": fraction, "n_train": mine[0]["n_train"], "runs": len(mine)}
        for part in ("val", "test"):
            for score in SCORES:
                values = [r[part][score] for r in mine if r[part][score] is not None]
                row[f"{part}_{score}"] = statistics.mean(values) if values else None
        rows.append(row)
    return rows


def main() -> None:
    from router_model.encoder import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 13, 17, 19])
    parser.add_argument("--split-seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = study(args.data, args.fractions, args.seeds, args.split_seed, DEFAULT_CACHE_DIR)
    print("\nmean over seeds:  share  rows | " + "  ".join(f"{p} {s}" for p in ("val", "test") for s in SCORES))
    for row in summary(runs):
        cells = ["—" if row[f"{p}_{s}"] is None else f"{row[f'{p}_{s}']:.4f}" for p in ("val", "test") for s in SCORES]
        print(f"{row['fraction']:.2f} {row['n_train']:>5} | " + "  ".join(cells))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "summary": summary(runs)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
