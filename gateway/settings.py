"""Process settings from `LLMRANK_*` environment variables, validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from router_model.cores import usable_cores

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
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def models_file(self) -> Path:
        return self.config_dir / "models.yaml"

    @property
    def tiers_file(self) -> Path:
        return self.config_dir / "tiers.yaml"
