"""The router-model subcommands of `llmrank`: train, eval, route. Argument parsing lives in gateway/cli.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router_model.calibrate import fit_profile
from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.data import Catalogue, OutcomeTable, load_data, read_calibration_rows, stratified_split
from router_model.encoder import DEFAULT_CACHE_DIR, Encoder, encoder_for
from router_model.evaluate import Predictions, evaluate_sources, format_report, plot_pareto
from router_model.judge import DEFAULT_CONNECTION, JudgeConnection, judgements_for
from router_model.router import PromptVector, Router, made_by_network
from router_model.train import TrainConfig, embed_prompts, predict, train


def run_train(config: TrainConfig) -> dict[str, Any]:
    checkpoint = train(config)
    return checkpoint.card


def held_out_rows(checkpoint: Checkpoint, data: OutcomeTable) -> tuple[OutcomeTable, str]:
    """The checkpoint's own test split of every task it was trained on (same task, same size), and every row of the
    tasks it has not seen."""
    split = checkpoint.card.get("split", {})
    trained = split.get("tasks", {})
    names, counts = np.unique(data.tasks, return_counts=True)
    seen = [str(t) for t, n in zip(names, counts, strict=True) if trained.get(str(t)) == int(n)]
    in_seen = np.isin(data.tasks, seen)
    keep = ~in_seen
    if seen:
        idx = np.flatnonzero(in_seen)
        test = stratified_split(data.tasks[idx], data.prompt_ids[idx], int(split["seed"]))["test"]
        keep[idx[test]] = True
    scopes = []
    if seen:
        scopes.append(f"held-out test split (seed {split.get('seed')}) of {len(seen)} trained task(s)")
    if len(seen) < len(names):
        scopes.append(f"every row of {len(names) - len(seen)} task(s) not seen in training")
    return data.subset(np.flatnonzero(keep)), "; ".join(scopes)


def report_on(
    checkpoint: Checkpoint,
    rows: OutcomeTable,
    tiers: Mapping[str, float],
    encoder: Encoder,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: bool = False,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> dict[str, Any]:
    """`evaluate_sources`'s report for `rows`, scored from their prompts (`predictions_for`)."""
    predictions = predictions_for(checkpoint, rows.prompts, encoder, cache_dir, progress, judge_connection)
    return evaluate_sources(rows, predictions, tiers)


def predictions_for(
    checkpoint: Checkpoint,
    prompts: list[str],
    encoder: Encoder,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: bool = False,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> Predictions:
    """What the checkpoint predicts for `prompts`, embedded with `encoder` (the one it serves with) and, for a
    checkpoint with a feature judge, with that judge's features."""
    embeddings = embed_prompts(prompts, encoder, cache_dir, progress)
    judged = judgements_for(checkpoint.featurizer.judge_model, prompts, judge_connection, cache_dir, progress)
    features = checkpoint.featurizer.transform(prompts, embeddings, judged=judged)
    return predict(checkpoint, prompts, features, embeddings)


def load_for(checkpoint: Checkpoint, paths: Sequence[Path], source: str | None = None) -> tuple[OutcomeTable, Any]:
    """Rows of `paths` over the checkpoint's models (other sources' names mapped to its own), one source if given."""
    data, filters, _ = load_data(paths, Catalogue(aliases=checkpoint.aliases))
    if source is not None:
        if source not in set(data.sources.tolist()):
            raise ValueError(f"no rows of source {source!r}; sources here: {', '.join(sorted(set(data.sources)))}")
        data = data.of_source(source)
    return data.select_models(checkpoint.models), filters


def scored_splits(checkpoint: Checkpoint, cache_dir: Path) -> dict[str, dict[str, Any]]:
    """AIQ overall and per source, with the kNN and ridge baselines', on the checkpoint's validation and test splits
    of its own training data, at the checkpoint's tiers."""
    data, _ = load_for(checkpoint, [Path(p) for p in checkpoint.card["data"]["paths"]])
    split = stratified_split(data.tasks, data.prompt_ids, int(checkpoint.card["split"]["seed"]))
    tiers = checkpoint.card["tiers_from_validation"]
    encoder = encoder_for(checkpoint.encoder, cache_dir)
    scores = {}
    for part in ("val", "test"):
        report = report_on(checkpoint, data.subset(split[part]), tiers, encoder, cache_dir)
        scores[part] = {"aiq": report["overall"]["aiq"]} | {
            source: {"aiq": rep["aiq"], "knn": rep["baseline_aiq"]["knn"], "ridge": rep["baseline_aiq"]["ridge"]}
            for source, rep in report["per_source"].items()
        }
    return scores


def run_eval(
    data_paths: Sequence[Path],
    checkpoint_dir: Path,
    tiers: Mapping[str, float],
    source: str | None = None,
    json_out: Path | None = None,
    plot_out: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    judge_connection: JudgeConnection = DEFAULT_CONNECTION,
) -> dict[str, Any]:
    checkpoint = load_checkpoint(checkpoint_dir)
    data, filters = load_for(checkpoint, data_paths, source)
    rows, scope = held_out_rows(checkpoint, data)
    encoder = encoder_for(checkpoint.encoder, cache_dir)
    report = report_on(checkpoint, rows, tiers, encoder, cache_dir, progress=True, judge_connection=judge_connection)
    report["scope"] = scope
    report["filters"] = filters.__dict__
    print(f"{', '.join(map(str, data_paths))}: {scope}; filters: {filters}")
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
    models: int = 15,
) -> str:
    """A person-readable routing decision over the checkpoint's model profiles: the best `models` of them (0: all)
    and the `top` features behind the choice."""
    router = Router.load(checkpoint_dir, judge_connection=judge_connection)
    vector = router.vectorize([prompt])[0]
    quality = router.quality([vector])[0]
    cost = router.estimated_cost([prompt])[0]
    utility = quality - lam * cost
    chosen = int(np.lexsort((cost, -utility))[0])
    lines = [f"tier {tier} (λ = {lam:g}) → {router.profiles[chosen]}", "", "utility = q̂ − λ·ĉ per model:"]
    order = np.argsort(-utility)
    for j in order[: models or None]:
        mark = "*" if j == chosen else " "
        lines.append(f" {mark} {router.profiles[j]:<44} u={utility[j]:+.4f}  q̂={quality[j]:.3f}  ĉ=${cost[j]:.5f}")
    if 0 < models < len(order):
        lines.append(f"   … and {len(order) - models} more (--models 0 lists every profile)")
    attrs = router.attributions(vector, chosen)
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
