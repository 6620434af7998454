"""Soak: mixed streaming and plain traffic from 50 clients through the gateway while faults come and go.

    python -m tests.soak [--duration 600] [--clients 50] [--transport litellm|direct]      (make soak)

Every 60 s cycle: a backend that sends no usage (its answers are priced from counted tokens), a backend answering
500, one hanging past the timeout, 429s, invalid JSON, streams cut mid-way, Redis killed and restarted, models.yaml
replaced by an invalid file and restored. All traffic stays on 127.0.0.1 and stops after --duration. Prints
requests, outcomes by kind, p99 and the gateway's RSS at start and end, and writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.common import percentiles, write_results
from bench.gateway_overhead import rss_mb, wait_ready
from tests.conftest import TRANSPORTS, standard_backends, write_config
from tests.support.servers import free_port, serve
from tests.support.upstream import UpstreamControl, build_upstream

CLIENT_TIMEOUT_S = 15.0
UPSTREAM_TIMEOUT_S = 2.0
PROMPTS = [
    "Which gas do plants absorb from the air?",
    "Write a function to merge two sorted lists.",
    "The trophy doesn't fit into the suitcase because the _ is too large.\nA) trophy\nB) suitcase\nAnswer:",
]


class Faults:
    """The fault schedule, keyed by the second within each 60 s cycle."""

    def __init__(self, control: UpstreamControl, redis_port: int, config_dir: Path) -> None:
        self.control = control
        self.redis_port = redis_port
        self.models = config_dir / "models.yaml"
        self.good_models = self.models.read_text()
        self.redis: subprocess.Popen | None = None
        self.log: list[str] = []

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait()
            self.redis = None

    def restore(self) -> None:
        """Every fault undone: good backends, Redis running, the valid models.yaml."""
        self.control.behaviour.clear()
        if self.redis is None:
            self.start_redis()
        self.models.write_text(self.good_models)

    def apply(self, second: int) -> None:
        b = self.control.behaviour
        steps = {
            2: lambda: b.update(cheap="no_usage"),
            8: lambda: b.update(cheap="ok"),
            10: lambda: b.update(strong="error500"),
            18: lambda: b.update(strong="ok", mid="hang"),
            28: lambda: b.update(mid="ok", cheap="error429"),
            33: lambda: b.update(cheap="invalid_json"),
            38: lambda: b.update(cheap="ok", strong="close_midstream", mid="close_midstream"),
            44: lambda: b.update(strong="ok", mid="ok"),
            45: self.stop_redis,
            50: self.start_redis,
            52: lambda: self.models.write_text("backends:\n  - {name: broken, api_key: sk-nope}\n"),
            56: lambda: self.models.write_text(self.good_models),
        }
        if second in steps:
            steps[second]()
            self.log.append(f"{second}s")


async def client_loop(url: str, deadline: float, outcomes: Counter, latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            stream = random.random() < 0.5
            prompt = random.choice(PROMPTS) if random.random() < 0.5 else f"{random.random()} {random.choice(PROMPTS)}"
            body = {"model": "auto", "stream": stream, "messages": [{"role": "user", "content": prompt}]}
            headers = {"X-Budget-Tier": random.choice(["perf", "balanced", "cost"])}
            started = time.monotonic()
            try:
                async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
                    raw = await response.aread()
                outcomes[classify(response.status_code, raw, stream)] += 1
            except httpx.TimeoutException:
                outcomes["client_timeout (hung)"] += 1
            except httpx.TransportError as exc:
                outcomes[f"transport_error {type(exc).__name__}"] += 1
            latencies.append((time.monotonic() - started) * 1000)


def classify(status: int, raw: bytes, stream: bool) -> str:
    if status == 200 and stream:
        text = raw.decode(errors="replace")
        if '"error"' in text:
            return "200 stream ended by an in-band error event"
        return "200 ok (stream)" if text.rstrip().endswith("data: [DONE]") else "200 stream without [DONE]"
    if status == 200:
        return "200 ok"
    try:
        error = json.loads(raw)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        return f"{status} {error['type']}"
    except (ValueError, KeyError, AssertionError, TypeError):
        return f"{status} NOT OpenAI-shaped"


async def drive(
    url: str, clients: int, duration: float, faults: Faults, pid: int, rss: list[float]
) -> tuple[Counter, list[float]]:
    outcomes: Counter = Counter()
    latencies: list[float] = []
    started = time.monotonic()
    deadline = started + duration

    async def scheduler() -> None:
        done = -1
        while time.monotonic() < deadline:
            now = int(time.monotonic() - started)
            for second in range(done + 1, now + 1):  # a slow tick must not skip a step
                faults.apply(second % 60)
                if second % 30 == 0:
                    rss.append(round(rss_mb(pid), 1))
            done = now
            await asyncio.sleep(0.5)

    await asyncio.gather(scheduler(), *(client_loop(url, deadline, outcomes, latencies) for _ in range(clients)))
    return outcomes, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=60, help="seconds of traffic before the RSS baseline")
    parser.add_argument("--transport", choices=TRANSPORTS, default="litellm", help="how the backends are called")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("the soak needs redis-server")
    control = UpstreamControl(chunk_delay_s=0.01)
    with serve(build_upstream(control)) as upstream_url, tempfile.TemporaryDirectory() as tmp:
        config_dir = Path(tmp) / "config"
        write_config(config_dir, standard_backends(upstream_url, args.transport))
        redis_port, port = free_port(), free_port()
        faults = Faults(control, redis_port, config_dir)
        faults.start_redis()
        env = {
            **os.environ,
            "LLMRANK_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "LLMRANK_UPSTREAM_TIMEOUT_S": str(UPSTREAM_TIMEOUT_S),
            "LLMRANK_COOLDOWN_S": "5",
            "LLMRANK_LOG_LEVEL": "WARNING",
            "LLMRANK_LOG_FORMAT": "json",
        }
        log = (Path(tmp) / "gateway.log").open("w")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--config", str(config_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{url}/readyz", gateway)
            # Warm-up: one whole fault cycle, so every path (fallbacks, Redis outage, reloads) has run once and its
            # one-off allocations are not counted as growth.
            asyncio.run(drive(url, args.clients, min(args.warmup, args.duration), faults, gateway.pid, []))
            rss_start = rss_mb(gateway.pid)
            rss_samples: list[float] = []
            outcomes, latencies = asyncio.run(drive(url, args.clients, args.duration, faults, gateway.pid, rss_samples))
            rss_end = rss_mb(gateway.pid)
            faults.restore()
            time.sleep(7)  # past two reload intervals and Redis's retry delay: recovery without a restart
            alive = gateway.poll() is None
            healthy = httpx.get(f"{url}/healthz").status_code == 200
            ready = httpx.get(f"{url}/readyz").json()
            after = httpx.post(
                f"{url}/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "ok?"}]}
            ).status_code
        finally:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(timeout=20)
            faults.stop_redis()
    total = sum(outcomes.values())
    stats = percentiles(latencies)
    result = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "clients": args.clients,
        "transport": args.transport,
        "requests": total,
        "outcomes": dict(outcomes.most_common()),
        "latency_ms": stats,
        "rss_mb": {
            "start": rss_start,
            "end": rss_end,
            "growth_pct": 100 * (rss_end - rss_start) / rss_start,
            "every_30s": rss_samples,
        },
        "gateway_alive": alive,
        "healthz_after": healthy,
        "redis_after": ready["redis"],
        "config_after": ready["config"],
        "request_after_recovery": after,
    }
    print(json.dumps(result, indent=2))
    write_results("soak" if args.transport == "litellm" else f"soak_{args.transport}", result)
    bad = [k for k in outcomes if "NOT OpenAI" in k or "hung" in k or "transport" in k or "without [DONE]" in k]
    recovered = ready["redis"] == "up" and ready["config"]["last_reload_error"] is None and after == 200
    if not alive or not healthy or not recovered or bad or result["rss_mb"]["growth_pct"] >= 10:
        sys.exit(f"soak failed: alive={alive} healthy={healthy} bad={bad}")


if __name__ == "__main__":
    main()
