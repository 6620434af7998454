"""The tables the docs quote, rendered from the committed JSON results, so that a doc's figures are its JSON's.

    python -m bench.doc_tables          # prints every table, with the doc and the JSON it belongs to

`tests/test_docs_figures.py` checks that each rendered row stands in its doc as it is here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gateway.settings import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
RESULTS = PROJECT_ROOT / "bench" / "results"
SOURCES = ("alpaca_eval", "llmrouter", "mmlu_pro", "routellm", "routerbench", "routerdc")


def router_results(report: Mapping[str, Any]) -> Iterator[str]:
    """docs/ROUTER_MODEL.md's results table: one row per source of `llmrank eval --json`, then overall."""
    yield (
        "| source (test prompts) | oracle | perf | balanced | cost | best single | AIQ: router | kNN | ridge "
        "| features_only | embedding_only | best single's point |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for source, rep in report["per_source"].items():
        rows = {r["name"]: r for r in rep["rows"]}
        best = max(rep["single_models"], key=lambda m: m["quality"])
        point = max(m["aiq"] for m in rep["single_models"])
        b = rep["baseline_aiq"]
        yield (
            f"| {source} ({rep['n']:,}) | {_cell(rows, 'oracle')} | {_cell(rows, 'perf')} | {_cell(rows, 'balanced')} "
            f"| {_cell(rows, 'cost')} | {best['name'].split('/')[-1]} {best['quality']:.3f} / ${best['cost']:.3f} "
            f"| **{rep['aiq']:.4f}** | {b['knn']:.4f} | {b['ridge']:.4f} | {b['features_only']:.4f} "
            f"| {b['embedding_only']:.4f} | {point:.4f} |"
        )
    overall = report["overall"]
    rows = {r["name"]: r for r in overall["rows"]}
    b = overall["baseline_aiq"]
    yield (
        f"| overall ({overall['n']:,}; AIQ: mean over sources) | {_cell(rows, 'oracle')} | {_cell(rows, 'perf')} "
        f"| {_cell(rows, 'balanced')} | {_cell(rows, 'cost')} | per source {_cell(rows, 'best_single')} "
        f"| **{overall['aiq']:.4f}** | {b['knn']:.4f} | {b['ridge']:.4f} | {b['features_only']:.4f} "
        f"| {b['embedding_only']:.4f} | — |"
    )


def window_study(study: Mapping[str, Any]) -> Iterator[str]:
    """docs/ROUTER_MODEL.md's window table (`router_model.window_study --json`); the best validation AIQ in bold."""
    yield (
        "| window | AIQ validation | AIQ test | test AIQ: alpaca / llmrouter / mmlu_pro / routellm / routerbench / "
        "routerdc | miss p50, 100 / 1,000 words |"
    )
    yield "|---|---|---|---|---|"
    best = max(study["summary"], key=lambda r: r["val_aiq"])["window"]
    for row in study["summary"]:
        cells = [str(row["window"]), f"{row['val_aiq']:.4f}", f"{row['test_aiq']:.4f}"]
        if row["window"] == best:
            cells = [f"**{c}**" for c in cells]
        per_source = " / ".join(f"{row['test_aiq_per_source'][s]:.3f}" for s in SOURCES)
        miss = f"{row['miss_ms_100_words']:.1f} / {row['miss_ms_1000_words']:.1f} ms"
        yield "| " + " | ".join(cells) + f" | {per_source} | {miss} |"


def source_study(study: Mapping[str, Any]) -> Iterator[str]:
    """docs/ROUTER_MODEL.md's source-handling table (`router_model.source_study --json`), validation AIQ."""
    labels = {"plain": "plain", "source_input": "source as input"}
    yield (
        "| option | AIQ validation (mean of sources) | alpaca_eval | llmrouter | mmlu_pro | routellm | routerbench "
        "| routerdc | AIQ test |"
    )
    yield "|---|---|---|---|---|---|---|---|---|"
    best = max(study, key=lambda name: study[name]["val"]["aiq"])
    for name, result in study.items():
        val = result["val"]
        cells = [f"{val['aiq']:.4f}", *(f"{val[s]['aiq']:.4f}" for s in SOURCES)]
        if name == best:
            cells[:2] = [f"**{c}**" for c in cells[:2]]
        label = f"**{labels[name]}**" if name == best else labels[name]
        yield f"| {label} | " + " | ".join(cells) + f" | {result['test']['aiq']:.4f} |"


def calibration_summary(study: Mapping[str, Any]) -> Iterator[str]:
    """docs/CALIBRATION.md's gap table (`router_model.calibration_study --json`)."""
    yield "| | | 50 rows | 100 rows | 200 rows | 500 rows |"
    yield "|---|---|---|---|---|---|"
    for key, label in (("balanced", "balanced quality, points"), ("perf", "perf quality, points"), ("aiq", "AIQ")):
        for kind, name in (("mean_gap", "mean gap"), ("worst_gap", "worst model")):
            values = [study[kind][key][f"rows_{k}"] for k in study["rows"]]
            cells = [f"{v:+.4f}" if key == "aiq" else f"{100 * v:+.2f}" for v in values]
            yield f"| {label} | {name} | " + " | ".join(cells) + " |"


def calibration_per_model(study: Mapping[str, Any]) -> Iterator[str]:
    yield (
        "| held-out model (its source, graded training rows) | | full retraining | 50 rows | 100 rows | 200 rows "
        "| 500 rows |"
    )
    yield "|---|---|---|---|---|---|---|"
    for m in study["per_model"]:
        for key, label in (("balanced", "balanced"), ("aiq", "AIQ")):
            cells = " | ".join(f"{m[f'rows_{k}'][key]:.4f}" for k in study["rows"])
            name = f"{m['held_out']} ({m['source']}, {m['graded_training_rows']:,})"
            yield f"| {name} | {label} | {m['full'][key]:.4f} | {cells} |"


def gateway_overhead(result: Mapping[str, Any]) -> Iterator[str]:
    """docs/BENCHMARKS.md's overhead table (`bench.gateway_overhead`)."""
    yield "| c | target | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p90 | added p99 | cache hits |"
    yield "|---|---|---|---|---|---|---|---|---|---|"
    for r in result["rows"]:
        hits = "—" if r.get("cache_hit_ratio") is None else f"{100 * r['cache_hit_ratio']:.0f} %"
        yield (
            f"| {r['concurrency']} | {r['target']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['added_p50_ms']:.2f} | {r['added_p90_ms']:.2f} | {r['added_p99_ms']:.2f} "
            f"| {hits} |"
        )


def streaming_ttfb(result: Mapping[str, Any]) -> Iterator[str]:
    yield "| c | target | TTFB p50 ms | p90 | p99 | n | errors |"
    yield "|---|---|---|---|---|---|---|"
    for r in result["streaming_ttfb_ms"]:
        yield (
            f"| {r['concurrency']} | {r['target']} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['n']} "
            f"| {r['errors']} |"
        )


def decisions_log(result: Mapping[str, Any]) -> Iterator[str]:
    """docs/BENCHMARKS.md's decisions-log table (`bench.decisions_log`): its cost on a c=1 hit, and its bound."""
    hit = result["c1_hit"]
    yield "| measured | log off | log on | difference |"
    yield "|---|---|---|---|"
    on, off = hit["added_ms"]["log_on"], hit["added_ms"]["log_off"]
    measured = f"c=1 cache-hit added latency p50 (transport {result['transport']})"
    yield f"| {measured} | {off:.3f} ms | {on:.3f} ms | {on - off:+.3f} ms |"
    for name, label in (("bounded_redis", "Redis stream"), ("bounded_memory", "in-process ring (no Redis)")):
        b = result[name]
        first, last = b["samples"][0], b["samples"][-1]
        yield (
            f"| {b['decisions']:,} decisions, cap {b['cap']:,}, {label} | — | kept {b['stored_at_end']:,}; RSS "
            f"{first['rss_mb']:.0f} MB at {first['decisions']:,} → {last['rss_mb']:.0f} MB | spread after 20,000: "
            f"{b['rss_growth_after_20k_mb']:.1f} MB |"
        )


def scale_out(result: Mapping[str, Any]) -> Iterator[str]:
    """docs/BENCHMARKS.md's load-balancer table (`bench.scale_out`)."""
    yield f"| {result['concurrency']} clients, cache hits | req/s | p50 ms | p99 ms | added p50 ms | errors |"
    yield "|---|---|---|---|---|---|"
    for r in result["rows"]:
        yield (
            f"| {r['target']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['added_p50_ms']:.2f} "
            f"| {r['errors']} |"
        )


def ceiling_study(study: Mapping[str, Any]) -> Iterator[str]:
    """docs/ROUTER_MODEL.md's per-task ceiling table (`router_model.ceiling_study --json`), one row per split seed."""
    reference = study["reference"]
    yield (
        f"| split seed | test prompts | best per-task assignment within {study['share']:.0%} of {reference}'s cost "
        f"| its cost | {reference} | assignment |"
    )
    yield "|---|---|---|---|---|---|"
    for seed, c in study["splits"].items():
        picks = ", ".join(f"{task.split('/')[-1]} → {model.split('/')[-1]}" for task, model in c["assignment"].items())
        yield (
            f"| {seed} | {c['n']} | {c['quality']:.3f} | {c['cost_share']:.1%} | {c['reference_quality']:.3f} "
            f"| {picks} |"
        )


def within_task_correlation(study: Mapping[str, Any]) -> Iterator[str]:
    """docs/ROUTER_MODEL.md's within-task correlation table (`router_model.ceiling_study --checkpoint --json`)."""
    table = study["within_task_correlation"]
    tasks = list(next(iter(table.values())))
    yield "| model | " + " | ".join(t.split("/")[-1] for t in tasks) + " |"
    yield "|---" * (len(tasks) + 1) + "|"
    for model, per_task in table.items():
        yield f"| {model.split('/')[-1]} | " + " | ".join(f"{per_task[t]:+.3f}" for t in tasks) + " |"


TABLES: dict[str, tuple[Path, Path, Callable[[Any], Iterator[str]]]] = {
    "router results": (DOCS / "ROUTER_MODEL.md", DOCS / "results" / "eval.json", router_results),
    "window study": (DOCS / "ROUTER_MODEL.md", DOCS / "results" / "window_study.json", window_study),
    "source study": (DOCS / "ROUTER_MODEL.md", DOCS / "results" / "source_study.json", source_study),
    "ceiling study": (DOCS / "ROUTER_MODEL.md", DOCS / "results" / "ceiling_study.json", ceiling_study),
    "within-task correlation": (
        DOCS / "ROUTER_MODEL.md",
        DOCS / "results" / "ceiling_study.json",
        within_task_correlation,
    ),
    "calibration gaps": (DOCS / "CALIBRATION.md", DOCS / "results" / "calibration.json", calibration_summary),
    "calibration per model": (DOCS / "CALIBRATION.md", DOCS / "results" / "calibration.json", calibration_per_model),
    "gateway overhead": (DOCS / "BENCHMARKS.md", RESULTS / "gateway_overhead.json", gateway_overhead),
    "streaming TTFB": (DOCS / "BENCHMARKS.md", RESULTS / "gateway_overhead.json", streaming_ttfb),
    "decisions log": (DOCS / "BENCHMARKS.md", RESULTS / "decisions_log.json", decisions_log),
    "scale out": (DOCS / "BENCHMARKS.md", RESULTS / "scale_out.json", scale_out),
}


def rendered(name: str) -> list[str]:
    _, source, render = TABLES[name]
    return list(render(json.loads(source.read_text())))


def _cell(rows: Mapping[str, Mapping[str, float]], name: str) -> str:
    return f"{rows[name]['quality']:.3f} / ${rows[name]['cost']:.3f}"


def main() -> None:
    for name, (doc, source, _) in TABLES.items():
        print(f"{name}: {doc.relative_to(PROJECT_ROOT)} ← {source.relative_to(PROJECT_ROOT)}")
        print("\n".join(rendered(name)), end="\n\n")


if __name__ == "__main__":
    main()
