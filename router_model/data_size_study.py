"""Would more rows of the same sources help? A learning curve on one fixed split: for each share of the training
part (taken task by task) and each seed, a network is trained on that share
(`TrainConfig(train_fraction=F, seed=S, split_seed=7)`), and routing is scored on the split's full validation and
test parts at the network's own tiers (chosen on its validation curve).

    python -m router_model.data_size_study --data ../shared/data/corpus ../shared/data/routerbench_subset.parquet \
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


def study(
    data_paths: list[Path], fractions: list[float], seeds: list[int], split_seed: int, cache_dir: Path
) -> list[dict[str, Any]]:
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for fraction in fractions:
            for seed in seeds:
                config = TrainConfig(
                    data=tuple(data_paths), out=Path(scratch) / f"f{fraction}_s{seed}", seed=seed,
                    split_seed=split_seed, train_fraction=fraction, ablations=False, cache_dir=cache_dir,
                    progress=False,
                )  # fmt: skip
                checkpoint = train(config)
                runs.append({"fraction": fraction, "seed": seed, "n_train": checkpoint.card["split"]["n_train"],
                             **scored_splits(checkpoint, cache_dir)})  # fmt: skip
                print(_line(runs[-1]), flush=True)
    return runs


def _line(run: dict[str, Any]) -> str:
    parts = [f"share {run['fraction']:.2f} ({run['n_train']:>5} rows)  seed {run['seed']:>3}"]
    parts += [f"{part}: AIQ {run[part]['aiq']:.4f}" for part in ("val", "test")]
    return "  ".join(parts)


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per share, the mean over seeds of the validation and test AIQ (mean over sources) and of each source's."""
    rows = []
    for fraction in sorted({r["fraction"] for r in runs}):
        mine = [r for r in runs if r["fraction"] == fraction]
        row: dict[str, Any] = {"fraction": fraction, "n_train": mine[0]["n_train"], "runs": len(mine)}
        for part in ("val", "test"):
            row[f"{part}_aiq"] = statistics.mean(r[part]["aiq"] for r in mine)
            sources = [k for k in mine[0][part] if k != "aiq"]
            row[f"{part}_aiq_per_source"] = {s: statistics.mean(r[part][s]["aiq"] for r in mine) for s in sources}
        rows.append(row)
    return rows


def main() -> None:
    from router_model.encoder import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 13, 17, 19])
    parser.add_argument("--split-seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = study(args.data, args.fractions, args.seeds, args.split_seed, DEFAULT_CACHE_DIR)
    print("\nmean over seeds:")
    for row in summary(runs):
        per_source = "  ".join(f"{k} {v:.4f}" for k, v in row["test_aiq_per_source"].items())
        print(
            f"share {row['fraction']:.2f} ({row['n_train']:>5} rows): AIQ val {row['val_aiq']:.4f} "
            f"test {row['test_aiq']:.4f}; test per source: {per_source}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "summary": summary(runs)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
