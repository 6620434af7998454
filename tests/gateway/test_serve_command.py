"""`llmrank serve` with the shipped config, as `make run` starts it: demo backends answer without keys."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import openai

from tests.support.servers import free_port


def test_serve_with_shipped_defaults_answers_healthz_and_a_demo_completion(tmp_path):
    port = free_port()
    env = {**os.environ, "LLMRANK_REDIS_URL": "redis://127.0.0.1:1/0", "LLMRANK_LOG_FORMAT": "json"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json()["redis"] == "down"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
        assert raw.headers["x-llmrank-model"] in raw.parse().choices[0].message.content
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = (tmp_path / "serve.log").read_text().splitlines()
    routed = [line for line in lines if '"event": "routed"' in line]
    assert routed and '"request_id": "req_' in routed[0]


def test_invalid_config_stops_start_up_with_one_clear_message(tmp_path):
    (tmp_path / "models.yaml").write_text("backends:\n  - {name: a, litellm_model: m, profile: nope}\n")
    (tmp_path / "tiers.yaml").write_text("tiers: {perf: 0, balanced: 1, cost: 2}\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(tmp_path), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "models.yaml: backends[0].profile: 'nope' is not a router profile" in result.stderr


# What only training, evaluation, the first build of the int8 graph or the first explanation (/v1/route) needs:
# about 150 MB of resident memory in every gateway if the serving path imports it. The encoder tokenises with
# `tokenizers` itself, not transformers' wrapper around it.
RARELY_NEEDED_MODULES = (
    "pandas", "onnxruntime.transformers", "sentence_transformers", "sklearn", "captum", "matplotlib", "transformers",
)  # fmt: skip


def test_serving_path_leaves_rarely_needed_libraries_unloaded():
    script = (
        "import asyncio, sys\n"
        "from gateway.app import create_app\n"
        "from gateway.settings import Settings\n"
        "app = create_app(Settings(redis_url=None))\n"
        "async def serve():\n"
        "    async with app.router.lifespan_context(app):\n"
        f"        print(sorted(m for m in {RARELY_NEEDED_MODULES!r} if m in sys.modules))\n"
        "asyncio.run(serve())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
