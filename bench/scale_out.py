"""What the load balancer costs: one gateway replica called directly against the same replica behind nginx
(deploy/nginx/llmrank.conf), and two replicas behind it, at 64 clients, in interleaved rounds of one run.

    python -m bench.scale_out [--rounds 3] [--duration 8] [--concurrency 64]

Needs wrk, nginx and redis-server (Debian packages). The replicas share a Redis of their own and call the bench's
stub upstream with the default transport (auto, hence direct); all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import write_results
from bench.gateway_overhead import bench_env, stub_backends, stub_upstream, wrk
from tests.support.cluster import Balancer, RedisServer, Replica

ROUTED = {"X-Budget-Tier": "balanced"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    env = bench_env()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        work = Path(tmp)
        upstream = stub_upstream(running, work, env)
        store = RedisServer(work)
        store.start()
        running.callback(store.kill)
        settings = {"LLMRANK_REDIS_URL": store.url}
        a = Replica("a", work, stub_backends(upstream), settings)
        b = Replica("b", work, stub_backends(upstream), settings)
        for replica in (a, b):
            replica.start()
            running.callback(replica.stop)
        for replica in (a, b):
            replica.wait_ready()
        one = Balancer(work / "one", [a])
        two = Balancer(work / "two", [a, b])
        for balancer in (one, two):
            balancer.folder.mkdir()
            balancer.start()
            running.callback(balancer.stop)
        targets = {
            "upstream stub": (upstream, "stub", {}),
            "replica": (a.url, "auto", ROUTED),
            "replica behind nginx": (one.url, "auto", ROUTED),
            "2 replicas behind nginx": (two.url, "auto", ROUTED),
        }
        for url, model, headers in targets.values():
            wrk(url, model, False, headers, 8, 2, work)  # warm up; the prompt's vector into the shared cache
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for round_ in range(args.rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                url, model, headers = targets[name]
                result = wrk(url, model, False, headers, args.concurrency, args.duration, work)
                runs[name].append(result)
                print(f"  round {round_ + 1} {name:<24} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:.2f} ms  "
                      f"errors {result['errors']}", flush=True)  # fmt: skip
    rows = summarise(runs)
    report(rows, args.concurrency)
    write_results("scale_out", {"concurrency": args.concurrency, "duration_s": args.duration, "rows": rows})


def summarise(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    base = statistics.median(r["p50_ms"] for r in runs["upstream stub"])
    rows = []
    for name, results in runs.items():
        p50 = statistics.median(r["p50_ms"] for r in results)
        p99 = statistics.median(r["p99_ms"] for r in results)
        rows.append(
            {
                "target": name,
                "rps": statistics.median(r["rps"] for r in results),
                "p50_ms": p50,
                "p99_ms": p99,
                "added_p50_ms": p50 - base,
                "errors": sum(r["errors"] for r in results),
            }
        )
    return rows


def report(rows: list[dict[str, Any]], concurrency: int) -> None:
    print(f"\n{concurrency} clients, cache hits (median of the rounds)")
    print(f"  {'target':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'errors':>7}")
    for r in rows:
        print(
            f"  {r['target']:<24} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['added_p50_ms']:10.2f} "
            f"{r['errors']:7d}"
        )
    alone, behind = rows[1], rows[2]
    added, throughput = behind["p50_ms"] - alone["p50_ms"], behind["rps"] / alone["rps"] - 1
    print(f"  nginx's own cost: {added:+.2f} ms p50, {throughput:+.1%} req/s")


if __name__ == "__main__":
    main()
