"""deploy/docker-compose.yml and deploy/nginx/llmrank.conf: two gateway replicas with the same health checks, a
Redis, and nginx balancing the services by their compose names. (Running it needs Docker Hub's images; what can be
checked offline is that the pieces name each other consistently and keep the shutdown timings.)"""

from __future__ import annotations

import re

import yaml

from gateway.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def gateways() -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if name.startswith("gateway-")}


def test_two_replicas_share_one_definition_and_one_redis():
    replicas = gateways()
    assert len(replicas) == 2
    first, second = replicas.values()
    assert first == second  # one YAML anchor: the same image, settings and health check
    assert first["environment"]["LLMRANK_REDIS_URL"].startswith("redis://redis:")
    assert "redis" in COMPOSE["services"] and first["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(first["healthcheck"]["test"])


def test_every_setting_it_passes_is_a_gateway_setting():
    fields = {f"LLMRANK_{name.upper()}" for name in Settings.model_fields}
    for replica in gateways().values():
        assert {k for k in replica["environment"] if k.startswith("LLMRANK_")} <= fields


def test_compose_waits_for_the_drain_and_the_grace():
    for replica in gateways().values():
        env = replica["environment"]
        grace = int(replica["stop_grace_period"].removesuffix("s"))
        assert grace >= float(env["LLMRANK_DRAIN_S"]) + float(env["LLMRANK_SHUTDOWN_GRACE_S"])


def test_nginx_balances_the_compose_services_and_passes_streams_through():
    conf = (DEPLOY / "nginx" / "llmrank.conf").read_text()
    upstreams = set(re.findall(r"^\s*server (\S+):8080;", conf, re.M))
    assert upstreams == set(gateways())
    assert re.search(r"proxy_buffering off;", conf) and re.search(r"proxy_next_upstream error non_idempotent;", conf)
    balancer = COMPOSE["services"]["balancer"]
    assert "./nginx/llmrank.conf:/etc/nginx/conf.d/default.conf:ro" in balancer["volumes"]
    assert set(balancer["depends_on"]) == set(gateways())
