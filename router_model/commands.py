"""The router-model subcommands of `llmrank`: train, eval, route. Argument parsing lives in gateway/cli.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.data import RouterBenchData, load_routerbench, stratified_split
from router_model.encoder import DEFAULT_CACHE_DIR, Encoder
from router_model.evaluate import evaluate, format_report, plot_pareto
from router_model.explain import attributions
from router_model.router import DEFAULT_HEAD, Router
from router_model.train import TrainConfig, embed_prompts, file_digest, predict, train


def run_train(config: TrainConfig) -> dict[str, Any]:
    checkpoint = train(config)
    return checkpoint.card


def held_out_rows(checkpoint: Checkpoint, data_path: Path, data: RouterBenchData) -> tuple[RouterBenchData, str]:
    """The checkpoint's own test split when `data_path` is its training file, else every usable row."""
    card = checkpoint.card
    if card.get("data", {}).get("sha256") == file_digest(data_path):
        split = stratified_split(data.benchmarks, int(card["split"]["seed"]))
        return data.subset(split["test"]), f"held-out test split (seed {card['split']['seed']})"
    return data, "every usable row (file not seen in training)"


def run_eval(
    data_path: Path,
    checkpoint_dir: Path,
    tiers: Mapping[str, float],
    json_out: Path | None = None,
    plot_out: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> dict[str, Any]:
    checkpoint = load_checkpoint(checkpoint_dir)
    data, filters = load_routerbench(data_path, models=checkpoint.models)
    rows, scope = held_out_rows(checkpoint, data_path, data)
    encoder = Encoder(int(checkpoint.encoder["max_tokens"]), cache_dir)
    embeddings = embed_prompts(rows.prompts, encoder, cache_dir, progress=True)
    features = checkpoint.featurizer.transform(rows.prompts, embeddings)
    predictions = predict(checkpoint, rows, features, embeddings)
    report = evaluate(rows, predictions, tiers, checkpoint.best_single, checkpoint.cheapest)
    report["scope"] = scope
    report["filters"] = filters.__dict__
    print(f"{data_path}: {scope}; filters: {filters}")
    print(format_report(report))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    if plot_out:
        plot_pareto(report, plot_out)
    return report


def run_route(prompt: str, checkpoint_dir: Path, lam: float, tier: str, top: int = 8) -> str:
    """A person-readable routing decision over the checkpoint's model profiles."""
    router = Router.load(checkpoint_dir)
    vector = router.vectorize([prompt])[0]
    quality = router.quality([vector])[0]
    cost = router.checkpoint.cost_model.predict(np.array([len(prompt)]))[0]
    utility = quality - lam * cost
    chosen = int(np.lexsort((cost, -utility))[0])
    lines = [f"tier {tier} (λ = {lam:g}) → {router.profiles[chosen]}", "", "utility = q̂ − λ·ĉ per model:"]
    for j in np.argsort(-utility):
        mark = "*" if j == chosen else " "
        lines.append(f" {mark} {router.profiles[j]:<36} u={utility[j]:+.4f}  q̂={quality[j]:.3f}  ĉ=${cost[j]:.5f}")
    net = router.checkpoint.heads[DEFAULT_HEAD].net
    attrs = attributions(
        net,
        router.featurizer.infos,
        torch.from_numpy(vector.features),
        torch.from_numpy(vector.embedding),
        chosen,
    )
    lines += [
        "",
        f"features that pushed {router.profiles[chosen]}'s predicted quality most (integrated gradients):",
    ]
    for a in attrs[:top]:
        value = "" if np.isnan(a.value) else f" = {a.value:.3g}"
        lines.append(f"  {a.attribution:+.4f}  {a.name}{value}  ({a.description})")
    return "\n".join(lines)


__all__ = ["TrainConfig", "run_eval", "run_route", "run_train"]
