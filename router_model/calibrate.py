"""A new model without retraining: one weight vector fitted on the frozen network's shared representation.

The paper's claim: adding a model needs only "capability scoring and an appended weight vector". The last layer
scores model j as w_j · h(x) + b_j; a new model gets its own (w, b) by ridge regression of its recorded quality
on h(x), everything else frozen. Profiles are saved beside the checkpoint in calibrated/<name>.npz and .json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router_model.costs import CostModel
from router_model.features import apply_ridge, ridge

CALIBRATED_DIR = "calibrated"
HOLDOUT_FRACTION = 0.2
ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)
CV_FOLDS = 5


@dataclass(frozen=True)
class CalibratedProfile:
    name: str
    weight: np.ndarray  # (256,)
    bias: float
    cost_model: CostModel | None = None  # dollars per query from prompt length, when costs were given
    card: dict[str, Any] = field(default_factory=dict)

    def score(self, hidden: np.ndarray) -> np.ndarray:
        """(n,) predicted quality from the shared representation (n, 256)."""
        return hidden @ self.weight + self.bias

    def save(self, checkpoint_dir: Path) -> Path:
        directory = Path(checkpoint_dir) / CALIBRATED_DIR
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / file_stem(self.name)
        arrays: dict[str, np.ndarray] = {"weight": self.weight, "bias": np.array([self.bias])}
        if self.cost_model is not None:
            arrays |= {"cost_intercept": self.cost_model.intercept, "cost_per_char": self.cost_model.per_char}
        np.savez(stem.with_suffix(".npz"), **arrays)  # type: ignore[arg-type]
        stem.with_suffix(".json").write_text(json.dumps({"name": self.name, **self.card}, indent=2) + "\n")
        return stem.with_suffix(".json")


def calibrated_names(checkpoint_dir: Path) -> tuple[str, ...]:
    """Names of the calibrated profiles beside a checkpoint, without loading their weights."""
    directory = Path(checkpoint_dir) / CALIBRATED_DIR
    return tuple(json.loads(p.read_text())["name"] for p in sorted(directory.glob("*.json")))


def load_calibrated(checkpoint_dir: Path) -> list[CalibratedProfile]:
    directory = Path(checkpoint_dir) / CALIBRATED_DIR
    profiles = []
    for card_path in sorted(directory.glob("*.json")):
        card = json.loads(card_path.read_text())
        with np.load(card_path.with_suffix(".npz")) as arrays:
            cost = CostModel(arrays["cost_intercept"], arrays["cost_per_char"]) if "cost_per_char" in arrays else None
            profiles.append(CalibratedProfile(card.pop("name"), arrays["weight"], float(arrays["bias"][0]), cost, card))
    return profiles


def fit_profile(
    name: str, hidden: np.ndarray, quality: np.ndarray, n_chars: np.ndarray, cost: np.ndarray | None, seed: int
) -> CalibratedProfile:
    """Held-out error from an 80/20 split first, then the weights refitted on every row."""
    hidden = hidden.astype(np.float64)
    order = np.random.default_rng(seed).permutation(len(quality))
    n_hold = int(round(HOLDOUT_FRACTION * len(quality))) if len(quality) >= 10 else 0
    held, fit = order[:n_hold], order[n_hold:]
    alpha = choose_alpha(hidden[fit], quality[fit], seed)
    card: dict[str, Any] = {"rows": int(len(quality)), "held_out_rows": int(n_hold), "seed": seed, "alpha": alpha}
    if n_hold:
        w = ridge(hidden[fit], quality[fit], alpha)
        error = apply_ridge(w, hidden[held]) - quality[held]
        card |= {
            "held_out_mse": float(np.mean(error**2)),
            "held_out_mae": float(np.mean(np.abs(error))),
            "held_out_mse_of_mean": float(np.mean((quality[fit].mean() - quality[held]) ** 2)),
        }
    w = ridge(hidden, quality, choose_alpha(hidden, quality, seed))
    cost_model = CostModel.fit(n_chars, cost[:, None]) if cost is not None else None
    card["mean_quality"] = float(quality.mean())
    return CalibratedProfile(name, w[:-1], float(w[-1]), cost_model, card)


def choose_alpha(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The ridge strength with the lowest 5-fold error on the calibration rows themselves."""
    order = np.random.default_rng(seed).permutation(len(y))
    folds = [f for f in np.array_split(order, min(CV_FOLDS, len(y))) if len(f)]

    def cv_error(alpha: float) -> float:
        error = 0.0
        for fold in folds:
            rest = np.setdiff1d(order, fold)
            error += float(((apply_ridge(ridge(x[rest], y[rest], alpha), x[fold]) - y[fold]) ** 2).sum())
        return error

    return min(ALPHAS, key=cv_error)


def file_stem(name: str) -> str:
    """calibrated/<stem>.json and .npz hold the profile `name`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
