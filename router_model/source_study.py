"""How should training treat sources that grade differently? Each option is trained on the same split and scored
per source on validation and test, as the gateway serves it (no source known):

- `plain`: one output per model, trained on every source's qualities as they are;
- `source_input`: the network also gets each training prompt's source (one-hot); serving gives each source's
  share of the training rows instead (`llmrank train --source-input`).

    python -m router_model.source_study --data ../shared/data/corpus ../shared/data/routerbench_subset.parquet \
        --json docs/results/source_study.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from router_model.commands import scored_splits
from router_model.train import TrainConfig, train

OPTIONS = {"plain": False, "source_input": True}  # name → TrainConfig.source_input


def study(data_paths: list[Path], seed: int, cache_dir: Path) -> dict[str, dict[str, Any]]:
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, source_input in OPTIONS.items():
            config = TrainConfig(
                data=tuple(data_paths), out=Path(scratch) / name, seed=seed, source_input=source_input,
                cache_dir=cache_dir, progress=False,
            )  # fmt: skip
            checkpoint = train(config)
            results[name] = {"version": checkpoint.version, **scored_splits(checkpoint, cache_dir)}
            print(f"{name:<14}" + _line(results[name]), flush=True)
    return results


def _line(result: dict[str, Any]) -> str:
    parts = []
    for part in ("val", "test"):
        sources = "  ".join(f"{s} {v['aiq']:.4f}" for s, v in result[part].items() if s != "aiq")
        parts.append(f"{part}: AIQ {result[part]['aiq']:.4f} ({sources})")
    return "  |  ".join(parts)


def main() -> None:
    from router_model.encoder import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = study(args.data, args.seed, DEFAULT_CACHE_DIR)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
