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
from router_model.data import Catalogue, FilterReport, OutcomeTable, load_data, stratified_share, stratified_split
from router_model.encoder import (
    DEFAULT_CACHE_DIR,
    ENCODER_NAME,
    SERVED_MAX_TOKENS,
    Encoder,
    Precision,
    cached_embeddings,
)
from router_model.evaluate import Predictions, cheapest_share, evaluate_sources
from router_model.features import Featurizer
from router_model.judge import DEFAULT_CONNECTION, JudgeConnection, judgements_for, without_judgement
from router_model.loss import llmrank_loss, utility
from router_model.model import LLMRankConfig, LLMRankNet
from router_model.text import embedding_text
from router_model.tiers import pick_tiers


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[Path, ...]  # corpus folders and wide RouterBench files, read as one table (data.load_data)
    out: Path
    lambdas: tuple[float, ...] = ()  # extra per-λ heads (the paper's design); λ = 0 is always trained
    seed: int = 7
    split_seed: int | None = None  # the split's own seed, where a study keeps one split across seeds; else `seed`
    train_fraction: float = 1.0  # a share of the training part, taken per task (learning curves)
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
    source_input: bool = False  # give the network each prompt's source in training; serving averages it out
    source_balance: float = 0.0  # draw training rows ∝ n_source^(−b): 0 uniform, 1 every source equally often
    judge_model: str | None = None  # an LLM that judges the rule features instead of the parsers (judge.py)
    judge_connection: JudgeConnection = DEFAULT_CONNECTION
    cache_dir: Path = DEFAULT_CACHE_DIR
    progress: bool = True

    def __post_init__(self) -> None:
        paths = [self.data] if isinstance(self.data, str | Path) else self.data
        object.__setattr__(self, "data", tuple(Path(p) for p in paths))
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1]; got {self.train_fraction}")


@dataclass(frozen=True)
class Arrays:
    """One split as tensors: features (n, F), embeddings (n, 384), quality and cost (n, m), and how often each row
    is drawn in an epoch relative to the others (n,)."""

    features: torch.Tensor
    embeddings: torch.Tensor
    quality: torch.Tensor
    cost: torch.Tensor
    draw_weight: torch.Tensor


def file_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files in name order."""
    path = Path(path)
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for child in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(child.name.encode() + b"\0" + file_digest(child).encode())
    return digest.hexdigest()


def embed_prompts(prompts: list[str], encoder: Encoder, cache_dir: Path, progress: bool) -> np.ndarray:
    texts = [embedding_text(p) for p in prompts]
    return cached_embeddings(texts, lambda t: encoder.encode(t, progress=progress), cache_dir, encoder.tag)


def epoch_order(draw_weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One epoch's rows: a permutation when all weigh the same, else n draws with replacement by weight."""
    if bool((draw_weight == draw_weight[0]).all()):
        return torch.randperm(len(draw_weight), generator=generator)
    return torch.multinomial(draw_weight, len(draw_weight), replacement=True, generator=generator)


def source_draw_weights(sources: np.ndarray, power: float) -> np.ndarray:
    """Each row's draw weight ∝ n_source^(−power): 0 draws rows uniformly, 1 draws each source equally often."""
    names, inverse, counts = np.unique(sources, return_inverse=True, return_counts=True)
    weight = counts[inverse].astype(np.float64) ** -power
    return weight / weight.mean()


def fit_network(
    config: TrainConfig, net_config: LLMRankConfig, train: Arrays, val: Arrays, lam: float, label: str
) -> LLMRankNet:
    """AdamW + MSE/KL loss on u = q − λc, early stopping on validation loss, best weights kept."""
    torch.manual_seed(config.seed)
    net = LLMRankNet(net_config)
    net.set_feature_scaling(train.features)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    target_train = utility(train.quality, train.cost, lam)
    target_val = utility(val.quality, val.cost, lam)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, stale = float("inf"), None, 0
    bar = tqdm(range(config.epochs), desc=f"train {label}", disable=None if config.progress else True, leave=False)
    for _epoch in bar:
        net.train()
        for idx in epoch_order(train.draw_weight, generator).split(config.batch_size):
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


def predict(checkpoint: Checkpoint, prompts: list[str], features: np.ndarray, embeddings: np.ndarray) -> Predictions:
    """Every head's and baseline's predicted quality, and the cost model's dollars, from the prompts alone."""
    f, e = torch.from_numpy(features), torch.from_numpy(embeddings)
    with torch.inference_mode():
        quality = {name: head.net(f, e).numpy().astype(np.float64) for name, head in checkpoint.heads.items()}
    quality["knn"] = checkpoint.featurizer.proxy_success(embeddings).astype(np.float64)
    quality["ridge"] = checkpoint.featurizer.ridge_quality(embeddings)
    n_chars = np.array([len(p) for p in prompts])
    return Predictions(quality=quality, cost=checkpoint.cost_model.predict(n_chars))


@dataclass(frozen=True)
class Prepared:
    """The filtered data, its split, and the question embeddings and judged rule features (with a judge) of each
    part."""

    data: OutcomeTable
    filters: FilterReport
    catalogue: Catalogue
    split: dict[str, np.ndarray]
    parts: dict[str, OutcomeTable]
    embeddings: dict[str, np.ndarray]
    judge_model: str | None = None
    judged: dict[str, np.ndarray] = field(default_factory=dict)  # by part; empty without a judge
    judge_failures: int = 0  # prompts the judge gave nothing for (parsed features stand in)

    def select_models(self, models: tuple[str, ...]) -> Prepared:
        parts = {name: part.select_models(models) for name, part in self.parts.items()}
        return replace(self, data=self.data.select_models(models), parts=parts)


def prepare(config: TrainConfig) -> Prepared:
    data, filters, catalogue = load_data(config.data)
    split = stratified_split(data.tasks, data.prompt_ids, _split_seed(config))
    if config.train_fraction < 1:
        split["train"] = stratified_share(
            split["train"], data.tasks, data.prompt_ids, config.train_fraction, config.seed
        )
    encoder = Encoder(config.max_tokens, config.cache_dir, config.precision)
    embeddings = embed_prompts(data.prompts, encoder, config.cache_dir, config.progress)
    parts = {name: data.subset(idx) for name, idx in split.items()}
    embedded = {name: embeddings[idx] for name, idx in split.items()}
    prepared = Prepared(data, filters, catalogue, split, parts, embedded)
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


def featurize(
    prepared: Prepared, seed: int, source_input: bool = False, balance: float = 0.0
) -> tuple[Featurizer, dict[str, np.ndarray], dict[str, Arrays]]:
    """Fit the featurizer on the training part; features and tensors for every part (validation and test as a
    served prompt gets them: without its source)."""
    parts, emb, judged = prepared.parts, prepared.embeddings, prepared.judged
    train_part = parts["train"]
    featurizer = Featurizer.fit(
        prepared.data.models, emb["train"], train_part.quality, seed, prepared.judge_model, train_part.sources,
        source_input,
    )  # fmt: skip
    features = {"train": featurizer.transform_training(parts["train"].prompts, emb["train"], judged.get("train"))}
    for name in ("val", "test"):
        features[name] = featurizer.transform(parts[name].prompts, emb[name], judged=judged.get(name))
    arrays = {
        name: Arrays(
            torch.from_numpy(features[name]),
            torch.from_numpy(emb[name]),
            torch.from_numpy(parts[name].quality.astype(np.float32)),
            torch.from_numpy(parts[name].cost.astype(np.float32)),
            torch.from_numpy(source_draw_weights(parts[name].sources, balance).astype(np.float32)),
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
    featurizer, features, arrays = featurize(prepared, config.seed, config.source_input, config.source_balance)
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
        aliases=model_aliases(prepared.catalogue, data.models),
        sources=tuple(sorted(set(parts["train"].sources.tolist()))),
    )
    for head in heads.values():
        round_to_float16(head.net)

    served = served_inputs(prepared, featurizer, features, config)
    val = evaluate_sources(parts["val"], predict(checkpoint, parts["val"].prompts, *served["val"]), _UNSET_TIERS)
    val_curve = val["overall"]["sweep"]  # the sweep averaged over sources (`combined_curve`)
    tiers = pick_tiers(val_curve, cheapest_cost=cheapest_share(val["per_source"]))
    test_predictions = predict(checkpoint, parts["test"].prompts, *served["test"])
    report = evaluate_sources(parts["test"], test_predictions, tiers)

    checkpoint.card = {
        "version": _version(checkpoint, config),
        "data": {
            "paths": [str(p) for p in config.data],
            "sha256": {str(p): file_digest(p) for p in config.data},
            "filters": filters.__dict__,
        },
        "split": {
            "seed": _split_seed(config),
            "fractions": [0.70, 0.15, 0.15],
            "stratified_by": "source/task, rows ordered by hash(seed, prompt_id)",
            "tasks": {str(t): int(n) for t, n in zip(*np.unique(data.tasks, return_counts=True), strict=True)},
        }
        | ({"train_fraction": config.train_fraction} if config.train_fraction < 1 else {})
        | {f"n_{k}": int(len(v)) for k, v in split.items()},
        "training": {k: getattr(config, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "patience", "clip")}
        | {
            "loss": "masked MSE + KL(softmax(u/0.5) || softmax(s/0.5)) over each prompt's graded models",
            "source_input": config.source_input,
            "source_balance": config.source_balance,
            "seconds": round(time.time() - started, 1),
        },
        "heads": {name: {"lambda": h.lam} for name, h in heads.items()},
        "encoder": checkpoint.encoder,
        **_judge_card(prepared),
        "design": "quality head ranked by q̂ − λ·ĉ (any λ at inference); per-λ heads only with --lambda",
        "tiers_from_validation": tiers,
        "validation_curve": val_curve,
        "test": {"overall": _summary(report["overall"])}
        | {source: _summary(rep) for source, rep in report["per_source"].items()},
    }
    checkpoint.save(config.out)
    return checkpoint


_UNSET_TIERS = {"perf": 0.0, "balanced": 0.0, "cost": 0.0}  # the validation pass only needs the λ sweeps


def model_aliases(catalogue: Catalogue, models: tuple[str, ...]) -> dict[str, str]:
    """Other sources' names for the trained models (RouterBench's `claude-v2` → `claude-2`), for `profile:`."""
    known = set(models)
    return {alias: name for alias, name in sorted(catalogue.aliases.items()) if name in known and alias not in known}


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the card keeps of a test report: n, Table 3's rows, AIQ and the baselines'."""
    keep = ("n", "rows", "aiq", "baseline_aiq")
    summary = {k: report[k] for k in keep}
    if "single_models" in report:
        summary["best_single_point_aiq"] = max(m["aiq"] for m in report["single_models"])
    return summary


def _judge_card(prepared: Prepared) -> dict[str, Any]:
    """The card's `judge` entry, where a judge gave the rule features: its model and the prompts it failed on."""
    if prepared.judge_model is None:
        return {}
    return {"judge": {"model": prepared.judge_model, "prompts_without_judgement": prepared.judge_failures}}


def _split_seed(config: TrainConfig) -> int:
    return config.seed if config.split_seed is None else config.split_seed


def _version(checkpoint: Checkpoint, config: TrainConfig) -> str:
    digest = hashlib.sha256("".join(file_digest(p) for p in config.data).encode())
    digest.update(repr((config.seed, checkpoint.featurizer.names, sorted(checkpoint.heads))).encode())
    for head in checkpoint.heads.values():
        for tensor in head.net.state_dict().values():
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]
