"""Fallbacks across backends, Redis going away and coming back, hot reload of models.yaml."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
import yaml

from tests.conftest import TRANSPORTS, backend_entry, ranked, standard_backends
from tests.support.servers import free_port
from tests.support.waiting import wait_until

WINO = "The trophy doesn't fit into the brown suitcase because the _ is too large.\nA) trophy\nB) suitcase\nAnswer:"


def ask(url: str, prompt: str = WINO, tier: str = "perf", **kwargs):  # type: ignore[no-untyped-def]
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": prompt}], **kwargs},
        headers={"X-Budget-Tier": tier},
        timeout=30,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure", ["error500", "error429", "invalid_json"])
def test_failed_backend_falls_back_to_the_next_by_utility(gateway_factory, upstream, failure, transport, capfd):
    base, control = upstream
    url = gateway_factory(standard_backends(base, transport))
    first, second, _ = ranked(url, WINO, "perf")
    control.behaviour[first] = failure
    response = ask(url)
    assert response.status_code == 200
    assert response.headers["x-llmrank-model"] == second
    assert [name for name, _ in control.received] == [first, second]
    metrics = httpx.get(f"{url}/metrics").text
    assert f'llmrank_fallbacks_total{{backend="{first}"' in metrics
    assert capfd.readouterr().out == ""  # the failure is in the gateway's log lines only, not printed beside them


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_backend_that_is_down_falls_back(gateway_factory, upstream, transport):
    base, _ = upstream
    backends = standard_backends(base, transport)
    backends[0]["api_base"] = f"http://127.0.0.1:{free_port()}/v1"
    url = gateway_factory(backends)
    order = ranked(url, WINO, "perf")
    assert order[0] == "strong"  # the backend that is down is the first choice
    response = ask(url)
    assert response.status_code == 200 and response.headers["x-llmrank-model"] == order[1]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_all_backends_failing_is_one_openai_error(gateway_factory, upstream, transport):
    base, control = upstream
    control.behaviour.update(strong="error500", mid="error500", cheap="error500")
    url = gateway_factory(standard_backends(base, transport), max_fallbacks=2)
    with pytest.raises(openai.APIStatusError) as info:
        openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": WINO}]
        )
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_error"
    assert "all 3 backend(s) failed" in info.value.body["message"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_upstream_timeout_is_a_504(gateway_factory, upstream, transport):
    base, control = upstream
    control.behaviour["cheap"] = "hang"
    url = gateway_factory(standard_backends(base, transport), upstream_timeout_s=0.5)
    started = time.monotonic()
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "cheap", "messages": [{"role": "user", "content": "x"}]},
        timeout=30,
    )
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout_error"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stream_falls_back_before_the_first_byte_and_reports_midstream_failure(gateway_factory, upstream, transport):
    base, control = upstream
    url = gateway_factory(standard_backends(base, transport))
    first, second, _ = ranked(url, WINO, "perf")
    control.behaviour.update({first: "error500", second: "close_midstream"})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": WINO}],
            stream=True,
            extra_headers={"X-Budget-Tier": "perf"},
        ):
            received.append(chunk.choices[0].delta.content)
    assert received[:2] == ["part0 ", "part1 "]
    assert [name for name, _ in control.received] == [first, second]


@pytest.fixture()
def own_redis() -> Iterator[tuple[int, tuple[Callable[[], None], Callable[[], None]]]]:
    """A private redis-server this test may kill and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed")
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
        )
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop() -> None:
        procs[-1].kill()
        procs[-1].wait()

    start()
    yield port, (start, stop)
    for proc in procs:
        proc.kill()
        proc.wait()


def test_redis_stopped_mid_run_costs_nothing_and_reconnects(gateway_factory, upstream, own_redis):
    base, _ = upstream
    port, (start, stop) = own_redis
    url = gateway_factory(standard_backends(base), redis_url=f"redis://127.0.0.1:{port}/0")
    assert ask(url, "first prompt").status_code == 200
    assert wait_until(lambda: len(redis.Redis(port=port).keys("llmrank:features:*")) == 1)
    stop()
    during = [ask(url, f"prompt while redis is down {i}") for i in range(3)]
    assert [r.status_code for r in during] == [200, 200, 200]
    assert ask(url, "first prompt").headers["x-llmrank-cache"] == "hit"
    assert httpx.get(f"{url}/readyz").json()["redis"] == "down"
    start()
    time.sleep(2.2)
    assert ask(url, "a prompt after redis came back").status_code == 200
    assert wait_until(lambda: len(redis.Redis(port=port).keys("llmrank:features:*")) == 1)
    assert httpx.get(f"{url}/readyz").json()["redis"] == "up"


def _rewrite(config_dir: Path, backends: list[dict]) -> None:
    path = config_dir / "models.yaml"
    path.write_text(yaml.safe_dump({"backends": backends}, sort_keys=False))


def test_hot_reload_applies_a_valid_edit_and_keeps_serving_on_an_invalid_one(gateway_factory, upstream, tmp_path):
    base, _ = upstream
    backends = standard_backends(base)
    url = gateway_factory(backends)
    config_dir = tmp_path / "config"

    def model_ids() -> list[str]:
        return [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]

    _rewrite(config_dir, [*backends, backend_entry("extra", "claude-v1", f"{base}/b/extra/v1", 3e-6)])
    assert wait_until(lambda: "extra" in model_ids())
    response = httpx.post(
        f"{url}/v1/chat/completions", json={"model": "extra", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.json()["choices"][0]["message"]["content"] == "answer from extra"

    (config_dir / "models.yaml").write_text("backends:\n  - name: broken\n    api_key: sk-should-not-be-here\n")
    assert wait_until(lambda: httpx.get(f"{url}/readyz").json()["config"]["last_reload_error"] is not None)
    error = httpx.get(f"{url}/readyz").json()["config"]["last_reload_error"]
    assert "models.yaml" in error and "api_key" in error and "sk-should-not-be-here" not in error
    assert 'reloads_total{result="rejected"} 1.0' in httpx.get(f"{url}/metrics").text  # not the half-written file
    assert "extra" in model_ids()
    assert ask(url).status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_backend_that_keeps_failing_is_skipped_until_its_cooldown_ends(gateway_factory, upstream, transport):
    base, control = upstream
    control.behaviour["strong"] = "error500"
    url = gateway_factory(standard_backends(base, transport), cooldown_failures=2, cooldown_s=1.0)
    first, second, _ = ranked(url, WINO, "perf")
    assert first == "strong"
    for _ in range(2):
        assert ask(url).headers["x-llmrank-model"] == second
    assert [name for name, _ in control.received] == ["strong", second, "strong", second]
    control.received.clear()
    assert ask(url).headers["x-llmrank-model"] == second
    assert [name for name, _ in control.received] == [second]
    assert 'llmrank_cooldowns_total{backend="strong"} 1.0' in httpx.get(f"{url}/metrics").text
    control.behaviour["strong"] = "ok"
    time.sleep(1.1)
    assert ask(url).headers["x-llmrank-model"] == "strong"


@pytest.mark.parametrize(("handler", "stream"), [("acompletion", False), ("async_streaming", True)])
def test_a_litellm_failure_before_sending_never_cools_the_backend_down(
    gateway_factory, upstream, monkeypatch, handler, stream
):
    """LiteLLM raising while it builds the call (here: a simulated bug in its OpenAI handler, for one backend) is no
    sign of the backend's health: the request falls back, but the backend is never put on ice for everyone."""
    from litellm.llms.openai.openai import OpenAIChatCompletion

    original = getattr(OpenAIChatCompletion, handler)

    def broken_for_strong(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "/b/strong/" in str(kwargs.get("api_base")):
            raise TypeError("simulated bug while building the request")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OpenAIChatCompletion, handler, broken_for_strong)
    base, control = upstream
    url = gateway_factory(standard_backends(base), cooldown_failures=2, cooldown_s=60.0)
    first, second, _ = ranked(url, WINO, "perf")
    assert first == "strong"
    for _ in range(4):
        response = ask(url, stream=stream)
        assert response.status_code == 200 and response.headers["x-llmrank-model"] == second
    assert [name for name, _ in control.received] == [second] * 4  # nothing ever reached strong
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_fallbacks_total{backend="strong",reason="upstream_not_called"} 4.0' in metrics
    assert 'llmrank_cooldowns_total{backend="strong"}' not in metrics
    monkeypatch.setattr(OpenAIChatCompletion, handler, original)
    assert ask(url, stream=stream).headers["x-llmrank-model"] == "strong"  # still first in line, not cooling down


def test_a_request_litellm_cannot_prepare_for_any_backend_is_one_500(gateway_factory, upstream, monkeypatch):
    from litellm.llms.openai.openai import OpenAIChatCompletion

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise TypeError("simulated bug while building the request")

    monkeypatch.setattr(OpenAIChatCompletion, "acompletion", broken)
    base, control = upstream
    url = gateway_factory(standard_backends(base), cooldown_failures=1)
    response = ask(url)
    error = response.json()["error"]
    assert response.status_code == 500 and error["code"] == "upstream_not_called"
    assert "TypeError" in error["message"] and "nothing was sent" in error["message"]
    assert control.received == []
    assert "llmrank_cooldowns_total{" not in httpx.get(f"{url}/metrics").text
