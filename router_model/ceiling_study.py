"""How far can routing by task alone go within a budget? With hindsight on a test split, pick one model per task
so that the split's quality is highest while its cost stays within `share` of a reference model's cost.

A router that knows only which task a prompt belongs to cannot beat this; to go past it, it must tell, prompt by
prompt, which ones a cheap model gets right. Measured on many splits, it shows how much of a bar is split noise.
With `--checkpoint`, the study also gives how well that checkpoint tells prompts of one task apart: per model and
task, the correlation of its predicted quality with the recorded one on its own held-out rows of the source.

    python -m router_model.ceiling_study --data ../shared/data/corpus ../shared/data/routerbench_subset.parquet \
        --source routerbench --reference gpt-4-1106-preview --share 0.10 \
        --checkpoint router_model/checkpoints/default --json docs/results/ceiling_study.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.commands import held_out_rows, load_for, predictions_for
from router_model.data import OutcomeTable, load_data, stratified_split
from router_model.encoder import DEFAULT_CACHE_DIR, encoder_for
from router_model.evaluate import SINGLE_MODEL_COVERAGE, available

MAX_ASSIGNMENTS = 2_000_000  # beyond this many per-task combinations the search is refused, not approximated


@dataclass(frozen=True)
class Ceiling:
    n: int
    quality: float  # the best per-task assignment's mean quality
    cost_share: float  # its cost as a share of the reference model's
    assignment: dict[str, str]  # task → model
    reference_quality: float


def task_ceiling(data: OutcomeTable, reference: str, share: float) -> Ceiling:
    """The best one-model-per-task assignment of `data` whose summed cost is within `share` × `reference`'s."""
    models = np.flatnonzero(available(data).mean(axis=0) >= SINGLE_MODEL_COVERAGE).tolist()
    ref = data.models.index(reference)
    reference_cost = float(np.nansum(data.cost[:, ref]))
    budget = share * reference_cost
    tasks = sorted(set(data.tasks.tolist()))
    options = [_frontier(data, data.tasks == task, models) for task in tasks]
    if np.prod([len(o) for o in options], dtype=float) > MAX_ASSIGNMENTS:
        raise ValueError(f"{len(tasks)} tasks: too many assignments to search exactly; pass fewer tasks")
    best: tuple[float, float, tuple[int, ...]] | None = None
    for combo in itertools.product(*options):
        quality, cost = sum(q for q, _, _ in combo), sum(c for _, c, _ in combo)
        if cost <= budget and (best is None or quality > best[0]):
            best = (quality, cost, tuple(j for _, _, j in combo))
    if best is None:
        raise ValueError(f"no assignment fits {share:.0%} of {reference}'s cost")
    quality, cost, picked = best
    return Ceiling(
        n=len(data),
        quality=quality / len(data),
        cost_share=cost / reference_cost,
        assignment={task: data.models[j] for task, j in zip(tasks, picked, strict=True)},
        reference_quality=float(np.nanmean(data.quality[:, ref])),
    )


def _frontier(data: OutcomeTable, rows: np.ndarray, models: list[int]) -> list[tuple[float, float, int]]:
    """(summed quality, summed cost, model) of each model on these rows that no cheaper model matches or beats."""
    scored = sorted((float(np.nansum(data.cost[rows, j])), -float(np.nansum(data.quality[rows, j])), j) for j in models)
    frontier, best = [], -np.inf
    for cost, neg_quality, j in scored:
        if -neg_quality > best:
            frontier.append((-neg_quality, cost, j))
            best = -neg_quality
    return frontier


def study(rows: OutcomeTable, reference: str, share: float, seeds: list[int]) -> dict[int, Ceiling]:
    """The ceiling on the test split of one source's `rows` drawn with each seed. `llmrank train` splits each task on
    its own, so these are the test rows it holds out of the whole data with that seed."""
    tests = {seed: stratified_split(rows.tasks, rows.prompt_ids, seed)["test"] for seed in seeds}
    return {seed: task_ceiling(rows.subset(idx), reference, share) for seed, idx in tests.items()}


def within_task_correlation(data: OutcomeTable, predicted: np.ndarray) -> dict[str, dict[str, float]]:
    """model → task → Pearson correlation of predicted and recorded quality over the task's graded rows (NaN where
    either is constant), for the models graded on nearly every row."""
    graded = available(data)
    table: dict[str, dict[str, float]] = {}
    for j in np.flatnonzero(graded.mean(axis=0) >= SINGLE_MODEL_COVERAGE):
        per_task = {}
        for task in sorted(set(data.tasks.tolist())):
            rows = graded[:, j] & (data.tasks == task)
            x, y = predicted[rows, j], data.quality[rows, j]
            per_task[task] = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
        table[data.models[j]] = per_task
    return table


def checkpoint_correlation(checkpoint: Checkpoint, rows: OutcomeTable) -> dict[str, dict[str, float]]:
    """`within_task_correlation` of a checkpoint's quality head on its held-out part of `rows` (read by `load_for`)."""
    held_out, _ = held_out_rows(checkpoint, rows)
    encoder = encoder_for(checkpoint.encoder, DEFAULT_CACHE_DIR)
    predictions = predictions_for(checkpoint, held_out.prompts, encoder)
    return within_task_correlation(held_out, predictions.quality["quality"])


def source_rows(paths: list[Path], source: str, checkpoint: Checkpoint | None) -> OutcomeTable:
    """`source`'s rows of `paths`, over the checkpoint's models where one is given (read once for both parts)."""
    if checkpoint is not None:
        return load_for(checkpoint, paths, source)[0]
    rows = load_data(paths)[0].of_source(source)
    if not len(rows):
        raise ValueError(f"no rows of source {source!r} in {', '.join(map(str, paths))}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--reference", required=True, help="the model whose cost the budget is a share of")
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 14)))
    parser.add_argument("--checkpoint", type=Path, help="also: this checkpoint's within-task correlation")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint) if args.checkpoint else None
    rows = source_rows(args.data, args.source, checkpoint)
    results = study(rows, args.reference, args.share, args.seeds)
    for seed, c in results.items():
        picks = ", ".join(f"{task.split('/')[-1]} → {model}" for task, model in c.assignment.items())
        print(
            f"seed {seed:>3}: n {c.n}  ceiling {c.quality:.3f} at {c.cost_share:.1%} of {args.reference}'s cost "
            f"({args.reference} itself {c.reference_quality:.3f})  {picks}"
        )
    qualities = [c.quality for c in results.values()]
    spread = f"{min(qualities):.3f}–{max(qualities):.3f}"
    print(f"ceiling over {len(qualities)} splits: median {np.median(qualities):.3f}, {spread}")
    payload: dict[str, Any] = {"source": args.source, "reference": args.reference, "share": args.share}
    payload["splits"] = {str(seed): asdict(c) for seed, c in results.items()}
    if checkpoint is not None:
        correlation = checkpoint_correlation(checkpoint, rows)
        payload["within_task_correlation"] = correlation
        print(f"{args.checkpoint}: correlation of predicted and recorded quality within each task, held-out rows")
        for model, per_task in correlation.items():
            print(f"  {model:<45}" + "  ".join(f"{t.split('/')[-1]} {r:+.3f}" for t, r in per_task.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
