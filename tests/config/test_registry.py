"""The registry and tier files: valid ones load into typed objects, invalid ones name file, key and problem."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from gateway.registry import ConfigError, load_registry, load_tiers, resolve_api_keys
from gateway.settings import DEFAULT_CHECKPOINT, DEFAULT_CONFIG_DIR, PROJECT_ROOT, Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid():
    registry = load_registry(DEFAULT_CONFIG_DIR / "models.yaml")
    tiers = load_tiers(DEFAULT_CONFIG_DIR / "tiers.yaml")
    assert len(registry.enabled) == 9 and all(b.demo for b in registry.enabled)
    # each demo backend is scored by its own trained profile: the corpus model it is named after
    trained = json.loads((DEFAULT_CHECKPOINT / "router.json").read_text())["models"]
    assert all(b.profile == b.name and b.profile in trained for b in registry.enabled)
    assert set(tiers.tiers) == {"perf", "balanced", "cost"}
    assert tiers.tiers["perf"] < tiers.tiers["balanced"] < tiers.tiers["cost"]
    assert tiers.presets["paper"] == {"perf": 0, "balanced": 1000, "cost": 100000}


def test_shipped_tiers_are_the_checkpoints_and_the_readme_states_them():
    tiers = load_tiers(DEFAULT_CONFIG_DIR / "tiers.yaml").tiers
    card = json.loads((DEFAULT_CHECKPOINT / "card.json").read_text())
    assert tiers == pytest.approx(card["tiers_from_validation"], rel=1e-6)
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    stated = re.search(r"The defaults \(perf ([\d.,]+), balanced ([\d.,]+), cost ([\d.,]+)\)", readme)
    assert stated, "README.md no longer states the default tiers"
    for name, value in zip(("perf", "balanced", "cost"), stated.groups(), strict=True):
        assert float(value.replace(",", "")) == pytest.approx(tiers[name], rel=5e-3), name


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("backends:\n  - {name: a, litellm_model: m, profile: p, api_key: sk-1}\n", "backends[0]", "api_key_env"),
        ("backends:\n  - {name: a, profile: p}\n", "backends[0].litellm_model", "Field required"),
        ("backends:\n  - {name: a, litellm_model: m, profile: p, enabled: maybe}\n", "backends[0].enabled", "bool"),
        ("backends:\n  - {name: a, litellm_model: m, profile: p, colour: red}\n", "backends[0].colour", "Extra"),
        (
            "backends:\n  - {name: a, litellm_model: m, profile: p}\n  - {name: a, litellm_model: n, profile: p}\n",
            "backends",
            "repeated: a",
        ),
        ("backends: []\n", "backends", "at least 1"),
        (
            "backends:\n  - {name: a, litellm_model: anthropic/claude-2.0, profile: p, api_base: 'http://h/v1',"
            " transport: direct}\n",
            "backends[0]",
            "transport: direct forwards OpenAI's API unchanged",
        ),
        (
            "backends:\n  - {name: a, litellm_model: openai/m, profile: p, transport: direct}\n",
            "backends[0]",
            "api_base",
        ),
        (
            "backends:\n  - {name: a, litellm_model: openai/m, profile: p, api_base: 'http://h/v1', demo: true,"
            " transport: direct}\n",
            "backends[0]",
            "demo backend",
        ),
        (
            "backends:\n  - {name: a, litellm_model: m, profile: p, transport: raw}\n",
            "backends[0].transport",
            "litellm",
        ),
        ("backends: [\n", "", "not valid YAML"),
        ("- just a list\n", "", "mapping"),
    ],
)
def test_invalid_registry_names_file_key_and_problem(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as info:
        load_registry(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "models.yaml"))
    assert key in message and problem in message
    assert "sk-1" not in message


def test_a_list_whose_only_backend_is_invalid_is_reported_for_that_backend_alone(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_registry(write(tmp_path, "backends:\n  - {name: a, litellm_model: m, profile: p, enabled: maybe}\n"))
    assert "backends[0].enabled" in str(info.value) and "at least 1" not in str(info.value)


def test_tier_table_rejects_missing_tiers_and_negative_lambda(tmp_path):
    path = tmp_path / "tiers.yaml"
    path.write_text("tiers: {perf: 0, balanced: -1}\n")
    with pytest.raises(ConfigError, match=r"tiers\.yaml: tiers: missing tiers: cost"):
        load_tiers(path)
    path.write_text("tiers: {perf: 0, balanced: -1, cost: 5}\n")
    with pytest.raises(ConfigError, match="λ must be ≥ 0 for: balanced"):
        load_tiers(path)


def test_api_keys_come_from_the_named_env_var(tmp_path):
    registry = load_registry(
        write(tmp_path, "backends:\n  - {name: a, litellm_model: m, profile: p, api_key_env: A_KEY}\n")
    )
    assert resolve_api_keys(registry, {"A_KEY": "sk-x"}) == {"a": "sk-x"}
    with pytest.raises(ConfigError, match="env var A_KEY is not set"):
        resolve_api_keys(registry, {})


def test_settings_read_the_llmrank_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMRANK_PORT", "9999")
    monkeypatch.setenv("LLMRANK_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("LLMRANK_API_KEYS", '["k1"]')
    settings = Settings()
    assert (settings.port, settings.config_dir, settings.api_keys) == (9999, tmp_path, ["k1"])
    assert settings.models_file == tmp_path / "models.yaml"


def test_a_lone_miss_uses_every_core_and_misses_under_load_one_each_unless_told(monkeypatch):
    defaults = Settings()
    assert (defaults.scoring_threads, defaults.scoring_slots) == (len(os.sched_getaffinity(0)),) * 2
    monkeypatch.setenv("LLMRANK_SCORING_THREADS", "3")
    monkeypatch.setenv("LLMRANK_SCORING_SLOTS", "1")
    assert (Settings().scoring_threads, Settings().scoring_slots) == (3, 1)
    monkeypatch.setenv("LLMRANK_SCORING_SLOTS", "0")
    with pytest.raises(ValueError, match="scoring_slots"):
        Settings()


def test_a_profile_may_name_a_trained_model_by_another_sources_name(tmp_path):
    from gateway.config_store import load_gateway_config

    models = write(
        tmp_path,
        "backends:\n"
        "  - {name: old, litellm_model: openai/gpt-4o-mini, profile: claude-v2, demo: true}\n"
        "  - {name: new, litellm_model: openai/gpt-4o-mini, profile: meta-llama/Meta-Llama-3.1-70B-Instruct,"
        " demo: true}\n",
    )
    names = {
        "claude-2": "claude-2",
        "claude-v2": "claude-2",
        "meta-llama/Meta-Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
    }
    config = load_gateway_config(models, DEFAULT_CONFIG_DIR / "tiers.yaml", names, {})
    assert [b.profile for b in config.registry.backends] == ["claude-2", "meta-llama/Meta-Llama-3.1-70B-Instruct"]


def test_an_unknown_profile_suggests_the_close_names(tmp_path):
    from gateway.config_store import load_gateway_config

    models = write(
        tmp_path, "backends:\n  - {name: a, litellm_model: openai/gpt-4o-mini, profile: Llama-3.1-70B, demo: true}\n"
    )
    names = {
        "meta-llama/Meta-Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "gpt-4": "gpt-4",
    }
    with pytest.raises(
        ConfigError, match=r"'Llama-3.1-70B' is not a router profile; did you mean Llama-3.1-70B-Instruct"
    ):
        load_gateway_config(models, DEFAULT_CONFIG_DIR / "tiers.yaml", names, {})
