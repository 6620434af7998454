"""How close does calibrating a new model come to retraining with it? Each RouterBench model in turn is held out
of training as if it were new, then calibrated from k of its training rows; routing quality on the held-out test
split is compared with a network trained on all models (same data, split, seed and code).

    python -m router_model.calibration_study --data ../shared/data/routerbench_subset.parquet \
        --json docs/results/calibration.json
"""

from __future__ import annotations

import argparse
import json
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


def network_outputs(prepared: Prepared, config: TrainConfig, label: str) -> dict[str, np.ndarray]:
    """Train on `prepared`'s models; the shared representation of train and test rows and the test scores."""
    featurizer, _, arrays = featurize(prepared, config.seed)
    net_config = LLMRankConfig(n_features=len(featurizer.names), n_models=len(prepared.data.models))
    net = fit_network(config, net_config, arrays["train"], arrays["val"], 0.0, label)
    with torch.inference_mode():
        return {
            "hidden_train": net.hidden(arrays["train"].features, arrays["train"].embeddings).double().numpy(),
            "hidden_test": net.hidden(arrays["test"].features, arrays["test"].embeddings).double().numpy(),
            "test": net(arrays["test"].features, arrays["test"].embeddings).double().numpy(),
        }


def routed_quality(quality_hat: np.ndarray, cost_hat: np.ndarray, prepared: Prepared, lam: float) -> float:
    return outcome(choose(quality_hat, cost_hat, lam), prepared.parts["test"]).quality


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tiers", type=Path, default=Path(__file__).resolve().parents[1] / "config" / "tiers.yaml")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = TrainConfig(data=args.data, out=Path("unused"), ablations=False, progress=False)
    tiers = {k: float(v) for k, v in yaml.safe_load(args.tiers.read_text())["tiers"].items() if k != "cost"}
    prepared = prepare(config)
    models = prepared.data.models
    train, test = prepared.parts["train"], prepared.parts["test"]
    cost_hat = CostModel.fit(np.array([len(p) for p in train.prompts]), train.cost).predict(
        np.array([len(p) for p in test.prompts])
    )
    full = network_outputs(prepared, config, "all models")["test"]
    rng = np.random.default_rng(config.seed)
    results = []
    for j, held in enumerate(models):
        others = tuple(m for m in models if m != held)
        outputs = network_outputs(prepared.select_models(others), config, f"without {held}")
        row: dict[str, Any] = {
            "held_out": held,
            "full": {t: routed_quality(full, cost_hat, prepared, lam) for t, lam in tiers.items()},
        }
        for k in ROWS:
            scores: dict[str, list[float]] = {t: [] for t in tiers}
            for _ in range(REPEATS):
                pick = rng.choice(len(train), size=min(k, len(train)), replace=False)
                x, y = outputs["hidden_train"][pick], train.quality[pick, j]
                w = ridge(x, y, choose_alpha(x, y, config.seed))
                quality_hat = np.insert(outputs["test"], j, apply_ridge(w, outputs["hidden_test"]), axis=1)
                for t, lam in tiers.items():
                    scores[t].append(routed_quality(quality_hat, cost_hat, prepared, lam))
            row[f"rows_{k}"] = {t: float(np.mean(v)) for t, v in scores.items()}
        results.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        t: {f"rows_{k}": float(np.mean([r[f"rows_{k}"][t] - r["full"][t] for r in results])) for k in ROWS}
        for t in tiers
    }
    worst = {
        t: {f"rows_{k}": float(min(r[f"rows_{k}"][t] - r["full"][t] for r in results)) for k in ROWS} for t in tiers
    }
    report = {"tiers": tiers, "rows": list(ROWS), "repeats": REPEATS, "per_model": results,
              "mean_gap": summary, "worst_gap": worst}  # fmt: skip
    print(json.dumps({"mean_gap": summary, "worst_gap": worst}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
