"""The named feature vector: rule-based parsers + fitted signals (difficulty, proxy solvers) on the embedding. A
featurizer trained with an LLM feature judge takes the judged rule features from it instead (judge.py).

Fitted signals never see a prompt's own label: training rows get out-of-fold difficulty and leave-one-out
neighbours, the same view a new prompt gets at inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router_model.parsers import RULE_FEATURES, ParsedPrompt, rule_features

N_NEIGHBOURS = 16
RIDGE_ALPHA = 1.0
DIFFICULTY_FOLDS = 5


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    description: str


def feature_infos(models: Sequence[str]) -> list[FeatureInfo]:
    infos = [FeatureInfo(f.name, f.description) for f in RULE_FEATURES]
    infos += [
        FeatureInfo("difficulty_score", "predicted share of models that fail this prompt (0 easy … 1 hard)"),
        FeatureInfo("difficulty_level", "difficulty bucket: 0 easy, 0.5 medium, 1 hard (training tertiles)"),
    ]
    infos += [
        FeatureInfo(f"proxy_success[{m}]", f"similar training prompts that {m} solved (similarity-weighted)")
        for m in models
    ]
    return infos


def ridge(x: np.ndarray, y: np.ndarray, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """Closed-form ridge regression with a bias column; returns (d + 1,) weights."""
    xb = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])
    reg = alpha * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ y)


def apply_ridge(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ w[:-1] + w[-1]


@dataclass
class FittedSignals:
    """What the featurizer learns from training data; saved in the checkpoint."""

    bank_embeddings: np.ndarray  # (N, 384) training query embeddings
    bank_quality: np.ndarray  # (N, m) their recorded quality
    difficulty_w: np.ndarray  # (385,) ridge: embedding → mean quality across models
    difficulty_cuts: np.ndarray  # (2,) tertiles of the training difficulty score


class Featurizer:
    """Prompt text + embedding → (n, F) named features."""

    def __init__(self, models: Sequence[str], signals: FittedSignals, judge_model: str | None = None) -> None:
        self.models = tuple(models)
        self.signals = signals
        self.judge_model = judge_model  # the LLM whose judgements stand in for parsed rule features (judge.py)
        self.infos = feature_infos(self.models)
        self._bank = signals.bank_embeddings.astype(np.float32)
        self._train_difficulty: np.ndarray | None = None  # set by fit(): out-of-fold, for the training rows only

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.infos]

    @classmethod
    def fit(
        cls,
        models: Sequence[str],
        embeddings: np.ndarray,
        quality: np.ndarray,
        seed: int,
        judge_model: str | None = None,
    ) -> Featurizer:
        difficulty = 1.0 - _out_of_fold_mean_quality(embeddings, quality, seed)
        signals = FittedSignals(
            bank_embeddings=embeddings.astype(np.float16),
            bank_quality=quality.astype(np.float32),
            difficulty_w=ridge(embeddings.astype(np.float64), quality.mean(axis=1)),
            difficulty_cuts=np.quantile(difficulty, [1 / 3, 2 / 3]),
        )
        featurizer = cls(models, signals, judge_model)
        featurizer._train_difficulty = difficulty
        return featurizer

    def transform(
        self,
        prompts: Sequence[str],
        embeddings: np.ndarray,
        exclude: np.ndarray | None = None,
        difficulty: np.ndarray | None = None,
        judged: np.ndarray | None = None,
    ) -> np.ndarray:
        """Features for `prompts`; `exclude[i]` is the bank row of prompt i itself (training rows only). `judged`:
        the judge's rule features, NaN where the parsers' stand (required when the featurizer has a judge)."""
        rules = np.array([rule_features(ParsedPrompt.of(p)) for p in prompts], dtype=np.float32)
        rules = rules.reshape(len(prompts), len(RULE_FEATURES))
        if (judged is None) != (self.judge_model is None):
            raise ValueError(
                f"these features are judged by {self.judge_model}: pass its judgements"
                if self.judge_model
                else "these features are parsed; judgements were passed for them"
            )
        if judged is not None:
            rules = np.where(np.isnan(judged), rules, judged).astype(np.float32)
        if difficulty is None:
            difficulty = 1.0 - apply_ridge(self.signals.difficulty_w, embeddings.astype(np.float64))
        level = np.searchsorted(self.signals.difficulty_cuts, difficulty) / 2.0
        proxy = self.proxy_success(embeddings, exclude)
        return np.hstack([rules, difficulty[:, None], level[:, None], proxy]).astype(np.float32)

    def transform_training(
        self, prompts: Sequence[str], embeddings: np.ndarray, judged: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of the training rows themselves, with out-of-fold difficulty and leave-one-out neighbours."""
        if self._train_difficulty is None:
            raise RuntimeError("transform_training needs a Featurizer made by fit()")
        return self.transform(prompts, embeddings, np.arange(len(prompts)), self._train_difficulty, judged)

    def proxy_success(self, embeddings: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """(n, m): similarity-weighted success rate of each model on the nearest training prompts."""
        sims = embeddings.astype(np.float32) @ self._bank.T  # (n, N)
        if exclude is not None:
            sims[np.arange(len(sims)), exclude] = -np.inf
        k = min(N_NEIGHBOURS, self._bank.shape[0] - (exclude is not None))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (n, k)
        weights = np.exp(np.take_along_axis(sims, top, axis=1) * 10.0)  # (n, k)
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkm->nm", weights, self.signals.bank_quality[top])


def _out_of_fold_mean_quality(embeddings: np.ndarray, quality: np.ndarray, seed: int) -> np.ndarray:
    target = quality.mean(axis=1)
    folds = np.random.default_rng(seed).integers(0, DIFFICULTY_FOLDS, size=len(target))
    predicted = np.empty_like(target)
    x = embeddings.astype(np.float64)
    for fold in range(DIFFICULTY_FOLDS):
        held = folds == fold
        predicted[held] = apply_ridge(ridge(x[~held], target[~held]), x[held])
    return predicted
