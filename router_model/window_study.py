"""Which token window should the router embed? For each window and seed, a network is trained and served on the
last W tokens of each prompt (`llmrank train --max-tokens W --serve-max-tokens W --seed S`); routing is scored per
source on that seed's validation and test splits, and the served router's cache-miss latency is timed on prompts of
100 and 1,000 tokens, one window after another in the same process.

    python -m router_model.window_study --data ../shared/data/corpus ../shared/data/routerbench_subset.parquet \
        --windows 32 64 128 256 --seeds 7 --json docs/results/window_study.json

The seed sets the split as well as the initialisation, so the spread across seeds shows how much of a difference
between windows is noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from router_model.commands import scored_splits
from router_model.router import Router
from router_model.train import TrainConfig, train

WORDS = "the model should answer which option best explains why the plant grows toward light".split()
LATENCY_REPEATS = 40


def study(data_paths: list[Path], windows: list[int], seeds: list[int], cache_dir: Path) -> list[dict[str, Any]]:
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for window in windows:
            for seed in seeds:
                out = Path(scratch) / f"w{window}_s{seed}"
                config = TrainConfig(
                    data=tuple(data_paths), out=out, seed=seed, max_tokens=window, serve_max_tokens=window,
                    cache_dir=cache_dir, progress=False,
                )  # fmt: skip
                checkpoint = train(config)
                runs.append({"window": window, "seed": seed, "version": checkpoint.version,
                             "trained_and_served": (checkpoint.encoder["trained_max_tokens"],
                                                    checkpoint.encoder["max_tokens"]),
                             "miss_ms_p50": miss_latency(out, cache_dir),
                             **scored_splits(checkpoint, cache_dir)})  # fmt: skip
                print(_line(runs[-1]), flush=True)
    return runs


def miss_latency(checkpoint_dir: Path, cache_dir: Path) -> dict[str, float]:
    """p50 ms of scoring a new prompt (encoder, features, network) of about 100 and 1,000 words."""
    router = Router.load(checkpoint_dir, cache_dir)
    router.warm_up()
    result = {}
    for words in (100, 1000):
        samples = []
        for i in range(LATENCY_REPEATS):
            prompt = f"{i} " + " ".join(WORDS[k % len(WORDS)] for k in range(words))
            started = time.perf_counter()
            router.quality(router.vectorize([prompt]))
            samples.append((time.perf_counter() - started) * 1000)
        result[f"{words}_words"] = statistics.median(samples)
    return result


def _line(run: dict[str, Any]) -> str:
    parts = [f"window {run['window']:>3}  seed {run['seed']:>3}  miss p50 {run['miss_ms_p50']['100_words']:.1f} ms"]
    for part in ("val", "test"):
        parts.append(f"{part}: AIQ {run[part]['aiq']:.4f}")
    return "  ".join(parts)


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per window, the mean over seeds of the validation and test AIQ (mean over sources), each source's test AIQ,
    and the miss latency."""
    rows = []
    for window in sorted({r["window"] for r in runs}):
        mine = [r for r in runs if r["window"] == window]
        row: dict[str, Any] = {"window": window}
        for part in ("val", "test"):
            row[f"{part}_aiq"] = statistics.mean(r[part]["aiq"] for r in mine)
        sources = [k for k in mine[0]["test"] if k != "aiq"]
        row["test_aiq_per_source"] = {s: statistics.mean(r["test"][s]["aiq"] for r in mine) for s in sources}
        row["aiq_both"] = (row["val_aiq"] + row["test_aiq"]) / 2
        for words in ("100_words", "1000_words"):
            row[f"miss_ms_{words}"] = statistics.mean(r["miss_ms_p50"][words] for r in mine)
        rows.append(row)
    return rows


def main() -> None:
    from router_model.encoder import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--windows", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = study(args.data, args.windows, args.seeds, DEFAULT_CACHE_DIR)
    print("\nmean over seeds:")
    for row in summary(runs):
        per_source = "  ".join(f"{s} {v:.4f}" for s, v in row["test_aiq_per_source"].items())
        print(
            f"window {row['window']:>3}: AIQ val {row['val_aiq']:.4f} test {row['test_aiq']:.4f}; "
            f"miss p50 {row['miss_ms_100_words']:.1f} ms (100 words), {row['miss_ms_1000_words']:.1f} ms (1,000); "
            f"test per source: {per_source}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "summary": summary(runs)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
