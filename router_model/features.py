"""The named feature vector: rule-based parsers + fitted signals (difficulty, proxy solvers) on the embedding. A
featurizer trained with an LLM feature judge takes the judged rule features from it instead (judge.py).

Fitted signals never see a prompt's own label: training rows get out-of-fold difficulty and leave-one-out
neighbours, the same view a new prompt gets at inference. They use only the outcomes that exist: a model's proxy
success is read from the neighbours that have its outcome (its training mean where none has), and difficulty is the
mean over the models that graded a prompt. Every value is finite for any text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router_model.parsers import RULE_FEATURES, ParsedPrompt, rule_features

N_NEIGHBOURS = 16  # per source: a model graded by one source reads that source's nearest prompts
RIDGE_ALPHA = 1.0
DIFFICULTY_FOLDS = 5
BANK_PER_SOURCE = 3000  # neighbour-bank rows kept per source: the bank is most of the checkpoint's size
SIMILARITY_SHARPNESS = 10.0
PROXY_CHUNK = 2048  # rows scored at once: bounds memory at (rows × bank × models)


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    description: str


def feature_infos(models: Sequence[str], sources: Sequence[str] = ()) -> list[FeatureInfo]:
    infos = [FeatureInfo(f.name, f.description) for f in RULE_FEATURES]
    infos += [
        FeatureInfo("difficulty_score", "predicted share of models that fail this prompt (0 easy … 1 hard)"),
        FeatureInfo("difficulty_level", "difficulty bucket: 0 easy, 0.5 medium, 1 hard (training tertiles)"),
    ]
    infos += [
        FeatureInfo(f"proxy_success[{m}]", f"similar training prompts that {m} solved (similarity-weighted)")
        for m in models
    ]
    infos += [
        FeatureInfo(f"source[{s}]", f"training: 1 for prompts graded by {s}; serving: {s}'s share of training")
        for s in sources
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


def ridge_per_model(x: np.ndarray, quality: np.ndarray, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """(d + 1, m): one ridge regression per model, each on the rows that graded it (the `ridge` baseline)."""
    x = x.astype(np.float64)
    weights = np.zeros((x.shape[1] + 1, quality.shape[1]))
    for j in range(quality.shape[1]):
        graded = ~np.isnan(quality[:, j])
        if graded.sum() > 1:
            weights[:, j] = ridge(x[graded], quality[graded, j], alpha)
    return weights


@dataclass
class FittedSignals:
    """What the featurizer learns from training data; saved in the checkpoint."""

    bank_embeddings: np.ndarray  # (N, 384) int8: a sample of training query embeddings × 127, sorted by source
    bank_quality: np.ndarray  # (N, m) their recorded quality, NaN where a model has no outcome
    bank_offsets: np.ndarray  # (S + 1,) where each source's rows start in the bank
    model_mean: np.ndarray  # (m,) each model's mean training quality: its proxy where no neighbour graded it
    difficulty_w: np.ndarray  # (385,) ridge: embedding → mean quality over the models that graded a prompt
    difficulty_cuts: np.ndarray  # (2,) tertiles of the training difficulty score
    ridge_w: np.ndarray  # (385, m) the `ridge` baseline: embedding → each model's quality
    source_prior: np.ndarray  # (S,) share of training rows per source: the served value of source[...] features


class Featurizer:
    """Prompt text + embedding → (n, F) named features."""

    def __init__(
        self,
        models: Sequence[str],
        signals: FittedSignals,
        judge_model: str | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        """`sources`: the training sources given to the network as inputs (empty: the network is not told)."""
        self.models = tuple(models)
        self.signals = signals
        self.judge_model = judge_model  # the LLM whose judgements stand in for parsed rule features (judge.py)
        self.sources = tuple(sources)
        self.infos = feature_infos(self.models, self.sources)
        self._bank = signals.bank_embeddings.astype(np.float32) / 127.0
        self._train_difficulty: np.ndarray | None = None  # set by fit(): out-of-fold, for the training rows only
        self._train_bank_row: np.ndarray | None = None  # set by fit(): each training row's bank row, or -1
        self._train_sources: np.ndarray | None = None  # set by fit(): each training row's source

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
        sources: np.ndarray | None = None,
        source_input: bool = False,
    ) -> Featurizer:
        """`sources`: each training row's source (one neighbour bank per source; None: one source)."""
        sources = np.full(len(quality), "all") if sources is None else np.asarray(sources)
        difficulty = 1.0 - _out_of_fold_mean_quality(embeddings, quality, seed)
        bank_rows = _bank_sample(sources, seed)
        names, counts = np.unique(sources, return_counts=True)
        offsets = np.searchsorted(sources[bank_rows], names)
        signals = FittedSignals(
            bank_embeddings=np.round(embeddings[bank_rows] * 127.0).astype(np.int8),
            bank_quality=quality[bank_rows].astype(np.float16).astype(np.float32),  # as stored
            bank_offsets=np.append(offsets, len(bank_rows)),
            model_mean=_mean_per_model(quality),
            difficulty_w=ridge(embeddings.astype(np.float64), _mean_graded(quality)),
            difficulty_cuts=np.quantile(difficulty, [1 / 3, 2 / 3]),
            ridge_w=ridge_per_model(embeddings, quality),
            source_prior=counts / counts.sum(),
        )
        featurizer = cls(models, signals, judge_model, tuple(names.tolist()) if source_input else ())
        featurizer._train_difficulty = difficulty
        position = np.full(len(sources), -1)
        position[bank_rows] = np.arange(len(bank_rows))
        featurizer._train_bank_row = position
        featurizer._train_sources = sources
        return featurizer

    def transform(
        self,
        prompts: Sequence[str],
        embeddings: np.ndarray,
        exclude: np.ndarray | None = None,
        difficulty: np.ndarray | None = None,
        judged: np.ndarray | None = None,
        sources: np.ndarray | None = None,
    ) -> np.ndarray:
        """Features for `prompts`; `exclude[i]` is the bank row of prompt i itself (training rows only; -1 where it
        is not in the bank). `judged`: the judge's rule features, NaN where the parsers' stand (required when the
        featurizer has a judge). `sources`: each prompt's source, given in training only; served prompts get each
        source's share of training."""
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
        parts = [rules, difficulty[:, None], level[:, None], proxy, self._source_inputs(len(prompts), sources)]
        return np.nan_to_num(np.hstack(parts).astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)

    def transform_training(
        self, prompts: Sequence[str], embeddings: np.ndarray, judged: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of the training rows themselves, with out-of-fold difficulty and leave-one-out neighbours."""
        if self._train_difficulty is None or self._train_bank_row is None:
            raise RuntimeError("transform_training needs a Featurizer made by fit()")
        return self.transform(
            prompts, embeddings, self._train_bank_row, self._train_difficulty, judged, self._train_sources
        )

    def _source_inputs(self, n: int, sources: np.ndarray | None) -> np.ndarray:
        if not self.sources:
            return np.zeros((n, 0), dtype=np.float32)
        if sources is None:
            return np.tile(self.signals.source_prior.astype(np.float32), (n, 1))
        return (np.asarray(sources)[:, None] == np.array(self.sources)[None, :]).astype(np.float32)

    def proxy_success(self, embeddings: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """(n, m): similarity-weighted quality of each model on each source's nearest training prompts, counting
        only the neighbours that graded the model; the model's training mean where none did."""
        if len(embeddings) > PROXY_CHUNK:
            chunks = range(0, len(embeddings), PROXY_CHUNK)
            return np.concatenate(
                [self.proxy_success(embeddings[i : i + PROXY_CHUNK], _rows(exclude, i, PROXY_CHUNK)) for i in chunks]
            )
        sims = embeddings.astype(np.float32) @ self._bank.T  # (n, N)
        if exclude is not None:
            inside = exclude >= 0
            sims[np.flatnonzero(inside), exclude[inside]] = -np.inf
        offsets = self.signals.bank_offsets
        tops = []
        for start, end in zip(offsets[:-1], offsets[1:], strict=True):
            k = min(N_NEIGHBOURS, int(end - start) - 1)
            if k >= 1:
                tops.append(start + np.argpartition(-sims[:, start:end], k - 1, axis=1)[:, :k])
        top = np.concatenate(tops, axis=1)  # (n, S·k)
        near = np.take_along_axis(sims, top, axis=1)
        weights = np.where(np.isfinite(near), np.exp(SIMILARITY_SHARPNESS * (near - 1.0)), 0.0)  # (n, S·k)
        quality = self.signals.bank_quality[top]  # (n, S·k, m)
        graded = ~np.isnan(quality)
        mass = np.einsum("nk,nkm->nm", weights, graded)
        total = np.einsum("nk,nkm->nm", weights, np.where(graded, quality, 0.0))
        mean = self.signals.model_mean[None, :]
        return np.where(mass > 1e-12, total / np.maximum(mass, 1e-12), mean)

    def ridge_quality(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, m) the `ridge` baseline's predicted quality."""
        w = self.signals.ridge_w
        return embeddings.astype(np.float64) @ w[:-1] + w[-1]


def _rows(values: np.ndarray | None, start: int, n: int) -> np.ndarray | None:
    return None if values is None else values[start : start + n]


def _bank_sample(sources: np.ndarray, seed: int) -> np.ndarray:
    """Training rows kept in the neighbour bank: up to BANK_PER_SOURCE per source, grouped by source."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in sorted(set(sources.tolist())):
        idx = np.flatnonzero(sources == name)
        rows.append(np.sort(rng.permutation(idx)[:BANK_PER_SOURCE]))
    return np.concatenate(rows)


def _mean_per_model(quality: np.ndarray) -> np.ndarray:
    """Each model's mean quality over the prompts that graded it."""
    graded = ~np.isnan(quality)
    return np.where(graded, quality, 0.0).sum(axis=0) / np.maximum(graded.sum(axis=0), 1)


def _mean_graded(quality: np.ndarray) -> np.ndarray:
    """Each prompt's mean quality over the models that graded it."""
    graded = ~np.isnan(quality)
    return np.where(graded, quality, 0.0).sum(axis=1) / np.maximum(graded.sum(axis=1), 1)


def _out_of_fold_mean_quality(embeddings: np.ndarray, quality: np.ndarray, seed: int) -> np.ndarray:
    target = _mean_graded(quality)
    folds = np.random.default_rng(seed).integers(0, DIFFICULTY_FOLDS, size=len(target))
    predicted = np.empty_like(target)
    x = embeddings.astype(np.float64)
    for fold in range(DIFFICULTY_FOLDS):
        held = folds == fold
        predicted[held] = apply_ridge(ridge(x[~held], target[~held]), x[held])
    return predicted
