"""The project's targets, checked against a run's own results, so that a run says which of them held.

    python -m bench.targets [--eval docs/results/eval.json]   # the verdicts of bench/results/ and of an eval

`bench.gateway_overhead` and `bench.router_scoring` print their verdicts at the end of a run. The targets (issue 5,
and issue 3's bars): with one client, a routed cache miss adds at most 15 ms at p50 and 50 ms at p99 and a cache hit
at most 2 ms at p50; at 64 clients, the gateway's added latency (p50 and p99, plain and streamed) and its throughput
are no worse than LiteLLM's proxy's; in process, a 100-token prompt scores in under 15 ms (median) and a cached
feature vector in under 1 ms; on the held-out split of every source (`llmrank eval --json`, issue 28), the router's
AIQ beats the kNN and ridge baselines'; on MMLU-Pro some tier keeps 90% of the best single model's quality at 25% of
its cost and the perf tier 97% at 70%; on RouterBench the balanced tier keeps quality ≥ 0.85 at a tenth of
gpt-4-1106-preview's cost; on AlpacaEval the router's AIQ beats every single model's point and ridge's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS
from gateway.settings import PROJECT_ROOT

TRANSPORTS = {"auto": "gateway", "LiteLLM": "gateway_litellm"}  # auto, the default, calls the stub directly
PROXY = "litellm_proxy"
LOADED = 64
REFERENCE = "gpt-4-1106-preview"
COMMITTED_EVAL = PROJECT_ROOT / "docs" / "results" / "eval.json"


@dataclass(frozen=True)
class Verdict:
    target: str
    scope: str  # the transport, "in process", or the prompts evaluated
    measured: str
    holds: bool


def overhead_verdicts(rows: list[dict[str, Any]], streaming: list[dict[str, Any]]) -> list[Verdict]:
    """Verdicts for `bench.gateway_overhead`'s rows (wrk) and streaming rows (time to first byte); targets whose
    rows the run did not measure are left out."""
    plain = {(r["target"], r["concurrency"]): r for r in rows}
    streamed = {(s["target"], s["concurrency"]): s for s in streaming}
    verdicts: list[Verdict] = []
    for transport, prefix in TRANSPORTS.items():
        verdicts += _one_client(transport, prefix, plain)
        verdicts += _against_the_proxy(transport, prefix, plain, streamed)
    return verdicts


def _one_client(transport: str, prefix: str, plain: dict[tuple[str, int], dict[str, Any]]) -> Iterator[Verdict]:
    for target, row_name, key, limit in (
        ("c=1 cache miss: added p50 ≤ 15 ms", f"{prefix}_miss", "added_p50_ms", 15.0),
        ("c=1 cache miss: added p99 ≤ 50 ms", f"{prefix}_miss", "added_p99_ms", 50.0),
        ("c=1 cache hit: added p50 ≤ 2 ms", f"{prefix}_hit", "added_p50_ms", 2.0),
    ):
        row = plain.get((row_name, 1))
        if row is not None:
            yield Verdict(target, transport, f"{row[key]:.2f} ms", row[key] <= limit)


def _against_the_proxy(
    transport: str,
    prefix: str,
    plain: dict[tuple[str, int], dict[str, Any]],
    streamed: dict[tuple[str, int], dict[str, Any]],
) -> Iterator[Verdict]:
    proxy_plain, proxy_streamed = plain.get((PROXY, LOADED)), streamed.get((PROXY, LOADED))
    for cache in ("miss", "hit"):
        ours, proxy = plain.get((f"{prefix}_{cache}", LOADED)), proxy_plain
        if ours is not None and proxy is not None:
            target = f"c={LOADED} cache {cache}: added p50, p99 ≤ the proxy's"
            yield _no_worse(target, transport, ours, proxy, ("added_p50_ms", "added_p99_ms"))
            yield Verdict(
                f"c={LOADED} cache {cache}: req/s ≥ the proxy's",
                transport,
                f"{ours['rps']:.1f} vs {proxy['rps']:.1f}",
                ours["rps"] >= proxy["rps"],
            )
        ours, proxy = streamed.get((f"{prefix}_{cache}", LOADED)), proxy_streamed
        if ours is not None and proxy is not None:
            target = f"c={LOADED} cache {cache}, streamed: first byte p50, p99 ≤ the proxy's"
            yield _no_worse(target, transport, ours, proxy, ("p50", "p99"))


def _no_worse(
    target: str, transport: str, ours: dict[str, Any], proxy: dict[str, Any], keys: tuple[str, ...]
) -> Verdict:
    """Every one of `keys` (latency columns, ms) at most the proxy's."""
    measured = ", ".join(f"{ours[k]:.1f} vs {proxy[k]:.1f}" for k in keys) + " ms"
    return Verdict(target, transport, measured, all(ours[k] <= proxy[k] for k in keys))


def scoring_verdicts(rows: list[dict[str, Any]]) -> list[Verdict]:
    """Verdicts for `bench.router_scoring`'s rows (one per prompt length)."""
    verdicts = []
    by_length = {r["tokens"]: r for r in rows}
    if 100 in by_length:
        miss = by_length[100]["miss_ms"]["p50"]
        verdicts.append(Verdict("100-token prompt scored: p50 < 15 ms", "in process", f"{miss:.2f} ms", miss < 15))
    if rows:
        hit = max(r["hit_ms"]["p50"] for r in rows)
        measured = f"{hit:.3f} ms (the slowest length)"
        verdicts.append(Verdict("cached feature vector scored: p50 < 1 ms", "in process", measured, hit < 1))
    return verdicts


def routing_verdicts(result: dict[str, Any]) -> list[Verdict]:
    """Verdicts for an `llmrank eval --json` result (issue 28's bars), for each source it holds."""
    per_source = result["per_source"]
    verdicts = [baseline_verdict(source, rep) for source, rep in per_source.items()]
    if "mmlu_pro" in per_source:
        verdicts += mmlu_pro_verdicts(per_source["mmlu_pro"])
    if "routerbench" in per_source:
        verdicts += routerbench_verdicts(per_source["routerbench"])
    if "alpaca_eval" in per_source:
        verdicts.append(chat_verdict(per_source["alpaca_eval"]))
    return verdicts


def baseline_verdict(source: str, rep: dict[str, Any]) -> Verdict:
    knn, ridge = rep["baseline_aiq"]["knn"], rep["baseline_aiq"]["ridge"]
    measured = f"{rep['aiq']:.4f} vs {knn:.4f} / {ridge:.4f}"
    return Verdict(f"{source}: AIQ > kNN's and ridge's", _scope(rep), measured, rep["aiq"] > max(knn, ridge))


def mmlu_pro_verdicts(rep: dict[str, Any]) -> list[Verdict]:
    """Some tier ≥ 90% of the best single model's quality at ≤ 25% of its cost; perf ≥ 97% at ≤ 70%."""
    best = max(rep["single_models"], key=lambda m: m["quality"])
    shares = {t: _shares(rep, t, best) for t in ("perf", "balanced", "cost")}
    frugal = max(shares, key=lambda t: (shares[t][1] <= 0.25, shares[t][0]))
    name = best["name"]
    return [
        Verdict(
            f"mmlu_pro: a tier ≥ 90% of {name}'s quality at ≤ 25% of its cost",
            _scope(rep),
            f"{frugal}: {shares[frugal][0]:.1%} at {shares[frugal][1]:.1%}",
            shares[frugal][0] >= 0.90 and shares[frugal][1] <= 0.25,
        ),
        Verdict(
            f"mmlu_pro: perf ≥ 97% of {name}'s quality at ≤ 70% of its cost",
            _scope(rep),
            f"{shares['perf'][0]:.1%} at {shares['perf'][1]:.1%}",
            shares["perf"][0] >= 0.97 and shares["perf"][1] <= 0.70,
        ),
    ]


def routerbench_verdicts(rep: dict[str, Any]) -> list[Verdict]:
    reference = next((m for m in rep["single_models"] if m["name"] == REFERENCE), None)
    if reference is None:
        return []
    balanced = next(r for r in rep["rows"] if r["name"] == "balanced")
    ratio = balanced["cost"] / reference["cost"]
    return [
        Verdict(
            f"routerbench: balanced ≥ 0.85 quality at ≤ 1/10 of {REFERENCE}'s cost",
            _scope(rep),
            f"{balanced['quality']:.4f} at {ratio:.3f}× its cost",
            balanced["quality"] >= 0.85 and ratio <= 0.1,
        )
    ]


def chat_verdict(rep: dict[str, Any]) -> Verdict:
    best = max(rep["single_models"], key=lambda m: m["aiq"])
    ridge = rep["baseline_aiq"]["ridge"]
    return Verdict(
        "alpaca_eval: AIQ > every single model's point and ridge's",
        _scope(rep),
        f"{rep['aiq']:.4f} vs {best['aiq']:.4f} ({best['name']}) / {ridge:.4f}",
        rep["aiq"] > max(best["aiq"], ridge),
    )


def _shares(rep: dict[str, Any], tier: str, best: dict[str, Any]) -> tuple[float, float]:
    row = next(r for r in rep["rows"] if r["name"] == tier)
    return row["quality"] / best["quality"], row["cost"] / best["cost"]


def _scope(rep: dict[str, Any]) -> str:
    return f"{rep['n']} prompts"


def print_verdicts(verdicts: list[Verdict]) -> None:
    if not verdicts:
        return
    width = max(len(v.target) for v in verdicts)
    print(f"\n{'target':<{width}}  {'scope':<13}  {'measured':<52}  holds")
    for v in verdicts:
        print(f"{v.target:<{width}}  {v.scope:<13}  {v.measured:<52}  {'yes' if v.holds else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval", type=Path, default=COMMITTED_EVAL)
    args = parser.parse_args()
    for path, check in (
        (RESULTS / "gateway_overhead.json", lambda r: overhead_verdicts(r["rows"], r["streaming_ttfb_ms"])),
        (RESULTS / "router_scoring.json", lambda r: scoring_verdicts(r["rows"])),
        (args.eval, routing_verdicts),
    ):
        if path.exists():
            print(f"{path}:", end="")
            print_verdicts(check(json.loads(path.read_text())))
            print()


if __name__ == "__main__":
    main()
