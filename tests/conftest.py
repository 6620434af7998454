from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from gateway.app import create_app  # noqa: E402
from gateway.logs import send_structlog_to_stdlib  # noqa: E402
from gateway.settings import DEFAULT_CHECKPOINT, Settings  # noqa: E402
from router_model.judge import JudgeConnection  # noqa: E402
from router_model.router import Router  # noqa: E402
from router_model.train import TrainConfig, train  # noqa: E402
from tests.router_model.fixtures import write_tiny_routerbench  # noqa: E402
from tests.support.config import write_config  # noqa: E402
from tests.support.servers import serve  # noqa: E402
from tests.support.upstream import UpstreamControl, build_upstream  # noqa: E402

# The gateway's lines go through the standard library, as under `serve`: pytest keeps them with each test (shown on
# failure, seen by `caplog`), and a server thread that logs between two tests prints nothing to the terminal.
send_structlog_to_stdlib(cache=False)
logging.getLogger().addHandler(logging.NullHandler())

TEST_REDIS_DB = 11
REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
DATA_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "routerbench_subset.parquet"
CORPUS_DIR = DATA_FILE.parent / "corpus"


@pytest.fixture(scope="session")
def router() -> Router:
    return Router.load(DEFAULT_CHECKPOINT)


# The feature judge of `judged_checkpoint`, as the test upstream's backend "judge" plays it.
JUDGE_MODEL = "openai/judge-mini"
JUDGE_REPLY = {"task_code_generation": 1, "knowledge_code": 0.75, "output_code": True, "options_count": 1}


@dataclass(frozen=True)
class JudgedCheckpoint:
    path: Path
    cache_dir: Path  # its encoder weights and the judgements made in training
    judge_calls: int  # requests the judge got while it was trained


@pytest.fixture(scope="session")
def judged_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> JudgedCheckpoint:
    """A tiny checkpoint whose rule features were judged by JUDGE_MODEL, which answered JUDGE_REPLY to every prompt."""
    root = tmp_path_factory.mktemp("judged")
    control = UpstreamControl(content={"judge": json.dumps(JUDGE_REPLY)})
    with serve(build_upstream(control)) as base:
        config = TrainConfig(
            data=(write_tiny_routerbench(root / "tiny.parquet"),),
            out=root / "checkpoint",
            epochs=3,
            ablations=False,
            progress=False,
            serve_precision="fp32",
            judge_model=JUDGE_MODEL,
            judge_connection=JudgeConnection(api_base=f"{base}/b/judge/v1"),
            cache_dir=root / "cache",
        )
        train(config)
    return JudgedCheckpoint(config.out, config.cache_dir, len(control.received))


@pytest.fixture()
def redis_db() -> Iterator[redis.Redis]:
    """The tests' own Redis database, emptied before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def upstream() -> Iterator[tuple[str, UpstreamControl]]:
    control = UpstreamControl()
    with serve(build_upstream(control)) as base:
        yield base, control


def backend_entry(name: str, profile: str, api_base: str, price: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "litellm_model": f"openai/{name}",
        "profile": profile,
        "api_base": api_base,
        "input_cost_per_token": price,
        "output_cost_per_token": price * 2,
        **extra,
    }


# The two ways the gateway calls a backend (models.yaml `transport`); tests of the call itself run under both.
TRANSPORTS = ("litellm", "direct")


def standard_backends(base: str, transport: str = "litellm") -> list[dict[str, Any]]:
    """A dear strong model, a mid one and a cheap one, all on the test upstream."""
    return [
        backend_entry("strong", "gpt-4-1106-preview", f"{base}/b/strong/v1", 1e-5, transport=transport),
        backend_entry("mid", "gpt-3.5-turbo-1106", f"{base}/b/mid/v1", 1e-6, transport=transport),
        backend_entry("cheap", "mistralai/mistral-7b-chat", f"{base}/b/cheap/v1", 2e-7, transport=transport),
    ]


def ranked(url: str, prompt: str, tier: str) -> list[str]:
    """The backends in the order the gateway's `/v1/route` ranks them for `prompt` at `tier`: the fallback order."""
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    decision = httpx.post(f"{url}/v1/route", json=body, headers={"X-Budget-Tier": tier}, timeout=30).json()
    return [c["backend"] for c in decision["candidates"]]


@pytest.fixture()
def gateway_factory(router: Router, tmp_path: Path, redis_db: redis.Redis) -> Iterator[Callable[..., str]]:
    """Start the gateway under uvicorn with the given backends; returns its base URL."""
    stack: list[Any] = []

    def start(backends: list[dict[str, Any]], environ: dict[str, str] | None = None, **settings: Any) -> str:
        config_dir = tmp_path / "config"
        write_config(config_dir, backends)
        defaults: dict[str, Any] = {"config_dir": config_dir, "redis_url": REDIS_URL, "reload_interval_s": 0.2}
        app = create_app(Settings(**{**defaults, **settings}), router=router, environ=environ or {})
        ctx = serve(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return url

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)
