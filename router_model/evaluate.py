"""Evaluation: the paper's Table 3 and Table 4, the cost–quality curve over λ, its area (AIQ), a Pareto plot.

The router sees only prompts: predictions are computed from text, and a row's recorded quality and cost are
used afterwards to score the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router_model.data import RouterBenchData
from router_model.policy import choose

SWEEP_LAMBDAS: tuple[float, ...] = (0.0, *np.round(np.logspace(0, 5, 41), 6).tolist())
PAPER_PRESET = {"paper_perf": 0.0, "paper_balanced": 1e3, "paper_cost": 1e5}


@dataclass(frozen=True)
class Predictions:
    """What the router believes about each row, from the prompt alone."""

    quality: Mapping[str, np.ndarray]  # head name → (n, m) predicted quality
    cost: np.ndarray  # (n, m) predicted dollars


@dataclass(frozen=True)
class Outcome:
    quality: float
    cost: float  # dollars, summed over rows
    per_row_quality: np.ndarray


def outcome(chosen: np.ndarray, data: RouterBenchData) -> Outcome:
    rows = np.arange(len(chosen))
    per_row = data.quality[rows, chosen]
    return Outcome(float(per_row.mean()), float(data.cost[rows, chosen].sum()), per_row)


def oracle_choice(data: RouterBenchData) -> np.ndarray:
    """The best recorded quality per row, the cheapest model among ties."""
    return choose(data.quality, data.cost, 0.0)


def sweep(quality: np.ndarray, cost_hat: np.ndarray, data: RouterBenchData) -> list[dict[str, float]]:
    points = []
    for lam in SWEEP_LAMBDAS:
        result = outcome(choose(quality, cost_hat, lam), data)
        points.append({"lambda": lam, "quality": result.quality, "cost": result.cost})
    return points


def aiq(points: Sequence[Mapping[str, float]], cost_range: tuple[float, float]) -> float:
    """Area under the non-decreasing upper convex hull of the curve, cost scaled to [0, 1] (RouterBench AIQ).

    Cost is scaled between the cheapest and the dearest single model; below the router's cheapest point the
    curve counts as zero, beyond its dearest point it stays flat.
    """
    low, high = cost_range
    xy = sorted((min(max((p["cost"] - low) / (high - low), 0.0), 1.0), p["quality"]) for p in points)
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
    data: RouterBenchData,
    predictions: Predictions,
    tiers: Mapping[str, float],
    best_single: str,
    cheapest: str,
    baseline_lambda: float | None = None,
) -> dict[str, Any]:
    """Every row of Table 3, Table 4, the λ sweeps and their AIQ, as one JSON-ready report."""
    baseline_lambda = tiers["balanced"] if baseline_lambda is None else baseline_lambda
    main = predictions.quality["quality"]
    choices: dict[str, tuple[float | None, np.ndarray]] = {"oracle": (None, oracle_choice(data))}
    for name, lam in {**tiers, **PAPER_PRESET}.items():
        choices[name] = (lam, choose(main, predictions.cost, lam))
    for name, column in (("best_single", best_single), ("cheapest", cheapest)):
        choices[name] = (None, np.full(len(data), data.models.index(column)))
    for name in ("knn", "features_only", "embedding_only"):
        if name in predictions.quality:
            choices[name] = (
                baseline_lambda,
                choose(predictions.quality[name], predictions.cost, baseline_lambda),
            )
    for name, q in predictions.quality.items():
        if name.startswith("lambda_"):
            choices[f"design_a[{name}]"] = (float(name.removeprefix("lambda_")), q.argmax(axis=1))

    outcomes = {name: outcome(chosen, data) for name, (_, chosen) in choices.items()}
    oracle = outcomes["oracle"]
    rows = [_row(name, choices[name][0], result, oracle) for name, result in outcomes.items()]
    per_model_cost = data.cost.sum(axis=0)
    cost_range = (float(per_model_cost.min()), float(per_model_cost.max()))
    curves = {
        name: sweep(predictions.quality[name], predictions.cost, data)
        for name in ("quality", "knn", "features_only", "embedding_only")
        if name in predictions.quality
    }
    return {
        "n": len(data),
        "rows": rows,
        "per_benchmark": _per_benchmark(data, outcomes),
        "single_models": [
            {"name": m, "quality": float(data.quality[:, j].mean()), "cost": float(per_model_cost[j])}
            for j, m in enumerate(data.models)
        ],
        "sweep": curves["quality"],
        "aiq": aiq(curves["quality"], cost_range),
        "baseline_sweeps": {k: v for k, v in curves.items() if k != "quality"},
        "baseline_aiq": {k: aiq(v, cost_range) for k, v in curves.items() if k != "quality"},
        "tiers": dict(tiers),
    }


def _row(name: str, lam: float | None, result: Outcome, oracle: Outcome) -> dict[str, Any]:
    return {
        "name": name,
        "lambda": lam,
        "quality": result.quality,
        "cost": result.cost,
        "efficiency": result.quality / oracle.quality,
        "cost_ratio": result.cost / oracle.cost,
        "quality_gap": oracle.quality - result.quality,
    }


def _per_benchmark(data: RouterBenchData, outcomes: Mapping[str, Outcome]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for bench in sorted(set(data.benchmarks.tolist())):
        mask = data.benchmarks == bench
        table[bench] = {name: float(o.per_row_quality[mask].mean()) for name, o in outcomes.items()}
        table[bench]["n"] = int(mask.sum())
    return table


def format_report(report: Mapping[str, Any]) -> str:
    """The tables as plain text, as printed by `llmrank eval`."""
    lines = [f"Table 3 — n = {report['n']} prompts (cost in $ summed over them)", ""]
    lines.append(f"{'router':<28}{'λ':>10}{'quality':>9}{'cost $':>10}{'effic.':>8}{'cost×':>8}{'gap':>8}")
    for r in report["rows"]:
        lam = "—" if r["lambda"] is None else f"{r['lambda']:g}"
        lines.append(
            f"{r['name']:<28}{lam:>10}{r['quality']:>9.4f}{r['cost']:>10.4f}"
            f"{r['efficiency']:>8.3f}{r['cost_ratio']:>8.2f}{r['quality_gap']:>8.4f}"
        )
    benches = list(report["per_benchmark"])
    lines += ["", "Table 4 — quality per benchmark", ""]
    lines.append(f"{'router':<28}" + "".join(f"{b[:16]:>17}" for b in benches))
    for r in report["rows"]:
        lines.append(f"{r['name']:<28}" + "".join(f"{report['per_benchmark'][b][r['name']]:>17.4f}" for b in benches))
    lines.append(f"{'(n)':<28}" + "".join(f"{report['per_benchmark'][b]['n']:>17d}" for b in benches))
    lines += ["", f"AIQ (area under the cost–quality curve): router {report['aiq']:.4f}"]
    lines += [f"  {name:<16}{value:.4f}" for name, value in report["baseline_aiq"].items()]
    return "\n".join(lines)


def plot_pareto(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = report["n"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, curve in [("LLMRank", report["sweep"]), *report["baseline_sweeps"].items()]:
        xs = [p["cost"] / n for p in curve]
        ax.plot(xs, [p["quality"] for p in curve], marker=".", label=f"{name} (λ sweep)")
    for m in report["single_models"]:
        ax.scatter(m["cost"] / n, m["quality"], marker="s", color="grey")
        ax.annotate(m["name"].split("/")[-1], (m["cost"] / n, m["quality"]), fontsize=7)
    for r in report["rows"]:
        if r["name"] in ("oracle", "perf", "balanced", "cost"):
            ax.scatter(r["cost"] / n, r["quality"], marker="*", s=160, zorder=5)
            ax.annotate(r["name"], (r["cost"] / n, r["quality"]), fontsize=9, weight="bold")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query ($, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(f"Cost–quality on {n} held-out prompts")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
