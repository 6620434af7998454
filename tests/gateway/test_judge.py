"""The gateway serving a checkpoint trained with an LLM feature judge: a cache miss asks the judge (through LiteLLM,
with the key its env var names) and a hit does not; a judge that fails never fails the request, and its prompt is not
cached, so the next request asks again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from gateway.app import create_app
from gateway.registry import ConfigError
from gateway.settings import Settings
from tests.conftest import JUDGE_REPLY, REDIS_URL, JudgedCheckpoint, backend_entry, write_config
from tests.support.servers import serve
from tests.support.upstream import UpstreamControl
from tests.support.waiting import wait_until

PROMPT = "Write a function to sort a list of names by length."
JUDGE_KEY = "sk-judge-secret"


@pytest.fixture()
def judged_gateway(
    judged_checkpoint: JudgedCheckpoint,
    upstream: tuple[str, UpstreamControl],
    tmp_path: Path,
    redis_db: redis.Redis,
) -> Iterator[Callable[..., str]]:
    base, control = upstream
    control.content["judge"] = json.dumps(JUDGE_REPLY)
    config_dir = tmp_path / "config"
    backends = [
        backend_entry("dear", "big", f"{base}/b/dear/v1", 1e-5),
        backend_entry("cheap", "small", f"{base}/b/cheap/v1", 1e-7),
    ]
    write_config(config_dir, backends)
    with ExitStack() as stack:

        def start(**settings: Any) -> str:
            app = create_app(
                Settings(
                    config_dir=config_dir,
                    checkpoint=judged_checkpoint.path,
                    redis_url=REDIS_URL,
                    judge_api_base=f"{base}/b/judge/v1",
                    judge_api_key_env="JUDGE_KEY",
                    **settings,
                ),
                environ={"JUDGE_KEY": JUDGE_KEY},
            )
            return stack.enter_context(serve(app))

        yield start


def ask(url: str, prompt: str = PROMPT) -> httpx.Headers:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": prompt}])
    assert (raw.parse().choices[0].message.content or "").startswith("answer from ")
    return raw.headers


def judge_requests(control: UpstreamControl) -> list[tuple[dict[str, Any], str | None]]:
    return [
        (body, auth)
        for (name, body), auth in zip(control.received, control.authorization, strict=True)
        if name == "judge"
    ]


def test_a_miss_asks_the_judge_with_its_key_and_a_hit_does_not(judged_gateway, upstream, redis_db):
    _, control = upstream
    url = judged_gateway()
    assert ask(url)["x-llmrank-cache"] == "miss"
    [(body, auth)] = judge_requests(control)
    assert PROMPT in body["messages"][1]["content"] and auth == f"Bearer {JUDGE_KEY}"
    assert wait_until(lambda: len(redis_db.keys("llmrank:features:*")) == 1)
    assert ask(url)["x-llmrank-cache"] == "hit"
    assert len(judge_requests(control)) == 1
    assert 'llmrank_feature_judge_total{result="ok"} 1.0' in httpx.get(f"{url}/metrics").text


def test_a_failing_judge_does_not_fail_the_request_and_its_prompt_is_asked_about_again(
    judged_gateway, upstream, redis_db, caplog
):
    _, control = upstream
    control.behaviour["judge"] = "error400"  # its message echoes the caller's key
    url = judged_gateway()
    assert ask(url)["x-llmrank-cache"] == "miss"
    assert ask(url)["x-llmrank-cache"] == "miss"
    assert len(judge_requests(control)) == 2 and len(control.received) == 4  # and two answers
    assert 'llmrank_feature_judge_total{result="failed"} 2.0' in httpx.get(f"{url}/metrics").text
    assert redis_db.keys("llmrank:features:*") == []
    assert "judge_failed" in caplog.text and JUDGE_KEY not in caplog.text


def test_a_judge_that_hangs_is_waited_for_until_its_time_out_and_then_skipped_while_it_cools_down(
    judged_gateway, upstream
):
    _, control = upstream
    control.behaviour["judge"] = "hang"
    url = judged_gateway(judge_timeout_s=0.5, cooldown_failures=2, cooldown_s=60)
    slow = [float(ask(url, f"{PROMPT} ({i})")["x-llmrank-route-ms"]) for i in range(2)]
    fast = [float(ask(url, f"{PROMPT} ({i})")["x-llmrank-route-ms"]) for i in range(2, 4)]
    assert min(slow) >= 500 and max(fast) < 500
    assert len(judge_requests(control)) == 2
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_feature_judge_total{result="failed"} 2.0' in metrics
    assert 'llmrank_feature_judge_total{result="skipped"} 2.0' in metrics


def ask_at_once(url: str, prompts: list[str]) -> list[httpx.Headers]:
    with ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(lambda prompt: ask(url, prompt), prompts))


def test_a_miss_that_finds_every_judge_call_in_flight_goes_on_parsed_and_its_prompt_is_judged_later(
    judged_gateway, upstream
):
    _, control = upstream
    control.answer_delay_s["judge"] = 2.0  # longer than five requests take to arrive, even on a slow machine
    url = judged_gateway(judge_concurrency=2, judge_timeout_s=10)
    prompts = [f"{PROMPT} ({i})" for i in range(5)]
    route_ms = sorted(float(h["x-llmrank-route-ms"]) for h in ask_at_once(url, prompts))
    assert control.most_in_flight["judge"] == 2 and len(judge_requests(control)) == 2
    assert max(route_ms[:3]) < 2000 <= min(route_ms[3:])  # the busy three did not wait for the judge
    assert [ask(url, p)["x-llmrank-cache"] for p in prompts].count("hit") == 2
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_feature_judge_total{result="busy"} 3.0' in metrics
    assert 'llmrank_feature_judge_total{result="ok"} 5.0' in metrics


def test_a_judge_key_env_var_that_is_not_set_stops_start_up(judged_checkpoint, tmp_path):
    write_config(tmp_path / "config", [backend_entry("dear", "big", "http://127.0.0.1:9/v1", 1e-5)])
    settings = Settings(config_dir=tmp_path / "config", checkpoint=judged_checkpoint.path, judge_api_key_env="NOPE")
    with pytest.raises(ConfigError, match="NOPE, which is not set"):
        create_app(settings, environ={})
