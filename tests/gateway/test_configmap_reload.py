"""A Kubernetes ConfigMap update reaches a running gateway without a restart.

The kubelet writes a mounted ConfigMap as `..<timestamp>/` folders, a `..data` link to the current one, and one
link per key through `..data`; an update writes a new folder and swaps `..data` with an atomic rename. The test does
the same to the config folder of a gateway under uvicorn and watches `/v1/models` change.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import yaml

from gateway.settings import DEFAULT_CONFIG_DIR
from tests.conftest import backend_entry
from tests.support.waiting import wait_until


def write_configmap(mount: Path, version: str, backends: list[dict]) -> None:
    """What the kubelet's atomic writer leaves: the new files in their own folder, then `..data` swapped to it."""
    folder = mount / f"..{version}"
    folder.mkdir()
    (folder / "models.yaml").write_text(yaml.safe_dump({"backends": backends}, sort_keys=False))
    (folder / "tiers.yaml").write_text((DEFAULT_CONFIG_DIR / "tiers.yaml").read_text())
    (mount / "..data_tmp").symlink_to(folder.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    for name in ("models.yaml", "tiers.yaml"):
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")


def served(url: str) -> list[str]:
    return [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"] if m["owned_by"] == "llmrank-backend"]


def test_a_configmap_update_is_reloaded_in_place(gateway_factory, upstream, tmp_path):
    base, _ = upstream
    mount = tmp_path / "configmap"
    mount.mkdir()
    first = [backend_entry("cheap", "mistralai/mistral-7b-chat", f"{base}/b/cheap/v1", 2e-7)]
    write_configmap(mount, "2026_12_03_10_00_00.1", first)
    url = gateway_factory(first, config_dir=mount)
    assert served(url) == ["cheap"]

    second = [*first, backend_entry("mid", "gpt-3.5-turbo-1106", f"{base}/b/mid/v1", 1e-6)]
    write_configmap(mount, "2026_12_03_10_05_00.2", second)
    assert wait_until(lambda: served(url) == ["cheap", "mid"], timeout_s=10)
