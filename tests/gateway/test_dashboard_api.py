"""/ui/api/pool: the live config as the dashboard shows it — profile kinds, resolved transports, the reload error."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import backend_entry
from tests.support.waiting import wait_until


def test_the_pool_shows_profile_kinds_resolved_transports_and_a_rejected_reload(gateway_factory, upstream, tmp_path):
    base, _ = upstream
    url = gateway_factory(
        [
            backend_entry("gpt-4-1106-preview", "gpt-4-1106-preview", f"{base}/b/own/v1", 1e-5),
            backend_entry("cheap", "mistralai/mistral-7b-chat", f"{base}/b/cheap/v1", 2e-7, transport="litellm"),
        ]
    )
    pool = httpx.get(f"{url}/ui/api/pool").json()
    own, cheap = pool["backends"]
    assert (own["profile_kind"], own["transport"], own["call_transport"]) == ("trained", "auto", "direct")
    assert (cheap["profile_kind"], cheap["call_transport"]) == ("borrowed", "litellm")
    assert pool["last_reload_error"] is None and cheap["dollars_per_million_tokens"]["input"] == pytest.approx(0.2)

    (tmp_path / "config" / "models.yaml").write_text("backends: [{name: broken}]\n")
    assert wait_until(lambda: httpx.get(f"{url}/ui/api/pool").json()["last_reload_error"] is not None, timeout_s=10)
    pool = httpx.get(f"{url}/ui/api/pool").json()
    assert "litellm_model" in pool["last_reload_error"] and [b["name"] for b in pool["backends"]] == [
        "gpt-4-1106-preview",
        "cheap",
    ]  # the last good config still serves
