"""How close does calibrating a new model come to retraining with it? Each RouterBench model in turn is held out
of training as if it were new, then calibrated from k of its training rows; routing quality on the held-out test
split is compared with a network trained on all models (same data, split, seed and code).

    python -m router_model.calibration_study --data ../shared/data/routerbench_subset.parquet \
        --json docs/results/calibration.json

One network's routing quality moves by a point or two with nothing but its initialisation, so both sides of every
gap are averaged over networks trained from several initialisation seeds (`--init-seeds`); the split and the
featurizer stay those of the data seed (7), as in `llmrank train`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from router_model.calibrate import choose_alpha
from router_model.costs import CostModel
from router_model.evaluate import outcome
from router_model.features import apply_ridge, ridge
from router_model.model import LLMRankConfig
from router_model.policy import choose
from router_model.train import Prepared, TrainConfig, featurize, fit_network, prepare

ROWS = (50, 100, 200, 500)
REPEATS = 3
INIT_SEEDS = (7, 8, 9, 10, 11)
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


def routed_quality(quality_hat: np.ndarray, cost_hat: np.ndarray, prepared: Prepared, lam: float) -> float:
    return outcome(choose(quality_hat, cost_hat, lam), prepared.parts["test"]).quality


def calibrated_scores(
    outputs: dict[str, np.ndarray], held: int, quality: np.ndarray, pick: np.ndarray, seed: int
) -> np.ndarray:
    """The ten-model network's test scores with the held-out model's column fitted from the rows `pick`."""
    x, y = outputs["hidden_train"][pick], quality[pick, held]
    w = ridge(x, y, choose_alpha(x, y, seed))
    return np.insert(outputs["test"], held, apply_ridge(w, outputs["hidden_test"]), axis=1)


def study(
    prepared: Prepared,
    config: TrainConfig,
    tiers: dict[str, float],
    rows: tuple[int, ...] = ROWS,
    init_seeds: tuple[int, ...] = INIT_SEEDS,
) -> list[dict[str, Any]]:
    """Per held-out model: routed test quality per tier, of full retraining and after calibrating from k rows, each
    averaged over the initialisation seeds (and, for calibration, over REPEATS draws of the k rows)."""
    models, train, test = prepared.data.models, prepared.parts["train"], prepared.parts["test"]
    cost_hat = CostModel.fit(np.array([len(p) for p in train.prompts]), train.cost).predict(
        np.array([len(p) for p in test.prompts])
    )
    full = network_outputs(prepared, config, init_seeds, "all models")
    full_by_seed = {s: {t: routed_quality(o["test"], cost_hat, prepared, lam) for t, lam in tiers.items()}
                    for s, o in full.items()}  # fmt: skip
    rng = np.random.default_rng(config.seed)
    results = []
    for j, held in enumerate(models):
        outputs = network_outputs(prepared.select_models(tuple(m for m in models if m != held)), config,
                                  init_seeds, f"without {held}")  # fmt: skip
        row: dict[str, Any] = {"held_out": held, "full": _mean_by_tier(full_by_seed.values()),
                               "full_by_seed": full_by_seed}  # fmt: skip
        for k in rows:
            picks = [rng.choice(len(train), size=min(k, len(train)), replace=False) for _ in range(REPEATS)]
            scores = [
                {t: routed_quality(calibrated_scores(out, j, train.quality, pick, config.seed), cost_hat, prepared, lam)
                 for t, lam in tiers.items()}
                for out in outputs.values() for pick in picks
            ]  # fmt: skip
            row[f"rows_{k}"] = _mean_by_tier(scores)
        results.append(row)
        print(json.dumps({key: v for key, v in row.items() if key != "full_by_seed"}), flush=True)
    return results


def _mean_by_tier(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    listed = list(scores)
    return {t: statistics.mean(s[t] for s in listed) for t in listed[0]}


def gaps(results: list[dict[str, Any]], rows: tuple[int, ...] = ROWS) -> dict[str, dict[str, dict[str, float]]]:
    """Calibrated − full quality per tier and row count: the mean over held-out models and the worst one."""
    tiers = list(results[0]["full"])
    per_model = {t: {k: [r[f"rows_{k}"][t] - r["full"][t] for r in results] for k in rows} for t in tiers}
    return {
        "mean_gap": {t: {f"rows_{k}": float(np.mean(v)) for k, v in by_k.items()} for t, by_k in per_model.items()},
        "worst_gap": {t: {f"rows_{k}": float(min(v)) for k, v in by_k.items()} for t, by_k in per_model.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tiers", type=Path, default=TIERS_FILE)
    parser.add_argument("--init-seeds", type=int, nargs="+", default=list(INIT_SEEDS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = TrainConfig(data=args.data, out=Path("unused"), ablations=False, progress=False)
    tiers = {k: float(v) for k, v in yaml.safe_load(args.tiers.read_text())["tiers"].items() if k != "cost"}
    init_seeds = tuple(args.init_seeds)
    results = study(prepare(config), config, tiers, ROWS, init_seeds)
    summary = gaps(results)
    print(json.dumps(summary, indent=2))
    if args.json:
        report = {"tiers": tiers, "rows": list(ROWS), "repeats": REPEATS, "init_seeds": list(init_seeds),
                  "per_model": results, **summary}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
