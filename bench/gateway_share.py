"""How much of the gateway's added latency is the gateway's own: the real gateway (with LiteLLM, and with
`transport: direct`) against a copy whose LiteLLM call is replaced by a canned answer (everything else unchanged:
HTTP serving, parsing, routing, cache, logs, metrics), all on one stub, wrk runs alternated between them.

    python -m bench.gateway_share [--duration 3] [--rounds 10]

The canned copy is a diagnostic, not a product mode: it answers without calling any backend. The difference
between a real gateway and it is what the backend call costs inside the gateway; the canned copy's added latency
is the floor this gateway's own code sets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import write_results
from bench.gateway_overhead import (
    BENCH_REDIS_DB,
    bench_env,
    bench_redis,
    process,
    stub_backends,
    wrk,
)
from tests.support.config import write_config
from tests.support.servers import free_port

CANNED = {
    "id": "chatcmpl-canned",
    "object": "chat.completion",
    "created": 0,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 90, "completion_tokens": 1, "total_tokens": 91},
}


def serve_canned(argv: list[str]) -> int:
    """`llmrank serve` with `Upstream.complete` answering CANNED at once (run in the child process)."""
    from gateway import upstream
    from gateway.cli import main as cli_main

    async def canned(self: upstream.Upstream, backend: Any, body: dict[str, Any]) -> dict[str, Any]:
        return {**CANNED, "model": backend.name}

    upstream.Upstream.complete = canned  # type: ignore[method-assign]
    return cli_main(["serve", *argv])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=10, help="alternated runs per gateway and cache state")
    parser.add_argument("--serve-canned", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_canned is not None:
        sys.exit(serve_canned(args.serve_canned))

    env = bench_env()
    py = sys.executable
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    serve, canned = [py, "-m", "gateway.cli", "serve"], [py, "-m", "bench.gateway_share", "--serve-canned"]
    commands = {"gateway": (serve, "litellm"), "gateway_direct": (serve, "direct"), "canned": (canned, "litellm")}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        work = Path(tmp)
        for transport in ("litellm", "direct"):
            write_config(work / transport, stub_backends(upstream_url, transport))
        stub = [py, "-m", "bench.upstream_stub", "--port", str(upstream_port)]
        running.enter_context(process(stub, f"{upstream_url}/", env, work / "stub.log"))
        urls = {"direct": upstream_url}
        for db, (name, (command, transport)) in enumerate(commands.items(), start=BENCH_REDIS_DB):
            redis_url = running.enter_context(bench_redis(db))
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            gateway_env = {**env, "LLMRANK_REDIS_URL": redis_url, "LLMRANK_LOG_FORMAT": "json"}
            argv = [*command, "--port", str(port), "--config", str(work / transport)]
            running.enter_context(process(argv, f"{urls[name]}/readyz", gateway_env, work / f"{name}.log"))
        headers = {"X-Budget-Tier": "balanced"}
        cases = [(name, cache) for name in commands for cache in ("hit", "miss")]
        for name, cache in cases:  # warm both
            wrk(urls[name], "auto", cache == "miss", headers, 4, 2, work)
        p50s: dict[str, list[float]] = {key: [] for key in ("direct", *(f"{name}_{cache}" for name, cache in cases))}
        for round_ in range(args.rounds):
            order = [("direct", "none"), *(cases if round_ % 2 == 0 else reversed(cases))]
            for name, cache in order:
                key = "direct" if name == "direct" else f"{name}_{cache}"
                model = "stub" if name == "direct" else "auto"
                result = wrk(urls[name], model, cache == "miss", headers, 1, args.duration, work)
                p50s[key].append(result["p50_ms"])
    direct = statistics.median(p50s["direct"])
    rows = {key: share_row(values, direct) for key, values in p50s.items()}
    report(rows, args)
    path = write_results("gateway_share", {"duration_s": args.duration, "rounds": args.rounds, "rows": rows})
    print(f"wrote {path}")


def share_row(p50s: list[float], direct_p50: float) -> dict[str, Any]:
    p50 = statistics.median(p50s)
    return {"p50_ms": p50, "added_p50_ms": p50 - direct_p50, "runs": p50s}


def report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nOne client, median of {args.rounds} alternated {args.duration} s wrk runs (ms)")
    print(f"{'target':<20} {'p50':>8} {'added p50':>10}")
    for key, row in rows.items():
        print(f"{key:<20} {row['p50_ms']:>8.2f} {row['added_p50_ms']:>10.2f}")
    for cache in ("hit", "miss"):
        canned = rows[f"canned_{cache}"]["p50_ms"]
        for name, call in (("gateway", "LiteLLM's call"), ("gateway_direct", "the direct call")):
            real = rows[f"{name}_{cache}"]["p50_ms"]
            print(f"cache {cache}: {call} inside the gateway {real - canned:.2f} ms of {real:.2f} ms")


if __name__ == "__main__":
    main()
