"""Evaluation: the paper's Table 3 per source and overall, Table 4 per task, the cost–quality curve over λ, its area
(AIQ), a Pareto plot.

The router sees only prompts: predictions are computed from text, and a row's recorded quality and cost are used
afterwards to score the decision. Each source is scored over its own priced pool: on a row, the router (and the
oracle) may pick only the models that source graded on that row and that have a cost; a single-model row is a model
the source graded on nearly all its rows (gemini-1.5-pro-002 lacks 6 of MMLU-Pro's 8,932), scored on the rows it
has: mean quality, and mean cost × rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router_model.data import OutcomeTable
from router_model.policy import choose_among

SWEEP_LAMBDAS: tuple[float, ...] = (0.0, *np.round(np.logspace(0, 5, 41), 6).tolist())
PAPER_PRESET = {"paper_perf": 0.0, "paper_balanced": 1e3, "paper_cost": 1e5}
BASELINES = ("knn", "ridge", "features_only", "embedding_only")
SINGLE_MODEL_COVERAGE = 0.98  # share of a source's rows a model must be graded on to stand as a single model
TABLE4_COLUMNS = ("oracle", "perf", "balanced", "cost", "best_single", "cheapest", "knn", "ridge")


@dataclass(frozen=True)
class Predictions:
    """What the router believes about each row, from the prompt alone."""

    quality: Mapping[str, np.ndarray]  # head or baseline name → (n, m) predicted quality
    cost: np.ndarray  # (n, m) predicted dollars

    def subset(self, idx: np.ndarray) -> Predictions:
        return Predictions({k: v[idx] for k, v in self.quality.items()}, self.cost[idx])


@dataclass(frozen=True)
class Outcome:
    quality: float
    cost: float  # dollars, summed over rows
    per_row_quality: np.ndarray


def available(data: OutcomeTable) -> np.ndarray:
    """(n, m) the models a row can be routed to when it is scored: graded on it, with a cost."""
    return data.observed & ~np.isnan(data.cost)


def outcome(chosen: np.ndarray, data: OutcomeTable) -> Outcome:
    rows = np.arange(len(chosen))
    per_row = data.quality[rows, chosen]
    return Outcome(float(per_row.mean()), float(data.cost[rows, chosen].sum()), per_row)


def oracle_choice(data: OutcomeTable) -> np.ndarray:
    """The best recorded quality per row among its available models, the cheapest among ties."""
    return choose_among(np.nan_to_num(data.quality), np.nan_to_num(data.cost), 0.0, available(data))


def single_model(data: OutcomeTable, j: int) -> Outcome:
    """Model j on every row, scored on the rows where it is available."""
    has = available(data)[:, j]
    per_row = np.where(has, data.quality[:, j], np.nan)
    cost = float(data.cost[has, j].mean() * len(data))
    return Outcome(float(np.nanmean(per_row)), cost, per_row)


def single_models(data: OutcomeTable) -> list[dict[str, Any]]:
    """Every model available on nearly all rows: its mean quality and cost (`single_model`)."""
    coverage = available(data).mean(axis=0)
    picked = [(data.models[j], single_model(data, int(j))) for j in np.flatnonzero(coverage >= SINGLE_MODEL_COVERAGE)]
    return [{"name": name, "quality": o.quality, "cost": o.cost} for name, o in picked]


def sweep(quality: np.ndarray, cost_hat: np.ndarray, data: OutcomeTable) -> list[dict[str, float]]:
    allowed = available(data)
    points = []
    for lam in SWEEP_LAMBDAS:
        result = outcome(choose_among(quality, cost_hat, lam, allowed), data)
        points.append({"lambda": lam, "quality": result.quality, "cost": result.cost})
    return points


def aiq(points: Sequence[Mapping[str, float]], cost_range: tuple[float, float]) -> float:
    """Area under the non-decreasing upper convex hull of the curve, cost scaled to [0, 1] (RouterBench AIQ).

    Cost is scaled between the cheapest and the dearest single model; below the router's cheapest point the
    curve counts as zero, beyond its dearest point it stays flat. A single model's own AIQ is that of its one point.
    """
    low, high = cost_range
    span = max(high - low, 1e-12)
    xy = sorted((min(max((p["cost"] - low) / span, 0.0), 1.0), p["quality"]) for p in points)
    hull: list[tuple[float, float]] = []
    for x, y in xy:
        if hull and y <= hull[-1][1]:
            continue
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], (x, y)) >= 0:
            hull.pop()
        hull.append((x, y))
    hull.append((1.0, hull[-1][1]))
    xs, ys = zip(*hull, strict=True)
    return float(np.trapezoid(ys, xs))


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def evaluate(
    data: OutcomeTable,
    predictions: Predictions,
    tiers: Mapping[str, float],
    baseline_lambda: float | None = None,
) -> dict[str, Any]:
    """Table 3, Table 4 per task, the λ sweeps and their AIQ for the rows of one source, as one JSON-ready report."""
    baseline_lambda = tiers["balanced"] if baseline_lambda is None else baseline_lambda
    singles = single_models(data)
    if not singles:
        raise ValueError("no model is graded and priced on nearly every row: nothing to compare the router with")
    choices = _choices(data, predictions, tiers, baseline_lambda, singles)
    outcomes = {
        name: single_model(data, int(chosen[0])) if name in ("best_single", "cheapest") else outcome(chosen, data)
        for name, (_, chosen) in choices.items()
    }
    oracle = outcomes["oracle"]
    costs = [m["cost"] for m in singles]
    cost_range = (min(costs), max(costs))
    curves = {name: sweep(predictions.quality[name], predictions.cost, data) for name in ("quality", *BASELINES)
              if name in predictions.quality}  # fmt: skip
    return {
        "n": len(data),
        "rows": [_row(name, choices[name][0], result, oracle) for name, result in outcomes.items()],
        "per_task": _per_task(data, outcomes),
        "single_models": [m | {"aiq": aiq([m], cost_range)} for m in singles],
        "cost_range": list(cost_range),
        "sweep": curves["quality"],
        "aiq": aiq(curves["quality"], cost_range),
        "baseline_sweeps": {k: v for k, v in curves.items() if k != "quality"},
        "baseline_aiq": {k: aiq(v, cost_range) for k, v in curves.items() if k != "quality"},
        "tiers": dict(tiers),
    }


def _choices(
    data: OutcomeTable,
    predictions: Predictions,
    tiers: Mapping[str, float],
    baseline_lambda: float,
    singles: Sequence[Mapping[str, Any]],
) -> dict[str, tuple[float | None, np.ndarray]]:
    """Table 3's rows: each router's λ and its pick per row."""
    allowed = available(data)
    main = predictions.quality["quality"]
    choices: dict[str, tuple[float | None, np.ndarray]] = {"oracle": (None, oracle_choice(data))}
    for name, lam in {**tiers, **PAPER_PRESET}.items():
        choices[name] = (lam, choose_among(main, predictions.cost, lam, allowed))
    best = max(singles, key=lambda m: m["quality"])["name"]
    cheapest = min(singles, key=lambda m: m["cost"])["name"]
    for name, model in (("best_single", best), ("cheapest", cheapest)):
        choices[name] = (None, np.full(len(data), data.models.index(model)))
    for name in BASELINES:
        if name in predictions.quality:
            picked = choose_among(predictions.quality[name], predictions.cost, baseline_lambda, allowed)
            choices[name] = (baseline_lambda, picked)
    for name, q in predictions.quality.items():
        if name.startswith("lambda_"):
            picked = choose_among(q, np.zeros_like(predictions.cost), 0.0, allowed)
            choices[f"design_a[{name}]"] = (float(name.removeprefix("lambda_")), picked)
    return choices


def evaluate_sources(data: OutcomeTable, predictions: Predictions, tiers: Mapping[str, float]) -> dict[str, Any]:
    """One report per source (its own pool and cost scale) and an overall one: Table 3 summed over every row, and
    the AIQ and validation curve averaged over sources (quality as is, cost as a share of that source's dearest
    single model), which is what the tiers are chosen on."""
    per_source = {}
    for source in sorted(set(data.sources.tolist())):
        idx = np.flatnonzero(data.sources == source)
        per_source[source] = evaluate(data.subset(idx), predictions.subset(idx), tiers)
    return {"overall": _overall(per_source), "per_source": per_source}


def combined_curve(per_source: Mapping[str, Mapping[str, Any]]) -> list[dict[str, float]]:
    """The λ sweep averaged over sources: mean quality and mean cost as a share of each source's dearest model."""
    reports = list(per_source.values())
    points = []
    for k, lam in enumerate(SWEEP_LAMBDAS):
        quality = np.mean([r["sweep"][k]["quality"] for r in reports])
        cost = np.mean([r["sweep"][k]["cost"] / r["cost_range"][1] for r in reports])
        points.append({"lambda": lam, "quality": float(quality), "cost": float(cost)})
    return points


def cheapest_share(per_source: Mapping[str, Mapping[str, Any]]) -> float:
    """The cheapest single model's cost as a share of the dearest, averaged over sources (`combined_curve`'s scale)."""
    return float(np.mean([r["cost_range"][0] / r["cost_range"][1] for r in per_source.values()]))


def _overall(per_source: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    n = sum(r["n"] for r in per_source.values())
    names = [row["name"] for row in next(iter(per_source.values()))["rows"]]
    summed = {}
    for name in names:
        picked = [(next(x for x in r["rows"] if x["name"] == name), r["n"]) for r in per_source.values()]
        quality = sum(row["quality"] * size for row, size in picked) / n
        cost = sum(row["cost"] for row, _ in picked)
        summed[name] = (picked[0][0]["lambda"], Outcome(quality, cost, np.empty(0)))
    oracle = summed["oracle"][1]
    rows = [_row(name, lam, result, oracle) for name, (lam, result) in summed.items()]
    baselines = next(iter(per_source.values()))["baseline_aiq"]
    return {
        "n": n,
        "rows": rows,
        "aiq": float(np.mean([r["aiq"] for r in per_source.values()])),
        "baseline_aiq": {k: float(np.mean([r["baseline_aiq"][k] for r in per_source.values()])) for k in baselines},
        "sweep": combined_curve(per_source),
    }


def _row(name: str, lam: float | None, result: Outcome, oracle: Outcome) -> dict[str, Any]:
    """A Table 3 row: quality and cost, and both against the oracle's."""
    return {
        "name": name,
        "lambda": lam,
        "quality": result.quality,
        "cost": result.cost,
        "efficiency": result.quality / oracle.quality,
        "cost_ratio": result.cost / oracle.cost,
        "quality_gap": oracle.quality - result.quality,
    }


def _per_task(data: OutcomeTable, outcomes: Mapping[str, Outcome]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for task in sorted(set(data.tasks.tolist())):
        mask = data.tasks == task
        table[task] = {name: float(np.nanmean(o.per_row_quality[mask])) for name, o in outcomes.items()}
        table[task]["n"] = int(mask.sum())
    return table


def format_table3(report: Mapping[str, Any], title: str) -> list[str]:
    lines = [f"Table 3 — {title}: n = {report['n']} prompts (cost in $ summed over them)", ""]
    lines.append(f"{'router':<28}{'λ':>10}{'quality':>9}{'cost $':>10}{'effic.':>8}{'cost×':>8}{'gap':>8}")
    for r in report["rows"]:
        lam = "—" if r["lambda"] is None else f"{r['lambda']:g}"
        lines.append(
            f"{r['name']:<28}{lam:>10}{r['quality']:>9.4f}{r['cost']:>10.4f}"
            f"{r['efficiency']:>8.3f}{r['cost_ratio']:>8.2f}{r['quality_gap']:>8.4f}"
        )
    baselines = "  ".join(f"{k} {v:.4f}" for k, v in report["baseline_aiq"].items())
    lines += ["", f"AIQ: router {report['aiq']:.4f}  |  {baselines}"]
    if "single_models" in report:
        best = max(report["single_models"], key=lambda m: m["aiq"])
        lines.append(f"     best single model's point: {best['name']} {best['aiq']:.4f}")
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    """The tables as plain text, as printed by `llmrank eval`: Table 3 per source and overall, Table 4 per task."""
    lines: list[str] = []
    for source, rep in report["per_source"].items():
        lines += [*format_table3(rep, source), ""]
    if len(report["per_source"]) > 1:
        lines += [*format_table3(report["overall"], "overall (AIQ averaged over sources)"), ""]
    lines += ["Table 4 — quality per task", ""]
    lines.append(f"{'task':<40}{'n':>6}" + "".join(f"{c[:11]:>12}" for c in TABLE4_COLUMNS))
    for rep in report["per_source"].values():
        for task, row in rep["per_task"].items():
            cells = "".join(f"{row[c]:>12.4f}" if c in row else f"{'—':>12}" for c in TABLE4_COLUMNS)
            lines.append(f"{task[:39]:<40}{row['n']:>6d}{cells}")
    return "\n".join(lines)


def plot_pareto(report: Mapping[str, Any], path: Path) -> None:
    """One panel per source: the router's and the baselines' λ sweeps, the single models, the tiers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(report["per_source"])
    cols = min(3, len(sources))
    rows = -(-len(sources) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for ax, source in zip(axes.flat, sources, strict=False):
        _plot_source(ax, report["per_source"][source], source)
    for ax in list(axes.flat)[len(sources) :]:
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_source(ax: Any, rep: Mapping[str, Any], source: str) -> None:
    n = rep["n"]
    for name, curve in [("LLMRank", rep["sweep"]), *rep["baseline_sweeps"].items()]:
        ax.plot([p["cost"] / n for p in curve], [p["quality"] for p in curve], marker=".", label=name)
    for m in rep["single_models"]:
        ax.scatter(m["cost"] / n, m["quality"], marker="s", color="grey", s=12)
    for r in rep["rows"]:
        if r["name"] in ("oracle", "perf", "balanced", "cost"):
            ax.scatter(r["cost"] / n, r["quality"], marker="*", s=120, zorder=5)
            ax.annotate(r["name"], (r["cost"] / n, r["quality"]), fontsize=8, weight="bold")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query ($, log)")
    ax.set_ylabel("mean quality")
    ax.set_title(f"{source}: {n} held-out prompts", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3)
