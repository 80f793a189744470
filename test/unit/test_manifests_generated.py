"""``manifests/``: generated parts are fresh, the kustomize tree renders, and its objects agree with each other
and with druid (config keys, ports, paths, names, the Deployment's hardening). No cluster needed; the API
server's verdict is test/integration/test_manifests.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from druid.components import registry
from druid.config import parse, validate
from druid.runtime.manager import ManagerOptions
from druid.testing.binaries import REPO
from druid.webhook.configuration import (
    COMPONENT_RULES,
    DEFAULT_PORT,
    ETCDS_WEBHOOK_NAME,
    ETCDS_WEBHOOK_PATH,
    WEBHOOK_PATH,
)

MANIFESTS = REPO / "manifests"
NAMESPACE = "druid-system"


def _load_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_manifests", REPO / "hack" / "gen-manifests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_manifests", module)
    spec.loader.exec_module(module)
    return module


gen = _load_gen()


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"want exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = gen.build(MANIFESTS)
    return built


# ------------------------------------------------------------------------------------------- generation


def test_committed_generated_manifests_equal_a_fresh_generation() -> None:
    for path, text in gen.generated_files().items():
        assert path.exists(), f"{path} missing: run hack/gen-manifests.py"
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} is stale: run .venv/bin/python hack/gen-manifests.py"
        )
    assert gen.main(["--check"]) == 0


def test_kustomization_lists_every_crd_and_every_manifest_file() -> None:
    resources = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    crds = sorted(f"crds/{p.name}" for p in (MANIFESTS / "crds").glob("*.yaml"))
    assert sorted(r for r in resources if r.startswith("crds/")) == crds
    top = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(r for r in resources if "/" not in r) == top, "a manifest file is not in kustomization.yaml"


def test_build_sets_the_namespace_and_orders_like_kustomize(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] in gen.CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "Namespace" and kinds[-1] == "ValidatingWebhookConfiguration"
    assert max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition") < kinds.index("ServiceAccount")


def test_build_rejects_what_the_subset_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\npatches: []\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(gen.KustomizeError, match="unsupported fields"):
        gen.build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [../outside.yaml]\n")
    with pytest.raises(gen.KustomizeError, match="outside the kustomization root"):
        gen.build(tmp_path)


# ------------------------------------------------------------------------------------- cross-references


def config_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    cm = one(objects, "ConfigMap", "etcd-druid-operator-config")
    data: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    return data


def test_operator_configuration_is_complete_valid_and_as_the_chart(objects: list[dict[str, Any]]) -> None:
    data = config_of(objects)
    cfg, notes = parse(data)
    assert notes == [] and validate(cfg) == []
    assert cfg.to_dict() == data, "not every field is spelled out"
    assert cfg.leader_election.enabled and cfg.leader_election.resource_name == "druid-leader-election"
    assert cfg.controllers.compaction.enabled and cfg.controllers.etcd_copy_backups_task.enabled
    protection = cfg.webhooks.etcd_component_protection
    sa = one(objects, "ServiceAccount")
    assert protection.enabled
    assert protection.reconciler_service_account == f"system:serviceaccount:{NAMESPACE}:{sa['metadata']['name']}"


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment", "etcd-druid")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    c: dict[str, Any] = pod["containers"][0]
    return c


def test_deployment_runs_the_configuration_it_ships(objects: list[dict[str, Any]]) -> None:
    deploy = one(objects, "Deployment", "etcd-druid")
    pod, c = deploy["spec"]["template"]["spec"], container(objects)
    cfg, _ = parse(config_of(objects))
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_arg = next(a for a in c["args"] if a.startswith("--config="))
    config_dir, key = config_arg.removeprefix("--config=").rsplit("/", 1)
    config_mount = next(m for m in mounts.values() if m["mountPath"] == config_dir)
    assert volumes[config_mount["name"]]["configMap"]["name"] == "etcd-druid-operator-config"
    assert key in one(objects, "ConfigMap")["data"]
    tls_mount = next(m for m in mounts.values() if m["mountPath"] == cfg.server.webhooks.server_cert_dir)
    assert volumes[tls_mount["name"]]["secret"]["secretName"] == "etcd-druid-server-tls"
    assert volumes[mounts["tmp"]["name"]]["emptyDir"] is not None and mounts["tmp"]["mountPath"] == "/tmp"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == cfg.server.metrics.port == 8080
    assert ports["webhooks"] == cfg.server.webhooks.port == DEFAULT_PORT
    assert ports["probes"] == ManagerOptions().probe_port and f"--probe-port={ports['probes']}" in c["args"]
    assert (c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]) == ("/healthz", "/readyz")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] == "probes"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]


def test_deployment_is_highly_available_and_hardened(objects: list[dict[str, Any]]) -> None:
    deploy = one(objects, "Deployment", "etcd-druid")
    spec = deploy["spec"]
    pod, c = spec["template"]["spec"], container(objects)
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert pod["terminationGracePeriodSeconds"] > ManagerOptions().graceful_shutdown_timeout
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    spread = pod["topologySpreadConstraints"]
    assert any(t["topologyKey"] == "kubernetes.io/hostname" for t in spread)
    assert all(t["labelSelector"]["matchLabels"].items() <= labels.items() for t in spread)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (65532, 65532)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    resources = c["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]


def test_service_pdb_and_webhook_point_at_the_pods(objects: list[dict[str, Any]]) -> None:
    deploy = one(objects, "Deployment", "etcd-druid")
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    svc = one(objects, "Service", "etcd-druid")
    assert svc["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert (ports["metrics"]["port"], ports["metrics"]["targetPort"]) == (8080, "metrics")
    assert (ports["webhooks"]["port"], ports["webhooks"]["targetPort"]) == (DEFAULT_PORT, "webhooks")
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    vwc = one(objects, "ValidatingWebhookConfiguration")
    for webhook in vwc["webhooks"]:
        ref = webhook["clientConfig"]["service"]
        path = ETCDS_WEBHOOK_PATH if webhook["name"] == ETCDS_WEBHOOK_NAME else WEBHOOK_PATH
        assert (ref["namespace"], ref["name"], ref["port"], ref["path"]) == (
            NAMESPACE,
            "etcd-druid",
            DEFAULT_PORT,
            path,
        )
        assert "caBundle" not in webhook["clientConfig"], "re-applying would wipe an injected CA bundle"


def test_rbac_binds_the_cluster_role_to_the_service_account(objects: list[dict[str, Any]]) -> None:
    role = one(objects, "ClusterRole", "druid.gardener.cloud:system:etcd-druid")
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "etcd-druid", "namespace": NAMESPACE}]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_cert_manager_component_issues_the_mounted_secret(objects: list[dict[str, Any]]) -> None:
    extra = gen.build(MANIFESTS / "cert-manager")
    cert, issuer = one(extra, "Certificate"), one(extra, "Issuer")
    assert cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": issuer["metadata"]["name"]}
    assert cert["spec"]["secretName"] == "etcd-druid-server-tls"
    assert f"etcd-druid.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    vwc = one(objects, "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{cert['metadata']['name']}"


def test_service_monitor_scrapes_the_metrics_port(objects: list[dict[str, Any]]) -> None:
    monitor = one(gen.build(MANIFESTS / "monitoring"), "ServiceMonitor")
    svc = one(objects, "Service", "etcd-druid")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_webhook_rules_and_cluster_role_cover_every_registry_resource(objects: list[dict[str, Any]]) -> None:
    role = one(objects, "ClusterRole", "druid.gardener.cloud:system:etcd-druid")
    for res in registry.managed_resources():
        hooked = [r for r in COMPONENT_RULES if res.group in r["apiGroups"] and res.plural in r["resources"]]
        assert [r["operations"] for r in hooked] == [["UPDATE", "DELETE"]], res
        granted = {
            v for r in role["rules"] if res.group in r["apiGroups"] and res.plural in r["resources"] for v in r["verbs"]
        }
        assert set(gen.MANAGED_VERBS) <= granted, res
