"""Process settings from `LLMRANK_*` environment variables, validated once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.registry import ConfigError
from router_model.cores import usable_cores
from router_model.judge import JudgeConnection

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CHECKPOINT = PROJECT_ROOT / "router_model" / "checkpoints" / "default"


class Settings(BaseSettings):
    """Everything the gateway reads from its environment; the registry lives in `config_dir`."""

    model_config = SettingsConfigDict(env_prefix="LLMRANK_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    config_dir: Path = DEFAULT_CONFIG_DIR
    checkpoint: Path = DEFAULT_CHECKPOINT
    redis_url: str | None = "redis://127.0.0.1:6379/0"
    cache_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    cache_max_entries: int = Field(10_000, gt=0)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    api_keys: list[str] = Field(default_factory=list, description="Gateway keys; empty means no auth.")
    max_fallbacks: int = Field(2, ge=0)
    upstream_timeout_s: float = Field(60.0, gt=0)
    cooldown_failures: int = Field(3, ge=1, description="retriable failures in a row before a backend sits out")
    cooldown_s: float = Field(30.0, ge=0)
    expected_output_tokens: int = Field(256, gt=0)
    # A cache miss runs the encoder and the rule features in a worker thread. A miss scored alone uses every core; under
    # load one thread per prompt and one prompt per core serve more misses than two threads on one prompt (+13 %
    # at 64 clients on 2 cores; docs/BENCHMARKS.md), so a miss scored beside others encodes on one thread.
    scoring_threads: int = Field(
        default_factory=usable_cores,
        ge=1,
        description="CPU threads a cache miss scored alone uses; one scored beside others uses one",
    )
    scoring_slots: int = Field(default_factory=usable_cores, ge=1, description="cache misses scored at once")
    reload_interval_s: float = Field(2.0, gt=0)
    feedback_ttl_s: int = Field(24 * 3600, gt=0, description="how long a request id can still receive feedback")
    feedback_file: Path = Path.home() / ".cache" / "llmrank" / "feedback.jsonl"
    # How to reach a checkpoint's LLM feature judge, where it was trained with one (`llmrank train --judge-model`);
    # a checkpoint without one never calls it.
    judge_api_base: str | None = None
    judge_api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="env var holding the judge's API key"
    )
    judge_timeout_s: float = Field(5.0, gt=0, description="a cache miss waits this long for the judge at most")
    judge_concurrency: int = Field(
        8, ge=1, description="judge calls in flight at once; a miss finding them all busy is routed on parsed features"
    )
    drain_s: float = Field(
        5.0, ge=0, description="after SIGTERM, /readyz fails and requests are still served this long, then it stops"
    )
    shutdown_grace_s: float = Field(
        30.0, gt=0, description="then requests and streams under way get this long to finish before they are cut"
    )
    decisions_log: bool = Field(True, description="record each routed decision for the dashboard (/ui)")
    decisions_max: int = Field(10_000, ge=1, description="decisions kept: the Redis stream's cap, or the ring's")
    store_prompts: bool = Field(False, description="keep each routed prompt's text in the decisions log")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def judge_configured(self) -> bool:
        return bool(self.judge_api_base or self.judge_api_key_env)

    def judge_connection(self, environ: Mapping[str, str]) -> JudgeConnection:
        key = None
        if self.judge_api_key_env:
            key = environ.get(self.judge_api_key_env)
            if not key:
                raise ConfigError(f"LLMRANK_JUDGE_API_KEY_ENV names {self.judge_api_key_env}, which is not set")
        return JudgeConnection(self.judge_api_base, key, self.judge_timeout_s, concurrency=self.judge_concurrency)

    @property
    def models_file(self) -> Path:
        return self.config_dir / "models.yaml"

    @property
    def tiers_file(self) -> Path:
        return self.config_dir / "tiers.yaml"
