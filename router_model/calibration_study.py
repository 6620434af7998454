"""How close does calibrating a new model come to retraining with it? Each chosen model in turn is held out of
training as if it were new, then calibrated from k of its training rows; routing on the test split of its own source
(the source that graded it most), over that source's priced pool, is compared with a network trained on every model
(same data, split, seed and code): quality at each tier and AIQ.

    python -m router_model.calibration_study --data ../shared/data/corpus ../shared/data/routerbench_subset.parquet \
        --json docs/results/calibration.json

One network's routing moves with nothing but its initialisation, so both sides of every gap are averaged over
networks trained from several initialisation seeds (`--init-seeds`); the split and the featurizer stay those of the
data seed (7), as in `llmrank train`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from router_model.calibrate import choose_alpha
from router_model.costs import CostModel
from router_model.evaluate import Predictions, evaluate
from router_model.features import apply_ridge, ridge
from router_model.model import LLMRankConfig
from router_model.train import Prepared, TrainConfig, featurize, fit_network, prepare

ROWS = (50, 100, 200, 500)
REPEATS = 3
INIT_SEEDS = (7, 8)
# a strong and dear model, cheap ones, a code model, a chat model: each from the source that graded it most
HELD_OUT = (
    "gemini-1.5-pro-002",
    "deepseek-ai/DeepSeek-Coder-V2-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "FuseAI/FuseChat-Gemma-2-9B-Instruct",
)
TIERS_FILE = Path(__file__).resolve().parents[1] / "config" / "tiers.yaml"


def network_outputs(
    prepared: Prepared, config: TrainConfig, init_seeds: tuple[int, ...], label: str
) -> dict[int, dict[str, np.ndarray]]:
    """Per initialisation seed, a network trained on `prepared`'s models: the shared representation of train and
    test rows and the test scores."""
    featurizer, _, arrays = featurize(prepared, config.seed)
    net_config = LLMRankConfig(n_features=len(featurizer.names), n_models=len(prepared.data.models))
    outputs = {}
    for seed in init_seeds:
        net = fit_network(replace(config, seed=seed), net_config, arrays["train"], arrays["val"], 0.0, label)
        with torch.inference_mode():
            outputs[seed] = {
                "hidden_train": net.hidden(arrays["train"].features, arrays["train"].embeddings).double().numpy(),
                "hidden_test": net.hidden(arrays["test"].features, arrays["test"].embeddings).double().numpy(),
                "test": net(arrays["test"].features, arrays["test"].embeddings).double().numpy(),
            }
    return outputs


def home_source(prepared: Prepared, model: str) -> str:
    """The source that graded `model` on the most training rows."""
    train = prepared.parts["train"]
    graded = train.observed[:, train.models.index(model)]
    names, counts = np.unique(train.sources[graded], return_counts=True)
    return str(names[counts.argmax()])


def routing_scores(
    quality_hat: np.ndarray, cost_hat: np.ndarray, prepared: Prepared, source: str, tiers: Mapping[str, float]
) -> dict[str, float]:
    """Quality at each tier and AIQ on `source`'s test rows, over its priced pool."""
    test = prepared.parts["test"]
    rows = np.flatnonzero(test.sources == source)
    report = evaluate(test.subset(rows), Predictions({"quality": quality_hat[rows]}, cost_hat[rows]), tiers)
    by_name = {r["name"]: r["quality"] for r in report["rows"]}
    return {tier: by_name[tier] for tier in tiers} | {"aiq": report["aiq"]}


def calibrated_scores(
    outputs: dict[str, np.ndarray], held: int, quality: np.ndarray, pick: np.ndarray, seed: int
) -> np.ndarray:
    """The network-without-the-model's test scores with the held-out model's column fitted from the rows `pick`."""
    x, y = outputs["hidden_train"][pick], quality[pick, held]
    w = ridge(x, y, choose_alpha(x, y, seed))
    column = np.clip(apply_ridge(w, outputs["hidden_test"]), 0.0, 1.0)
    return np.insert(outputs["test"], held, column, axis=1)


def study(
    prepared: Prepared,
    config: TrainConfig,
    tiers: dict[str, float],
    rows: tuple[int, ...] = ROWS,
    init_seeds: tuple[int, ...] = INIT_SEEDS,
    held_out: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per held-out model: routing on its source's test split, of full retraining and after calibrating from k of its
    graded training rows, each averaged over the initialisation seeds (and, for calibration, over REPEATS draws)."""
    models, train, test = prepared.data.models, prepared.parts["train"], prepared.parts["test"]
    cost_hat = CostModel.fit(np.array([len(p) for p in train.prompts]), train.cost).predict(
        np.array([len(p) for p in test.prompts])
    )
    full = network_outputs(prepared, config, init_seeds, "all models")
    rng = np.random.default_rng(config.seed)
    results = []
    for held in models if held_out is None else held_out:
        j = models.index(held)
        source = home_source(prepared, held)
        full_by_seed = {s: routing_scores(o["test"], cost_hat, prepared, source, tiers) for s, o in full.items()}
        outputs = network_outputs(prepared.select_models(tuple(m for m in models if m != held)), config,
                                  init_seeds, f"without {held}")  # fmt: skip
        graded = np.flatnonzero(train.observed[:, j])
        row: dict[str, Any] = {"held_out": held, "source": source, "graded_training_rows": int(len(graded)),
                               "full": _mean_by_key(full_by_seed.values()), "full_by_seed": full_by_seed}  # fmt: skip
        for k in rows:
            picks = [rng.choice(graded, size=min(k, len(graded)), replace=False) for _ in range(REPEATS)]
            scores = [
                routing_scores(calibrated_scores(out, j, train.quality, pick, config.seed), cost_hat, prepared,
                               source, tiers)
                for out in outputs.values() for pick in picks
            ]  # fmt: skip
            row[f"rows_{k}"] = _mean_by_key(scores)
        results.append(row)
        print(json.dumps({key: v for key, v in row.items() if key != "full_by_seed"}), flush=True)
    return results


def _mean_by_key(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    listed = list(scores)
    return {t: statistics.mean(s[t] for s in listed) for t in listed[0]}


def gaps(results: list[dict[str, Any]], rows: tuple[int, ...] = ROWS) -> dict[str, dict[str, dict[str, float]]]:
    """Calibrated − full, per tier (and AIQ) and row count: the mean over held-out models and the worst one."""
    keys = list(results[0]["full"])
    per_model = {t: {k: [r[f"rows_{k}"][t] - r["full"][t] for r in results] for k in rows} for t in keys}
    return {
        "mean_gap": {t: {f"rows_{k}": float(np.mean(v)) for k, v in by_k.items()} for t, by_k in per_model.items()},
        "worst_gap": {t: {f"rows_{k}": float(min(v)) for k, v in by_k.items()} for t, by_k in per_model.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--tiers", type=Path, default=TIERS_FILE)
    parser.add_argument("--models", nargs="+", default=list(HELD_OUT), help="the models to hold out, in turn")
    parser.add_argument("--init-seeds", type=int, nargs="+", default=list(INIT_SEEDS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = TrainConfig(data=tuple(args.data), out=Path("unused"), ablations=False, progress=False)
    tiers = {k: float(v) for k, v in yaml.safe_load(args.tiers.read_text())["tiers"].items() if k != "cost"}
    init_seeds = tuple(args.init_seeds)
    results = study(prepare(config), config, tiers, ROWS, init_seeds, args.models)
    summary = gaps(results)
    print(json.dumps(summary, indent=2))
    if args.json:
        report = {"tiers": tiers, "rows": list(ROWS), "repeats": REPEATS, "init_seeds": list(init_seeds),
                  "per_model": results, **summary}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
