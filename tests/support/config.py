"""A gateway config folder written for a test or a bench: the given backends, and the shipped tiers unless others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.settings import DEFAULT_CONFIG_DIR


def write_config(config_dir: Path, backends: list[dict[str, Any]], tiers: dict[str, Any] | None = None) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "models.yaml").write_text(yaml.safe_dump({"backends": backends}, sort_keys=False))
    shipped = yaml.safe_load((DEFAULT_CONFIG_DIR / "tiers.yaml").read_text())
    (config_dir / "tiers.yaml").write_text(yaml.safe_dump(tiers or shipped, sort_keys=False))
