"""deploy/k8s: every manifest valid against the Kubernetes version the kustomization declares (kubernetes-validate's
bundled schemas, offline), and consistent with the gateway it deploys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config_store import load_gateway_config
from gateway.registry import load_tiers
from gateway.routes import ROUTES
from gateway.settings import DEFAULT_CONFIG_DIR, PROJECT_ROOT, Settings
from router_model.router import Router

K8S = PROJECT_ROOT / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())


def declared_version() -> str:
    found = re.search(
        r"validated offline against Kubernetes (\d+\.\d+\.\d+)", (K8S / "kustomization.yaml").read_text(), re.I
    )
    assert found, "kustomization.yaml must say which Kubernetes version it is validated against"
    return found.group(1)


def resources() -> list[dict[str, Any]]:
    docs = []
    for name in KUSTOMIZATION["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in resources() if d["kind"] == kind]


@pytest.mark.parametrize("doc", resources(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_validates_against_the_declared_kubernetes_version(doc):
    kubernetes_validate.validate(doc, declared_version(), strict=True)


def test_the_kustomization_holds_what_the_issue_asks_for():
    kinds = {d["kind"] for d in resources()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "StatefulSet"} <= kinds
    [generated] = KUSTOMIZATION["configMapGenerator"]
    assert all((K8S / f).exists() for f in generated["files"])
    assert generated["options"]["disableNameSuffixHash"] is True  # updated in place, so replicas reload it


def gateway_container() -> tuple[dict[str, Any], dict[str, Any]]:
    [deployment] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "llmrank-gateway"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def test_every_gateway_setting_the_deployment_sets_exists_and_parses():
    _, container = gateway_container()
    env = {e["name"]: e["value"] for e in container["env"]}
    fields = {f"LLMRANK_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("LLMRANK_")} <= fields
    settings = Settings(**{k.removeprefix("LLMRANK_").lower(): v for k, v in env.items() if k.startswith("LLMRANK_")})
    assert str(settings.config_dir) == container["volumeMounts"][0]["mountPath"]


def test_shutdown_timing_and_probes_match_the_gateway():
    pod, container = gateway_container()
    env = {e["name"]: float(e["value"]) for e in container["env"] if e["name"].endswith(("DRAIN_S", "GRACE_S"))}
    assert pod["terminationGracePeriodSeconds"] >= env["LLMRANK_DRAIN_S"] + env["LLMRANK_SHUTDOWN_GRACE_S"]
    paths = {route.path for route in ROUTES}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert (
        Path(next(e["value"] for e in container["env"] if e["name"] == "LLMRANK_FEEDBACK_FILE")).parent.as_posix()
        in writable
    )


def test_the_example_config_loads_with_the_secrets_keys(router: Router):
    [secret] = by_kind("Secret")
    config = load_gateway_config(
        K8S / "config" / "models.yaml", K8S / "config" / "tiers.yaml", router.profile_names, secret["stringData"]
    )
    assert config.registry.enabled
    assert load_tiers(K8S / "config" / "tiers.yaml") == load_tiers(DEFAULT_CONFIG_DIR / "tiers.yaml")  # the trained λs
