"""The router-model subcommands of `llmrank`: train, eval, route. Argument parsing lives in gateway/cli.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from router_model.calibrate import fit_profile
from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.data import RouterBenchData, load_routerbench, read_calibration_rows, stratified_split
from router_model.encoder import DEFAULT_CACHE_DIR, Encoder, encoder_for
from router_model.evaluate import evaluate, format_report, plot_pareto
from router_model.explain import attributions
from router_model.judge import DEFAULT_CONNECTION, JudgeConnection, judgements_for
from router_model.router import DEFAULT_HEAD, PromptVector, Router, made_by_network
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


def report_on(
    checkpoint: Checkpoint,
    rows: RouterBenchData,
    tiers: Mapping[str, float],
    encoder: Encoder,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: bool = False,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> dict[str, Any]:
    """`evaluate`'s report for `rows`, scored from their prompts with `encoder` (the one the checkpoint serves with)
    and, for a checkpoint with a feature judge, that judge's features."""
    embeddings = embed_prompts(rows.prompts, encoder, cache_dir, progress)
    judge = checkpoint.featurizer.judge_model
    judged = judgements_for(judge, rows.prompts, judge_connection, cache_dir, progress)
    features = checkpoint.featurizer.transform(rows.prompts, embeddings, judged=judged)
    predictions = predict(checkpoint, rows, features, embeddings)
    return evaluate(rows, predictions, tiers, checkpoint.best_single, checkpoint.cheapest)


def scored_splits(checkpoint: Checkpoint, data_path: Path, cache_dir: Path) -> dict[str, dict[str, float | None]]:
    """AIQ and the perf and balanced tiers' quality and cost on the checkpoint's validation and test splits, with the
    best quality its λ sweep reaches for under half of the best single model's cost (None where no point does)."""
    data, _ = load_routerbench(data_path, models=checkpoint.models)
    split = stratified_split(data.benchmarks, int(checkpoint.card["split"]["seed"]))
    tiers = checkpoint.card["tiers_from_validation"]
    encoder = encoder_for(checkpoint.encoder, cache_dir)
    scores = {}
    for part in ("val", "test"):
        report = report_on(checkpoint, data.subset(split[part]), tiers, encoder, cache_dir)
        by_name = {row["name"]: row for row in report["rows"]}
        half = by_name["best_single"]["cost"] / 2
        scores[part] = {
            "aiq": report["aiq"],
            "knn_aiq": report["baseline_aiq"]["knn"],
            "best_under_half_cost": max((p["quality"] for p in report["sweep"] if p["cost"] < half), default=None),
            **{f"{tier}_{key}": by_name[tier][key] for tier in ("perf", "balanced") for key in ("quality", "cost")},
        }
    return scores


def run_eval(
    data_path: Path,
    checkpoint_dir: Path,
    tiers: Mapping[str, float],
    json_out: Path | None = None,
    plot_out: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> dict[str, Any]:
    checkpoint = load_checkpoint(checkpoint_dir)
    data, filters = load_routerbench(data_path, models=checkpoint.models)
    rows, scope = held_out_rows(checkpoint, data_path, data)
    encoder = encoder_for(checkpoint.encoder, cache_dir)
    report = report_on(checkpoint, rows, tiers, encoder, cache_dir, progress=True, judge_connection=judge_connection)
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


def run_route(
    prompt: str,
    checkpoint_dir: Path,
    lam: float,
    tier: str,
    top: int = 8,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> str:
    """A person-readable routing decision over the checkpoint's model profiles."""
    router = Router.load(checkpoint_dir, judge_connection=judge_connection)
    vector = router.vectorize([prompt])[0]
    quality = router.quality([vector])[0]
    cost = router.estimated_cost([prompt])[0]
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


def run_calibrate(
    backend: str,
    data_path: Path,
    checkpoint_dir: Path,
    seed: int = 7,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> Path:
    """Fit `backend`'s weight vector from its rows, write it beside the checkpoint, print its card."""
    router = Router.load(checkpoint_dir, judge_connection=judge_connection)
    if backend in router.checkpoint.models:
        raise ValueError(f"{backend!r} is already a trained model of {checkpoint_dir}")
    prompts, quality, cost = read_calibration_rows(data_path, backend)
    if len(prompts) < 10:
        raise ValueError(f"{data_path}: {len(prompts)} usable rows; calibration needs at least 10")
    vectors = router.vectorize(prompts)
    n_chars = np.array([len(p) for p in prompts])
    profile = fit_profile(backend, router.hidden(vectors), quality, n_chars, cost, seed)
    profile.card.update(data=str(data_path), checkpoint_version=router.version, costs_given=cost is not None)
    path = profile.save(checkpoint_dir)
    print(f"wrote {path}: {json.dumps(profile.card)}")
    return path


def run_calibrate_from_feedback(
    entries: Sequence[Mapping[str, Any]], checkpoint_dir: Path, min_rows: int = 10, seed: int = 7
) -> list[Path]:
    """One profile per backend with at least `min_rows` scores, fitted on the features stored with each score.

    A backend named like a trained model gets the profile `<name>+feedback`, so it never shadows the trained one.
    Scores routed by another network than this checkpoint's are skipped: their vectors mean nothing to it.
    """
    router = Router.load(checkpoint_dir)
    network = router.checkpoint.version
    usable = [e for e in entries if made_by_network(e.get("router_version"), network)]
    if len(usable) < len(entries):
        print(f"{len(entries) - len(usable)} scores were routed by another network than {network}; skipped")
    by_backend: dict[str, list[Mapping[str, Any]]] = {}
    for entry in usable:
        by_backend.setdefault(str(entry["backend"]), []).append(entry)
    written = []
    n_features = len(router.featurizer.names)
    for backend, rows in sorted(by_backend.items()):
        if len(rows) < min_rows:
            print(f"{backend}: {len(rows)} scores, fewer than {min_rows}; skipped")
            continue
        name = f"{backend}+feedback" if backend in router.checkpoint.models else backend
        vectors = [PromptVector.from_bytes(r["vector"], n_features) for r in rows]
        quality = np.array([float(r["score"]) for r in rows])
        profile = fit_profile(name, router.hidden(vectors), quality, np.zeros(len(rows)), None, seed)
        profile.card.update(source="feedback", checkpoint_version=router.version)
        written.append(profile.save(checkpoint_dir))
        print(f"{name}: fitted from {len(rows)} scores: {json.dumps(profile.card)}")
    return written


__all__ = ["TrainConfig", "run_calibrate", "run_calibrate_from_feedback", "run_eval", "run_route", "run_train"]
