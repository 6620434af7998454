"""Added latency and throughput: client → upstream directly, through our gateway (cache miss / hit) with each
transport (`gateway_*`: the default, auto, which calls this OpenAI-compatible stub directly; `gateway_litellm_*`:
transport: litellm; `direct` is the client calling
the upstream itself), and through LiteLLM's own proxy,
interleaved in one run, at 1, 8 and 64 concurrent clients; streaming time to first byte; gateway memory idle and
under load.

    python -m bench.gateway_overhead [--duration 8] [--concurrency 1 8 64]

Needs wrk (Debian package) and LiteLLM's proxy in .venv-bench (`make bench` installs both). All traffic stays on
127.0.0.1; every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.common import percentiles, write_results
from bench.targets import overhead_verdicts, print_verdicts
from gateway.settings import PROJECT_ROOT
from tests.support.config import write_config
from tests.support.servers import free_port

LITELLM_BIN = PROJECT_ROOT / ".venv-bench" / "bin" / "litellm"
BENCH_REDIS_DB = 13
# 85 encoder tokens; with a cache-miss run's unique prefix (about 13 more) a miss encodes about 100 tokens
PROMPT = (
    "A student wants to find out which kind of soil holds the most water. She fills three pots with sand, clay "
    "and loam, pours the same amount of water into each, and measures what drains out after ten minutes. Which "
    "soil most likely held the most water, and what part of her method makes the comparison fair? Answer in two "
    "short sentences and name the one property of the soil particles that matters most here."
)
# Cache-miss prompts carry RUN (new per wrk run), the thread's number and a counter: no prompt repeats within a run,
# across threads (each has its own Lua state and the same random sequence) or across runs.
LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
counter = 0
request = function()
  counter = counter + 1
  local salt = UNIQUE and (RUN .. "-" .. tid .. "-" .. counter .. " ") or ""
  local body = '{"model": "' .. MODEL .. '", "max_tokens": 16, "messages": '
    .. '[{"role": "user", "content": "' .. salt .. PROMPT_TEXT .. '"}]}'
  return wrk.format("POST", "/v1/chat/completions", HEADERS, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, "p50": %d, "p90": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def bench_env() -> dict[str, str]:
    """The environment for every process a bench starts: offline, no network price map."""
    offline = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return {**os.environ, **offline}


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {timeout}s")


@contextmanager
def process(args: list[str], ready_url: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_ready(ready_url, proc)
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def bench_redis(db: int) -> Iterator[str]:
    """The URL of local Redis database `db` for one bench gateway: emptied before it starts and after it stops, so
    that no run starts with another's vectors and none leaves its thousands behind."""
    url = f"redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def first_request_ms(url: str, model: str, headers: dict[str, str]) -> float:
    """One request to a process that has just reported ready: what start-up left for the first caller to pay."""
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": f"first {PROMPT}"}]}
    started = time.perf_counter()
    httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60).raise_for_status()
    return round((time.perf_counter() - started) * 1000, 1)


def feature_cache_counts(gateway_url: str) -> dict[str, float]:
    """The gateway's feature-cache lookups so far, by result: shows a 'miss' run really missed."""
    counts = {"hit": 0.0, "miss": 0.0}
    text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "llmrank_feature_cache":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("result") in counts:
                    counts[sample.labels["result"]] += sample.value
    return counts


def wrk(
    url: str, model: str, unique: bool, headers: dict[str, str], connections: int, duration: int, workdir: Path
) -> dict[str, Any]:
    header_lua = (
        "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in {"Content-Type": "application/json", **headers}.items()) + "}"
    )
    script = workdir / f"wrk_{model}_{unique}.lua"
    script.write_text(
        f'PROMPT_TEXT = "{PROMPT}"\nUNIQUE = {"true" if unique else "false"}\nRUN = "{uuid.uuid4().hex[:12]}"\n'
        f'MODEL = "{model}"\nHEADERS = {header_lua}\n' + LUA
    )
    threads = min(2, connections)
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    line = next(out for out in result.stdout.splitlines() if out.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    return {
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non2xx"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50"] / 1000,
        "p90_ms": raw["p90"] / 1000,
        "p99_ms": raw["p99"] / 1000,
    }


async def ttfb(
    url: str, model: str, headers: dict[str, str], concurrency: int, count: int, unique: bool
) -> dict[str, Any]:
    """Time to the first streamed byte, `count` requests at `concurrency`. A request that fails, or whose stream does
    not end with `[DONE]`, is counted as an error (by kind) instead of a sample.

    The client is aiohttp, not httpx: at 64 streams httpx's per-request work in this one process became the
    bottleneck, and its first bytes waited up to 1.7 s for the client itself while the gateway had answered within
    0.15 s (docs/BENCHMARKS.md, run M)."""
    samples: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))

    async def one(session: aiohttp.ClientSession) -> None:
        prefix = f"{next(counter)} {time.monotonic_ns()} " if unique else ""
        body = {
            "model": model,
            "stream": True,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": prefix + PROMPT}],
        }
        started = time.perf_counter()
        first, tail = 0.0, b""
        try:
            async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as response:
                async for part in response.content.iter_any():
                    first = first or (time.perf_counter() - started) * 1000
                    tail = (tail + part)[-64:]
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(type(exc).__name__)
            return
        if response.status != 200 or not tail.rstrip().endswith(b"data: [DONE]"):
            errors.append(f"status {response.status}" if response.status != 200 else "no [DONE]")
            return
        samples.append(first)

    async def worker(session: aiohttp.ClientSession, n: int) -> None:
        for _ in range(n):
            await one(session)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for _ in range(3):
            await one(session)
        samples.clear()
        errors.clear()
        await asyncio.gather(*(worker(session, count // concurrency) for _ in range(concurrency)))
    stats = percentiles(samples) if samples else {"p50": math.nan, "p90": math.nan, "p99": math.nan, "n": 0}
    return {**stats, "errors": len(errors), "error_kinds": sorted(set(errors))}


def stub_upstream(running: ExitStack, work: Path, env: dict[str, str]) -> str:
    """bench/upstream_stub.py on a free port for as long as `running` lasts; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    running.enter_context(
        process(
            [sys.executable, "-m", "bench.upstream_stub", "--port", str(port)],
            f"{url}/",
            env,
            work / f"stub_{port}.log",
        )
    )
    return url


def stub_backends(upstream: str, transport: str = "auto") -> list[dict[str, Any]]:
    """A dear, a mid and a cheap backend, all on the bench's stub upstream."""
    return [
        {
            "name": name,
            "litellm_model": f"openai/{name}",
            "profile": profile,
            "api_base": f"{upstream}/v1",
            "input_cost_per_token": price,
            "output_cost_per_token": 2 * price,
            "transport": transport,
        }
        for name, profile, price in (
            ("strong", "gpt-4-1106-preview", 1e-5),
            ("mid", "gpt-3.5-turbo-1106", 1e-6),
            ("cheap", "mistralai/mistral-7b-chat", 2e-7),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--stream-requests", type=int, default=512, help="per target and concurrency")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per target first")
    args = parser.parse_args()
    if shutil.which("wrk") is None or not LITELLM_BIN.exists():
        sys.exit("needs wrk and .venv-bench/bin/litellm: run `make bench`")

    env = bench_env()
    ports = {name: free_port() for name in ("upstream", "gateway", "gateway_litellm", "litellm")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        work = Path(tmp)
        (work / "litellm.yaml").write_text(
            yaml.safe_dump(
                {
                    "model_list": [
                        {
                            "model_name": "fixed",
                            "litellm_params": {
                                "model": "openai/fixed",
                                "api_base": f"{urls['upstream']}/v1",
                                "api_key": "none",
                            },
                        }
                    ],
                    "litellm_settings": {"telemetry": False},
                }
            )
        )
        py = sys.executable
        stub = [py, "-m", "bench.upstream_stub", "--port", str(ports["upstream"])]
        running.enter_context(process(stub, f"{urls['upstream']}/", env, work / "stub.log"))
        gateway = {}
        for name, transport, db in (
            ("gateway", "auto", BENCH_REDIS_DB),
            ("gateway_litellm", "litellm", BENCH_REDIS_DB + 1),
        ):
            write_config(work / name, stub_backends(urls["upstream"], transport))
            redis_url = running.enter_context(bench_redis(db))
            serve = [py, "-m", "gateway.cli", "serve", "--port", str(ports[name]), "--config", str(work / name)]
            gateway_env = {**env, "LLMRANK_REDIS_URL": redis_url, "LLMRANK_LOG_FORMAT": "json"}
            gateway[name] = running.enter_context(
                process(serve, f"{urls[name]}/readyz", gateway_env, work / f"{name}.log")
            ).pid
        proxy = [str(LITELLM_BIN), "--config", str(work / "litellm.yaml"), "--port", str(ports["litellm"])]
        proxy += ["--host", "127.0.0.1", "--num_workers", "1"]
        running.enter_context(process(proxy, f"{urls['litellm']}/health/liveliness", env, work / "litellm.log"))
        memory = {"idle_mb": rss_mb(gateway["gateway"]), "litellm_idle_mb": rss_mb(gateway["gateway_litellm"])}
        routed = {"X-Budget-Tier": "balanced"}
        targets = {
            "direct": (urls["upstream"], "stub", False, {}),
            "gateway_miss": (urls["gateway"], "auto", True, routed),
            "gateway_hit": (urls["gateway"], "auto", False, routed),
            "gateway_litellm_miss": (urls["gateway_litellm"], "auto", True, routed),
            "gateway_litellm_hit": (urls["gateway_litellm"], "auto", False, routed),
            "litellm_proxy": (urls["litellm"], "fixed", False, {"Authorization": "Bearer none"}),
        }
        first = {
            name: first_request_ms(url, model, headers)
            for name, (url, model, _, headers) in targets.items()
            if name in ("gateway_miss", "gateway_litellm_miss", "litellm_proxy")
        }
        print(f"  first request after start (ms): {first}", flush=True)
        for url, model, unique, headers in targets.values():  # warm every process before measuring
            wrk(url, model, unique, headers, 8, args.warmup, work)
        peak, litellm_peak = memory["idle_mb"], memory["litellm_idle_mb"]
        rows = []
        for c in args.concurrency:
            for name, (url, model, unique, headers) in targets.items():
                is_gateway = url in (urls["gateway"], urls["gateway_litellm"])
                before = feature_cache_counts(url) if is_gateway else {}
                result = wrk(url, model, unique, headers, c, args.duration, work)
                peak = max(peak, rss_mb(gateway["gateway"]))
                litellm_peak = max(litellm_peak, rss_mb(gateway["gateway_litellm"]))
                if is_gateway:
                    after = feature_cache_counts(url)
                    hits, misses = (after[k] - before[k] for k in ("hit", "miss"))
                    result["cache_hit_ratio"] = round(hits / max(hits + misses, 1), 4)
                rows.append({"target": name, "concurrency": c, **result})
                summary = f"{result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.2f}  p99 {result['p99_ms']:7.2f} ms"
                ratio = f"  cache hits {result['cache_hit_ratio']:.1%}" if "cache_hit_ratio" in result else ""
                print(f"  c={c:<3} {name:<19} {summary}  errors {result['errors']}{ratio}", flush=True)
        memory["after_load_mb"] = rss_mb(gateway["gateway"])
        memory["litellm_after_load_mb"] = rss_mb(gateway["gateway_litellm"])
        memory["peak_sampled_mb"] = peak
        memory["litellm_peak_sampled_mb"] = litellm_peak
        streaming = []
        for c in args.concurrency:
            for name, (url, model, unique, headers) in targets.items():
                stats = asyncio.run(ttfb(url, model, headers, c, max(args.stream_requests, c * 2), unique))
                streaming.append({"target": name, "concurrency": c, **stats})

    add_added_latency(rows)
    report(rows, streaming, memory)
    print_verdicts(overhead_verdicts(rows, streaming))
    write_results(
        "gateway_overhead",
        {
            "duration_s": args.duration,
            "prompt_chars": len(PROMPT),
            "rows": rows,
            "streaming_ttfb_ms": streaming,
            "gateway_memory": memory,
            "first_request_ms": first,
            "warmup_s": args.warmup,
        },
    )


def add_added_latency(rows: list[dict[str, Any]]) -> None:
    """Each row's latency minus the direct call's at the same concurrency: what the target adds."""
    direct = {r["concurrency"]: r for r in rows if r["target"] == "direct"}
    for r in rows:
        d = direct[r["concurrency"]]
        r["added_p50_ms"], r["added_p90_ms"], r["added_p99_ms"] = (r[k] - d[k] for k in ("p50_ms", "p90_ms", "p99_ms"))


def report(rows: list[dict[str, Any]], streaming: list[dict[str, Any]], memory: dict[str, float]) -> None:
    print("\nNon-streaming, wrk (latency ms; added = target − direct at the same concurrency)")
    columns = ("req/s", "p50", "p90", "p99", "+p50", "+p90", "+p99")
    print(f"{'c':>3} {'target':<19}" + "".join(f" {c:>8}" for c in columns) + f" {'errors':>7}")
    for r in rows:
        values = [r[k] for k in ("p50_ms", "p90_ms", "p99_ms", "added_p50_ms", "added_p90_ms", "added_p99_ms")]
        print(
            f"{r['concurrency']:>3} {r['target']:<19} {r['rps']:>8.1f}"
            + "".join(f" {v:>8.2f}" for v in values)
            + f" {r['errors']:>7}"
        )
    print("\nStreaming, time to first byte (ms)")
    print(f"{'c':>3} {'target':<19} {'p50':>8} {'p90':>8} {'p99':>8} {'n':>5} {'errors':>7}")
    for s in streaming:
        errors = f" {s['errors']:>7}" + (f"  {', '.join(s['error_kinds'])}" if s["error_kinds"] else "")
        print(
            f"{s['concurrency']:>3} {s['target']:<19} {s['p50']:>8.2f} {s['p90']:>8.2f} {s['p99']:>8.2f} {s['n']:>5}"
            + errors
        )
    for label, prefix in (("Gateway (transport: auto)", ""), ("Gateway, transport: litellm", "litellm_")):
        print(
            f"{label} RSS: idle {memory[prefix + 'idle_mb']:.0f} MB, peak sampled under load"
            f" {memory[prefix + 'peak_sampled_mb']:.0f} MB, after load {memory[prefix + 'after_load_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
