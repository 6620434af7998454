"""The backend registry (`config/models.yaml`) and tier table (`config/tiers.yaml`) as typed objects.

Both files are validated as a whole; any problem raises one `ConfigError` naming the file, the key and the
problem, so start-up stops with a message a person can act on and a hot reload keeps the last good config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TIER_NAMES = ("perf", "balanced", "cost")
M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file that cannot be used; the message names file, key and problem."""


class Backend(BaseModel):
    """One upstream model the gateway may route to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    litellm_model: str = Field(min_length=1)
    profile: str = Field(min_length=1, description="Router head that scores this backend.")
    api_base: str | None = None
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    input_cost_per_token: float | None = Field(None, ge=0)
    output_cost_per_token: float | None = Field(None, ge=0)
    quality_offset: float = 0.0
    enabled: bool = True
    demo: bool = Field(False, description="Answer through LiteLLM's mock_response: no key, no network.")
    transport: Literal["auto", "litellm", "direct"] = Field(
        "auto",
        description="auto: direct for an OpenAI-compatible server (litellm_model 'openai/<model>' with an api_base), "
        "LiteLLM for everything else. litellm: always through LiteLLM (any provider). direct: forward the OpenAI "
        "request as it is to the api_base, skipping LiteLLM's per-call work.",
    )
    max_input_tokens: int | None = Field(
        None, ge=1, description="The longest prompt it takes, in tokens; LiteLLM's model map when omitted."
    )
    max_output_tokens: int | None = Field(
        None, ge=1, description="The largest max_tokens it accepts; LiteLLM's model map when omitted."
    )
    supports_vision: bool | None = Field(None, description="Whether it takes images; LiteLLM's model map when omitted.")
    supports_tools: bool | None = Field(None, description="Whether it takes tools; LiteLLM's model map when omitted.")
    supports_audio: bool | None = Field(
        None, description="Whether it takes audio parts (input_audio); LiteLLM's model map when omitted."
    )
    supports_files: bool | None = Field(
        None, description="Whether it takes file parts (PDFs); LiteLLM's model map (supports_pdf_input) when omitted."
    )
    stream_usage: bool = Field(
        True,
        description="Ask this backend for a stream's usage (stream_options.include_usage) to price it. Turn off for "
        "a server that rejects the field; the stream's cost is then counted from its tokens.",
    )

    @property
    def speaks_openai(self) -> bool:
        """An OpenAI-compatible server of its own: the gateway can forward OpenAI's API to it unchanged."""
        return self.litellm_model.startswith("openai/") and bool(self.api_base) and not self.demo

    @property
    def call_transport(self) -> Literal["litellm", "direct"]:
        """How the gateway calls it: `transport`, with `auto` resolved."""
        if self.transport == "auto":
            return "direct" if self.speaks_openai else "litellm"
        return self.transport

    @model_validator(mode="before")
    @classmethod
    def _reject_inline_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError("api_key may not be written in the file; name an env var with api_key_env")
        return data

    @model_validator(mode="after")
    def _direct_needs_an_openai_compatible_server(self) -> Backend:
        if self.transport == "direct" and not (self.litellm_model.startswith("openai/") and self.api_base):
            raise ValueError(
                "transport: direct forwards OpenAI's API unchanged, so it needs an OpenAI-compatible server: "
                "litellm_model 'openai/<model>' and an api_base"
            )
        if self.transport == "direct" and self.demo:
            raise ValueError("transport: direct calls a real server; a demo backend answers through LiteLLM")
        return self

    @property
    def served_model(self) -> str:
        """The model name the backend's own API knows (LiteLLM's provider prefix removed)."""
        return self.litellm_model.partition("/")[2] or self.litellm_model


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backends: tuple[Backend, ...] = Field(min_length=1)

    @field_validator("backends")
    @classmethod
    def _unique_names(cls, backends: tuple[Backend, ...]) -> tuple[Backend, ...]:
        names = [b.name for b in backends]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(duplicated)}")
        if not any(b.enabled for b in backends):
            raise ValueError("at least one backend must be enabled")
        return backends

    @property
    def enabled(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.backends if b.enabled)

    def get(self, name: str) -> Backend | None:
        return next((b for b in self.enabled if b.name == name), None)


class Tiers(BaseModel):
    """Tier name → λ (utility = quality − λ · dollars per query), plus named presets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_tier: str = "balanced"
    tiers: dict[str, float]
    presets: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _all_tiers_nonnegative(cls, tiers: dict[str, float]) -> dict[str, float]:
        missing = [t for t in TIER_NAMES if t not in tiers]
        if missing:
            raise ValueError(f"missing tiers: {', '.join(missing)}")
        negative = [t for t, lam in tiers.items() if lam < 0]
        if negative:
            raise ValueError(f"λ must be ≥ 0 for: {', '.join(negative)}")
        return tiers

    @model_validator(mode="after")
    def _default_is_a_tier(self) -> Tiers:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier '{self.default_tier}' is not one of {sorted(self.tiers)}")
        return self

    def lambda_for(self, tier: str) -> float:
        return self.tiers[tier]


def load_registry(path: Path) -> Registry:
    return _validated(path, Registry)


def load_tiers(path: Path) -> Tiers:
    return _validated(path, Tiers)


def _validated(path: Path, model: type[M]) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    """One `key: problem` per error, without the "too short" that pydantic adds for a list whose only items failed."""
    errors = exc.errors()
    problems = []
    for err in errors:
        loc = err["loc"]
        if err["type"] == "too_short" and any(e["loc"][: len(loc)] == loc and e["loc"] != loc for e in errors):
            continue
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{key or '(top level)'}: {message}")
    return "; ".join(problems)


def resolve_api_keys(registry: Registry, environ: Mapping[str, str]) -> dict[str, str]:
    """Backend name → key, read from the env var each backend names; a missing variable is a config error."""
    keys: dict[str, str] = {}
    for backend in registry.enabled:
        if backend.api_key_env is None:
            continue
        value = environ.get(backend.api_key_env)
        if not value:
            raise ConfigError(f"backend {backend.name!r}: env var {backend.api_key_env} is not set")
        keys[backend.name] = value
    return keys
