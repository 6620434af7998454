"""The performance targets, checked against a run's own rows, so that a run says which of them held.

    python -m bench.targets     # the verdicts of the results under bench/results/

`bench.gateway_overhead` and `bench.router_scoring` print the same verdicts at the end of a run. The targets (issue 5
and the scoring bars of issue 3): with one client, a routed cache miss adds at most 15 ms at p50 and 50 ms at p99 and
a cache hit at most 2 ms at p50; at 64 clients, the gateway's added latency (p50 and p99, plain and streamed) and its
throughput are no worse than LiteLLM's proxy's; in process, a 100-token prompt scores in under 15 ms (median) and a
cached feature vector in under 1 ms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import RESULTS

TRANSPORTS = {"LiteLLM": "gateway", "direct": "gateway_direct"}
PROXY = "litellm_proxy"
LOADED = 64


@dataclass(frozen=True)
class Verdict:
    target: str
    transport: str
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
    for cache in ("miss", "hit"):
        ours, proxy = plain.get((f"{prefix}_{cache}", LOADED)), plain.get((PROXY, LOADED))
        if ours is not None and proxy is not None:
            yield _no_worse(f"c={LOADED} cache {cache}: added p50, p99 ≤ the proxy's", transport, ours, proxy, "added_")
            yield Verdict(
                f"c={LOADED} cache {cache}: req/s ≥ the proxy's",
                transport,
                f"{ours['rps']:.1f} vs {proxy['rps']:.1f}",
                ours["rps"] >= proxy["rps"],
            )
        ours, proxy = streamed.get((f"{prefix}_{cache}", LOADED)), streamed.get((PROXY, LOADED))
        if ours is not None and proxy is not None:
            target = f"c={LOADED} cache {cache}, streamed: first byte p50, p99 ≤ the proxy's"
            yield _no_worse(target, transport, ours, proxy, "")


def _no_worse(target: str, transport: str, ours: dict[str, Any], proxy: dict[str, Any], prefix: str) -> Verdict:
    """p50 and p99 both at most the proxy's; `prefix` names the columns (`added_p50_ms` or `p50`)."""
    keys = [f"{prefix}{p}_ms" if prefix else p for p in ("p50", "p99")]
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


def print_verdicts(verdicts: list[Verdict]) -> None:
    if not verdicts:
        return
    width = max(len(v.target) for v in verdicts)
    print(f"\n{'target':<{width}}  {'transport':<10}  {'measured':<36}  holds")
    for v in verdicts:
        print(f"{v.target:<{width}}  {v.transport:<10}  {v.measured:<36}  {'yes' if v.holds else 'NO'}")


def main() -> None:
    for name, check in (
        ("gateway_overhead", lambda r: overhead_verdicts(r["rows"], r["streaming_ttfb_ms"])),
        ("router_scoring", lambda r: scoring_verdicts(r["rows"])),
    ):
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(f"{path}:", end="")
            print_verdicts(check(json.loads(path.read_text())))
            print()


if __name__ == "__main__":
    main()
