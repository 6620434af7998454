"""What the decisions log costs and whether it stays bounded.

1. Added latency of a c=1 cache hit with the log on and with it off, side by side: two gateways on the same stub
   upstream (each with its own Redis database), wrk runs interleaved on / off / on / … and the medians compared.
2. Bounded: `--decisions` routed requests (100,000 by default) through a gateway whose log is capped at
   LLMRANK_DECISIONS_MAX (10,000), once with Redis (the stream) and once without (the in-process ring): the stream's
   length and the gateway's RSS sampled as they go.

    python -m bench.decisions_log [--rounds 5] [--duration 5] [--decisions 100000] [--transport direct]

Needs wrk. Traffic stays on 127.0.0.1, every run is bounded by its duration or count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import write_results
from bench.gateway_overhead import BENCH_REDIS_DB, bench_env, bench_redis, rss_mb, stub_backends, stub_upstream, wrk
from gateway.decisions import STREAM
from tests.support.cluster import Replica

ROUTED = {"X-Budget-Tier": "balanced"}
MAX_ADDED_MS = 0.3  # issue 30: the log may add at most this to a c=1 cache hit


def start_gateway(running: ExitStack, work: Path, name: str, upstream: str, transport: str, **settings: str) -> Replica:
    """A gateway on the stub, stopped when `running` closes."""
    replica = Replica(name, work, stub_backends(upstream, transport), settings)
    replica.start()
    running.callback(replica.stop)
    replica.wait_ready()
    return replica


def added_latency(args: argparse.Namespace, env: dict[str, str], work: Path, running: ExitStack) -> dict[str, Any]:
    upstream = stub_upstream(running, work, env)
    on_redis = running.enter_context(bench_redis(BENCH_REDIS_DB))
    off_redis = running.enter_context(bench_redis(BENCH_REDIS_DB + 1))
    on = start_gateway(running, work, "log_on", upstream, args.transport, LLMRANK_REDIS_URL=on_redis).url
    off_env = {"LLMRANK_REDIS_URL": off_redis, "LLMRANK_DECISIONS_LOG": "false"}
    off = start_gateway(running, work, "log_off", upstream, args.transport, **off_env).url
    targets = {"direct": (upstream, "stub", {}), "log_on": (on, "auto", ROUTED), "log_off": (off, "auto", ROUTED)}
    for url, model, headers in targets.values():
        wrk(url, model, False, headers, 8, 2, work)  # warm up, and the prompt's vector into the cache
    runs: dict[str, list[float]] = {name: [] for name in targets}
    for round_ in range(args.rounds):
        order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
        for name in order:
            url, model, headers = targets[name]
            result = wrk(url, model, False, headers, 1, args.duration, work)
            assert result["errors"] == 0, f"{name}: {result['errors']} errors"
            runs[name].append(result["p50_ms"])
        print(f"  round {round_ + 1}: " + "  ".join(f"{n} {runs[n][-1]:.3f} ms" for n in targets), flush=True)
    p50 = {name: statistics.median(values) for name, values in runs.items()}
    added = {name: p50[name] - p50["direct"] for name in ("log_on", "log_off")}
    recorded = int(redis.Redis.from_url(on_redis).xlen(STREAM))  # type: ignore[arg-type]
    assert recorded > 0, "the log-on gateway recorded nothing"
    return {
        "p50_ms": p50,
        "runs_p50_ms": runs,
        "added_ms": added,
        "log_cost_ms": added["log_on"] - added["log_off"],
        "holds": added["log_on"] - added["log_off"] <= MAX_ADDED_MS,
    }


def bounded(
    args: argparse.Namespace, env: dict[str, str], work: Path, running: ExitStack, with_redis: bool
) -> dict[str, Any]:
    upstream = stub_upstream(running, work, env)
    redis_url = running.enter_context(bench_redis(BENCH_REDIS_DB + 2)) if with_redis else ""
    name = "bounded_redis" if with_redis else "bounded_memory"
    gateway = start_gateway(
        running, work, name, upstream, args.transport, LLMRANK_REDIS_URL=redis_url, LLMRANK_DECISIONS_MAX="10000"
    )
    url, pid = gateway.url, gateway.proc.pid  # type: ignore[union-attr]
    samples = []
    total = 0
    while total < args.decisions:
        result = wrk(url, "auto", False, ROUTED, 16, args.step_s, work)
        assert result["errors"] == 0, f"{name}: {result['errors']} errors"
        total += result["requests"]
        session = httpx.get(f"{url}/ui/api/session", timeout=10).json()
        assert session["source"] == ("redis" if with_redis else "memory")
        stored = session["decisions_kept"]
        samples.append({"decisions": total, "stored": stored, "rss_mb": round(rss_mb(pid), 1)})
        print(f"  {name}: {total:>7} decisions  stored {stored:>6}  RSS {samples[-1]['rss_mb']:.1f} MB", flush=True)
    after_cap = [s["rss_mb"] for s in samples if s["decisions"] >= 20_000]
    return {
        "decisions": total,
        "cap": 10_000,
        "samples": samples,
        "stored_at_end": samples[-1]["stored"],
        "rss_growth_after_20k_mb": round(max(after_cap) - min(after_cap), 1) if after_cap else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--step-s", type=int, default=10, help="seconds of load between samples")
    parser.add_argument("--transport", default="direct", choices=["litellm", "direct"])
    parser.add_argument("--parts", nargs="+", default=["c1_hit", "bounded_redis", "bounded_memory"])
    args = parser.parse_args()
    env = bench_env()
    results: dict[str, Any] = {"transport": args.transport}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "c1_hit" in args.parts:
            with ExitStack() as running:
                results["c1_hit"] = added_latency(args, env, work, running)
        for name, with_redis in (("bounded_redis", True), ("bounded_memory", False)):
            if name in args.parts:
                with ExitStack() as running:
                    results[name] = bounded(args, env, work, running, with_redis)
    if set(args.parts) != {"c1_hit", "bounded_redis", "bounded_memory"}:
        print(json.dumps(results, indent=1))
        return
    report(results)
    write_results("decisions_log", results)


def report(results: dict[str, Any]) -> None:
    hit = results["c1_hit"]
    print(f"\nc=1 cache hit, transport {results['transport']} (median p50 of the interleaved runs)")
    print(f"  {'':<10} {'p50 ms':>8} {'added ms':>9}")
    for name in ("direct", "log_off", "log_on"):
        added = hit["added_ms"].get(name)
        print(f"  {name:<10} {hit['p50_ms'][name]:8.3f} {'' if added is None else f'{added:9.3f}'}")
    verdict = "holds" if hit["holds"] else "FAILS"
    print(f"  the log adds {hit['log_cost_ms']:+.3f} ms (bar ≤ {MAX_ADDED_MS} ms): {verdict}")
    for name in ("bounded_redis", "bounded_memory"):
        b = results[name]
        print(
            f"{name}: {b['decisions']} decisions, {b['stored_at_end']} kept (cap {b['cap']}), "
            f"RSS {b['samples'][0]['rss_mb']} → {b['samples'][-1]['rss_mb']} MB, "
            f"spread after 20k {b['rss_growth_after_20k_mb']} MB"
        )


if __name__ == "__main__":
    main()
