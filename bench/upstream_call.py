"""What one upstream call costs inside the gateway's process: the gateway's LiteLLM call (`Upstream.complete`),
its direct call (`DirectUpstream.complete`, `transport: direct`) and a plain httpx POST to the same local stub,
alternated call by call so that all see the same machine.

    python -m bench.upstream_call [--calls 500]

LiteLLM's call minus the plain POST is LiteLLM's own work per call (argument handling, the OpenAI SDK, response
objects, cost); a routed cache hit through LiteLLM cannot add less than it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import percentiles, write_results
from bench.gateway_overhead import bench_env, process
from gateway.direct import DirectUpstream
from gateway.registry import Backend
from gateway.upstream import Upstream
from tests.support.servers import free_port

BODY = {"messages": [{"role": "user", "content": "Which soil most likely held the most water?"}], "max_tokens": 16}


async def measure(upstream_url: str, calls: int) -> dict[str, dict[str, float]]:
    backend = Backend(name="strong", litellm_model="openai/strong", profile="gpt-4-1106-preview", api_base=upstream_url)
    keys = {"strong": "none"}
    upstream = Upstream(lambda: keys, timeout_s=30, prices=lambda: {"strong": (1e-5, 2e-5)})
    direct = DirectUpstream(lambda: keys, timeout_s=30)
    samples: dict[str, list[float]] = {
        "litellm (Upstream.complete)": [],
        "direct (DirectUpstream.complete)": [],
        "httpx POST + JSON": [],
    }
    async with httpx.AsyncClient(timeout=30) as client:

        async def raw() -> None:
            response = await client.post(f"{upstream_url}/chat/completions", json={"model": "strong", **BODY})
            response.json()

        async def litellm_call() -> None:
            await upstream.complete(backend, dict(BODY))

        async def direct_call() -> None:
            await direct.complete(backend, dict(BODY))

        calls_by_name = dict(zip(samples, (litellm_call, direct_call, raw), strict=True))
        for _ in range(20):
            for call in calls_by_name.values():
                await call()
        for _ in range(calls):
            for name, call in calls_by_name.items():
                started = time.perf_counter()
                await call()
                samples[name].append((time.perf_counter() - started) * 1000)
    await direct.close()
    return {name: percentiles(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    port = free_port()
    env = bench_env()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"http://127.0.0.1:{port}"
        stub = [sys.executable, "-m", "bench.upstream_stub", "--port", str(port)]
        with process(stub, f"{url}/", env, Path(tmp) / "stub.log"):
            results = asyncio.run(measure(f"{url}/v1", args.calls))
    print(f"{'call':<34} {'p50':>7} {'p90':>7} {'p99':>7}   (ms, {args.calls} calls each, alternated)")
    for name, r in results.items():
        print(f"{name:<34} {r['p50']:>7.2f} {r['p90']:>7.2f} {r['p99']:>7.2f}")
    litellm_p50, raw_p50 = (results[name]["p50"] for name in ("litellm (Upstream.complete)", "httpx POST + JSON"))
    print(f"LiteLLM's own work per call (p50 difference): {litellm_p50 - raw_p50:.2f} ms")
    path = write_results(
        "upstream_call", {"calls": args.calls, "results": results, "litellm_p50_overhead_ms": litellm_p50 - raw_p50}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
