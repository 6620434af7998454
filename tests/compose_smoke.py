"""Smoke test of deploy/docker-compose.yml against a running stack: two replicas behind nginx sharing Redis.

    docker compose -f deploy/docker-compose.yml up -d --build      # then, once `docker compose ps` shows healthy:
    python -m tests.compose_smoke [--url http://127.0.0.1:8080] [--clients 8] [--seconds 20]

Checks, each an assertion: routed requests are spread over both replicas and the decisions log says it is the
shared Redis stream; feedback through nginx is accepted for every request, whichever replica routed it; stopping
gateway-1 (`docker compose stop`, SIGTERM) under load loses no request and the replica exits 0. Not part of `make
test`: it needs Docker and the images the compose file names.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import threading
import time
from collections import Counter

import httpx

from gateway.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "deploy" / "docker-compose.yml"


def chat(client: httpx.Client, url: str, n: int) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": f"Name a prime above {n}."}]}
    return client.post(f"{url}/v1/chat/completions", json=body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--compose", default="docker compose", help="the compose command (docker-compose for v1)")
    args = parser.parse_args()
    compose = [*shlex.split(args.compose), "-f", str(COMPOSE_FILE)]
    url = args.url
    with httpx.Client(timeout=60) as client:
        ids = [chat(client, url, n).headers["x-request-id"] for n in range(10)]
        time.sleep(1)  # the decisions log is written just after each answer
        log = client.get(f"{url}/ui/api/decisions?limit=100").json()
        replicas = Counter(i["replica"] for i in log["items"] if i["request_id"] in ids)
        print(f"decisions from {log['source']}: {dict(replicas)}")
        assert log["source"] == "redis" and len(replicas) == 2
        scored = Counter(client.post(f"{url}/v1/feedback", json={"request_id": r, "score": 1}).status_code for r in ids)
        print(f"feedback through nginx: {dict(scored)}")
        assert scored == {200: len(ids)}

    answers, errors = [0], Counter[str]()
    stop_at = time.monotonic() + args.seconds

    def caller(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                try:
                    status = chat(client, url, k * 1000 + i % 7).status_code
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status == 200:
                    answers[0] += 1
                else:
                    errors[str(status)] += 1

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(args.clients)]
    for thread in threads:
        thread.start()
    time.sleep(args.seconds / 4)
    started = time.monotonic()
    subprocess.run([*compose, "stop", "-t", "45", "gateway-1"], check=True, capture_output=True)
    stopped_s = time.monotonic() - started
    container = subprocess.run([*compose, "ps", "-q", "gateway-1"], capture_output=True, text=True).stdout.strip()
    inspected = ["docker", "inspect", container, "--format", "{{.State.ExitCode}}"]
    exit_code = subprocess.run(inspected, capture_output=True, text=True).stdout.strip()
    for thread in threads:
        thread.join()
    print(f"gateway-1 stopped in {stopped_s:.1f} s, exit code {exit_code}; {answers[0]} answers, errors {dict(errors)}")
    assert exit_code == "0" and not errors
    subprocess.run([*compose, "start", "gateway-1"], check=True, capture_output=True)


if __name__ == "__main__":
    main()
