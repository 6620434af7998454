"""Training, top to bottom: data → split → embeddings → features → heads → tier λ → test metrics → checkpoint."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from router_model.checkpoint import Checkpoint, Head, round_to_float16
from router_model.costs import CostModel
from router_model.data import FilterReport, RouterBenchData, load_routerbench, stratified_share, stratified_split
from router_model.encoder import (
    DEFAULT_CACHE_DIR,
    ENCODER_NAME,
    SERVED_MAX_TOKENS,
    Encoder,
    Precision,
    cached_embeddings,
)
from router_model.evaluate import Predictions, evaluate, sweep
from router_model.features import Featurizer
from router_model.judge import DEFAULT_CONNECTION, JudgeConnection, judgements_for, without_judgement
from router_model.loss import llmrank_loss, utility
from router_model.model import LLMRankConfig, LLMRankNet
from router_model.text import embedding_text
from router_model.tiers import pick_tiers


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    lambdas: tuple[float, ...] = ()  # extra per-λ heads (the paper's design); λ = 0 is always trained
    seed: int = 7
    split_seed: int | None = None  # the split's own seed, where a study keeps one split across seeds; else `seed`
    train_fraction: float = 1.0  # a share of the training part, taken per benchmark (learning curves)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 1e-2
    patience: int = 10
    clip: float = 1.0
    max_tokens: int = SERVED_MAX_TOKENS  # the token window (from the end of the question) the network learns from
    precision: Precision = "fp32"  # the encoder the network learns from
    serve_max_tokens: int = SERVED_MAX_TOKENS  # the window the router serves with; tiers and test metrics use it
    serve_precision: Precision = "int8"  # the encoder the router serves with; tiers and test metrics use it
    ablations: bool = True
    judge_model: str | None = None  # an LLM that judges the rule features instead of the parsers (judge.py)
    judge_connection: JudgeConnection = DEFAULT_CONNECTION
    cache_dir: Path = DEFAULT_CACHE_DIR
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1]; got {self.train_fraction}")


@dataclass(frozen=True)
class Arrays:
    """One split as tensors: features (n, F), embeddings (n, 384), quality and cost (n, m)."""

    features: torch.Tensor
    embeddings: torch.Tensor
    quality: torch.Tensor
    cost: torch.Tensor


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def embed_prompts(prompts: list[str], encoder: Encoder, cache_dir: Path, progress: bool) -> np.ndarray:
    texts = [embedding_text(p) for p in prompts]
    return cached_embeddings(texts, lambda t: encoder.encode(t, progress=progress), cache_dir, encoder.tag)


def fit_network(
    config: TrainConfig, net_config: LLMRankConfig, train: Arrays, val: Arrays, lam: float, label: str
) -> LLMRankNet:
    """AdamW + MSE/KL loss on u = q − λc, early stopping on validation loss, best weights kept."""
    torch.manual_seed(config.seed)
    net = LLMRankNet(net_config)
    net.set_feature_scaling(train.features.mean(dim=0), train.features.std(dim=0))
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    target_train = utility(train.quality, train.cost, lam)
    target_val = utility(val.quality, val.cost, lam)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, stale = float("inf"), None, 0
    bar = tqdm(range(config.epochs), desc=f"train {label}", disable=None if config.progress else True, leave=False)
    for _epoch in bar:
        net.train()
        for idx in torch.randperm(len(target_train), generator=generator).split(config.batch_size):
            loss = llmrank_loss(net(train.features[idx], train.embeddings[idx]), target_train[idx])
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.clip)
            optimiser.step()
        net.eval()
        with torch.no_grad():
            val_loss = llmrank_loss(net(val.features, val.embeddings), target_val).item()
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, stale = val_loss, {k: v.clone() for k, v in net.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net


def predict(checkpoint: Checkpoint, data: RouterBenchData, features: np.ndarray, embeddings: np.ndarray) -> Predictions:
    f, e = torch.from_numpy(features), torch.from_numpy(embeddings)
    with torch.inference_mode():
        quality = {name: head.net(f, e).numpy().astype(np.float64) for name, head in checkpoint.heads.items()}
    quality["knn"] = checkpoint.featurizer.proxy_success(embeddings).astype(np.float64)
    n_chars = np.array([len(p) for p in data.prompts])
    return Predictions(quality=quality, cost=checkpoint.cost_model.predict(n_chars))


@dataclass(frozen=True)
class Prepared:
    """The filtered data, its split, and the question embeddings and judged rule features (with a judge) of each
    part."""

    data: RouterBenchData
    filters: FilterReport
    split: dict[str, np.ndarray]
    parts: dict[str, RouterBenchData]
    embeddings: dict[str, np.ndarray]
    judge_model: str | None = None
    judged: dict[str, np.ndarray] = field(default_factory=dict)  # by part; empty without a judge
    judge_failures: int = 0  # prompts the judge gave nothing for (parsed features stand in)

    def select_models(self, models: tuple[str, ...]) -> Prepared:
        parts = {name: part.select_models(models) for name, part in self.parts.items()}
        return replace(self, data=self.data.select_models(models), parts=parts)


def prepare(config: TrainConfig) -> Prepared:
    data, filters = load_routerbench(config.data)
    split = stratified_split(data.benchmarks, _split_seed(config))
    if config.train_fraction < 1:
        split["train"] = stratified_share(split["train"], data.benchmarks, config.train_fraction, config.seed)
    encoder = Encoder(config.max_tokens, config.cache_dir, config.precision)
    embeddings = embed_prompts(data.prompts, encoder, config.cache_dir, config.progress)
    parts = {name: data.subset(idx) for name, idx in split.items()}
    prepared = Prepared(data, filters, split, parts, {name: embeddings[idx] for name, idx in split.items()})
    return _judged(prepared, config)


def _judged(prepared: Prepared, config: TrainConfig) -> Prepared:
    """With a judge, its rule features for the split's prompts only: a training share below 1 leaves rows out,
    and each judgement is a paid call."""
    prompts = [prompt for part in prepared.parts.values() for prompt in part.prompts]
    judged = judgements_for(config.judge_model, prompts, config.judge_connection, config.cache_dir, config.progress)
    if judged is None:
        return prepared
    ends = np.cumsum([len(part) for part in prepared.parts.values()])[:-1]
    return replace(
        prepared,
        judge_model=config.judge_model,
        judged=dict(zip(prepared.parts, np.split(judged, ends), strict=True)),
        judge_failures=without_judgement(judged),
    )


def featurize(prepared: Prepared, seed: int) -> tuple[Featurizer, dict[str, np.ndarray], dict[str, Arrays]]:
    """Fit the featurizer on the training part; features and tensors for every part."""
    parts, emb, judged = prepared.parts, prepared.embeddings, prepared.judged
    featurizer = Featurizer.fit(prepared.data.models, emb["train"], parts["train"].quality, seed, prepared.judge_model)
    features = {"train": featurizer.transform_training(parts["train"].prompts, emb["train"], judged.get("train"))}
    for name in ("val", "test"):
        features[name] = featurizer.transform(parts[name].prompts, emb[name], judged=judged.get(name))
    arrays = {
        name: Arrays(
            torch.from_numpy(features[name]),
            torch.from_numpy(emb[name]),
            torch.from_numpy(parts[name].quality.astype(np.float32)),
            torch.from_numpy(parts[name].cost.astype(np.float32)),
        )
        for name in parts
    }
    return featurizer, features, arrays


def served_inputs(
    prepared: Prepared, featurizer: Featurizer, features: dict[str, np.ndarray], config: TrainConfig
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(features, embeddings) of the validation and test parts as the served encoder sees them."""
    if (config.serve_precision, config.serve_max_tokens) == (config.precision, config.max_tokens):
        return {name: (features[name], prepared.embeddings[name]) for name in ("val", "test")}
    encoder = Encoder(config.serve_max_tokens, config.cache_dir, config.serve_precision)
    served = {}
    for name in ("val", "test"):
        prompts = prepared.parts[name].prompts
        emb = embed_prompts(prompts, encoder, config.cache_dir, config.progress)
        served[name] = (featurizer.transform(prompts, emb, judged=prepared.judged.get(name)), emb)
    return served


def train(config: TrainConfig) -> Checkpoint:
    started = time.time()
    prepared = prepare(config)
    data, filters, split, parts = prepared.data, prepared.filters, prepared.split, prepared.parts
    featurizer, features, arrays = featurize(prepared, config.seed)
    cost_model = CostModel.fit(np.array([len(p) for p in parts["train"].prompts]), parts["train"].cost)

    base = LLMRankConfig(n_features=len(featurizer.names), n_models=len(data.models))
    head_specs = {"quality": (base, 0.0)}
    if config.ablations:
        head_specs["features_only"] = (replace(base, use_embedding=False), 0.0)
        head_specs["embedding_only"] = (replace(base, use_features=False), 0.0)
    for lam in config.lambdas:
        if lam != 0:
            head_specs[f"lambda_{lam:g}"] = (base, float(lam))
    heads = {
        name: Head(fit_network(config, net_config, arrays["train"], arrays["val"], lam, name), lam)
        for name, (net_config, lam) in head_specs.items()
    }
    train_quality = parts["train"].quality.mean(axis=0)
    train_cost = parts["train"].cost.mean(axis=0)
    checkpoint = Checkpoint(
        models=data.models,
        featurizer=featurizer,
        cost_model=cost_model,
        heads=heads,
        encoder={
            "name": ENCODER_NAME,
            "max_tokens": config.serve_max_tokens,
            "precision": config.serve_precision,
            "trained_max_tokens": config.max_tokens,
            "trained_on": config.precision,
            "text": "question after few-shot examples",
        },
        best_single=data.models[int(train_quality.argmax())],
        cheapest=data.models[int(train_cost.argmin())],
    )
    for head in heads.values():
        round_to_float16(head.net)

    served = served_inputs(prepared, featurizer, features, config)
    val_predictions = predict(checkpoint, parts["val"], *served["val"])
    val_curve = sweep(val_predictions.quality["quality"], val_predictions.cost, parts["val"])
    tiers = pick_tiers(val_curve, cheapest_cost=float(parts["val"].cost.sum(axis=0).min()))
    test_predictions = predict(checkpoint, parts["test"], *served["test"])
    report = evaluate(parts["test"], test_predictions, tiers, checkpoint.best_single, checkpoint.cheapest)

    checkpoint.card = {
        "version": _version(checkpoint, config),
        "data": {"path": str(config.data), "sha256": file_digest(config.data), "filters": filters.__dict__},
        "split": {"seed": _split_seed(config), "fractions": [0.70, 0.15, 0.15], "stratified_by": "benchmark"}
        | ({"train_fraction": config.train_fraction} if config.train_fraction < 1 else {})
        | {f"n_{k}": int(len(v)) for k, v in split.items()},
        "training": {k: getattr(config, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "patience", "clip")}
        | {"loss": "MSE + KL(softmax(u/0.5) || softmax(s/0.5))", "seconds": round(time.time() - started, 1)},
        "heads": {name: {"lambda": h.lam} for name, h in heads.items()},
        "encoder": checkpoint.encoder,
        **_judge_card(prepared),
        "design": "quality head ranked by q̂ − λ·ĉ (any λ at inference); per-λ heads only with --lambda",
        "tiers_from_validation": tiers,
        "validation_curve": val_curve,
        "test": {
            "n": report["n"],
            "rows": report["rows"],
            "aiq": report["aiq"],
            "baseline_aiq": report["baseline_aiq"],
        },
    }
    checkpoint.save(config.out)
    return checkpoint


def _judge_card(prepared: Prepared) -> dict[str, Any]:
    """The card's `judge` entry, where a judge gave the rule features: its model and the prompts it failed on."""
    if prepared.judge_model is None:
        return {}
    return {"judge": {"model": prepared.judge_model, "prompts_without_judgement": prepared.judge_failures}}


def _split_seed(config: TrainConfig) -> int:
    return config.seed if config.split_seed is None else config.split_seed


def _version(checkpoint: Checkpoint, config: TrainConfig) -> str:
    digest = hashlib.sha256(file_digest(config.data).encode())
    digest.update(repr((config.seed, checkpoint.featurizer.names, sorted(checkpoint.heads))).encode())
    for head in checkpoint.heads.values():
        for tensor in head.net.state_dict().values():
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]
