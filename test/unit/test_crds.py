"""The committed CRDs in manifests/crds: fresh, consistent with the models, and with upstream's contract."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from druid.api import coretypes, crds
from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTask
from druid.api.schema import Format
from druid.api.store import CONTAINER_PATTERN

MODELS: dict[str, type[BaseModel]] = {
    "etcds": Etcd,
    "etcdcopybackupstasks": EtcdCopyBackupsTask,
    "etcdopstasks": EtcdOpsTask,
}
# Fields the models need but the CRDs (like upstream's) do not list as required.
NOT_REQUIRED_IN_SCHEMA = {("etcds", ".spec"), ("etcdcopybackupstasks", ".spec")}


def load(plural: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((crds.CRD_DIR / f"druid.gardener.cloud_{plural}.yaml").read_text())
    return crd


def root(plural: str) -> dict[str, Any]:
    schema: dict[str, Any] = load(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """Schema node at a dotted path; ``[]`` steps into array items."""
    node = schema
    for part in path.strip(".").split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def rules(node: dict[str, Any]) -> dict[str, str]:
    return {v["rule"]: v["message"] for v in node.get("x-kubernetes-validations", [])}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], path + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], path + "{}")


# generation --------------------------------------------------------------------------------------------


def test_committed_crds_equal_a_fresh_generation() -> None:
    openapi_dir = coretypes.find_openapi_dir()
    if openapi_dir is None:
        pytest.skip("Kubernetes OpenAPI v3 documents not available (Go module cache); cannot regenerate")
    fresh = crds.render_all(coretypes.load_definitions(openapi_dir))
    for name, text in fresh.items():
        assert (crds.CRD_DIR / name).read_text() == text, f"{name} is stale: run python -m druid.api.crds"
    assert sorted(p.name for p in crds.CRD_DIR.glob("*.yaml")) == sorted(fresh)


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties":
                out[key] = {name: strip_descriptions(child) for name, child in value.items()}
            elif key != "description":
                out[key] = strip_descriptions(value)
        return out
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


@pytest.mark.parametrize("plural", sorted(MODELS))
def test_equal_to_upstream_except_descriptions(plural: str) -> None:
    """Set DRUID_UPSTREAM_CRD_DIR to a directory with etcd-druid's api/core/v1alpha1/crds to run this."""
    upstream_dir = os.environ.get("DRUID_UPSTREAM_CRD_DIR")
    if not upstream_dir:
        pytest.skip("DRUID_UPSTREAM_CRD_DIR not set")
    upstream = yaml.safe_load((Path(upstream_dir) / f"druid.gardener.cloud_{plural}.yaml").read_text())
    upstream["metadata"].pop("annotations", None)  # controller-gen version stamp
    assert strip_descriptions(load(plural)) == strip_descriptions(upstream)


def test_generator_refuses_unmapped_types() -> None:
    builder = crds.SchemaBuilder({})

    class Untyped(BaseModel):
        count: int

    class Loose(BaseModel):
        data: dict[str, Any]

    with pytest.raises(TypeError, match="Format"):
        builder.model(Untyped)
    with pytest.raises(TypeError, match="CoreType"):
        builder.model(Loose)


# models and schema agree -------------------------------------------------------------------------------


class Agreement:
    """Walks pydantic's own JSON schema of a model next to the CRD schema."""

    CONSTRAINTS = ("maxLength", "minLength", "pattern", "minimum", "maximum", "maxItems", "minItems", "enum")

    def __init__(self, plural: str) -> None:
        self.plural = plural
        self.pydantic = MODELS[plural].model_json_schema(by_alias=True)
        self.defs = self.pydantic.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return self.resolve(self.defs[node["$ref"].rsplit("/", 1)[-1]])
        options = [o for o in node.get("anyOf", []) if o != {"type": "null"}]
        if options and len(options) < len(node["anyOf"]):
            return self.resolve(options[0]) if len(options) == 1 else {"anyOf": options}
        return node

    def check(self, py: dict[str, Any], crd: dict[str, Any], path: str) -> None:
        py = self.resolve(py)
        if crd.get("x-kubernetes-int-or-string"):
            assert py.get("anyOf") == [{"type": "integer"}, {"type": "string"}], path
            return
        if path == ".metadata":
            assert crd == {"type": "object"}
            return
        assert py.get("type") == crd["type"], path
        if crd["type"] == "array":
            self.check(py["items"], crd["items"], path + "[]")
        elif crd["type"] == "object" and py.get("additionalProperties") is True:
            pass  # embedded Kubernetes type: the model keeps a dict, the CRD inlines the schema
        elif crd["type"] == "object" and "properties" in py:
            assert set(py["properties"]) == set(crd["properties"]), path
            py_required = {
                name for name in py.get("required", []) if (self.plural, f"{path}.{name}") not in NOT_REQUIRED_IN_SCHEMA
            }
            assert py_required == set(crd.get("required", [])), path
            for name in py["properties"]:
                self.check(py["properties"][name], crd["properties"][name], f"{path}.{name}")
        elif crd["type"] == "object":
            self.check(py["additionalProperties"], crd["additionalProperties"], path + "{}")
        for key in self.CONSTRAINTS:
            assert py.get(key) == crd.get(key), f"{path}: {key}"


@pytest.mark.parametrize("plural", sorted(MODELS))
def test_models_and_schema_agree_field_by_field(plural: str) -> None:
    check = Agreement(plural)
    check.check(check.pydantic, root(plural), "")


@pytest.mark.parametrize("plural", sorted(MODELS))
def test_schema_is_structural(plural: str) -> None:
    for path, node in walk(root(plural)):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "$ref" not in node and "allOf" not in node and "oneOf" not in node, path
        if node.get("type") == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, path


def test_int_formats_come_from_the_models() -> None:
    formats = {path: node.get("format") for path, node in walk(root("etcds")) if node.get("type") == "integer"}
    assert formats[".spec.replicas"] == "int32"
    assert formats[".spec.etcd.snapshotCount"] == "int64"
    assert formats[".status.observedGeneration"] == "int64"
    assert Format("int32") in Etcd.model_fields["spec"].annotation.model_fields["replicas"].metadata  # type: ignore[union-attr]
    assert at(root("etcdcopybackupstasks"), ".spec.maxBackupAge") == {
        "description": at(root("etcdcopybackupstasks"), ".spec.maxBackupAge")["description"],
        "format": "int32",
        "minimum": 0,
        "type": "integer",
    }


def test_embedded_kubernetes_types_are_inlined() -> None:
    schema = root("etcds")
    affinity = at(schema, ".spec.schedulingConstraints.affinity")
    assert set(affinity["properties"]) == {"nodeAffinity", "podAffinity", "podAntiAffinity"}
    tsc = at(schema, ".spec.schedulingConstraints.topologySpreadConstraints[]")
    assert tsc["required"] == ["maxSkew", "topologyKey", "whenUnsatisfiable"]
    requests = at(schema, ".spec.etcd.resources.requests")["additionalProperties"]
    assert requests["x-kubernetes-int-or-string"] is True and requests["anyOf"] == [
        {"type": "integer"},
        {"type": "string"},
    ]
    assert at(schema, ".spec.selector")["x-kubernetes-map-type"] == "atomic"
    assert at(schema, ".spec.backup.store.secretRef")["x-kubernetes-map-type"] == "atomic"
    assert at(schema, ".spec.etcd.clientUrlTls.tlsCASecretRef")["x-kubernetes-map-type"] == "atomic"
    assert at(schema, ".status.selector")["type"] == "string"
    quota = at(schema, ".spec.etcd.quota")
    assert quota["x-kubernetes-int-or-string"] is True and "pattern" in quota


# checklist A -------------------------------------------------------------------------------------------


def test_a1_names_scope_and_versions() -> None:
    expected = {
        "etcds": ("Etcd", "etcd", None),
        "etcdcopybackupstasks": ("EtcdCopyBackupsTask", "etcdcopybackupstask", None),
        "etcdopstasks": ("EtcdOpsTask", "etcdopstask", ["eot"]),
    }
    for plural, (kind, singular, short) in expected.items():
        crd = load(plural)
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
        assert crd["metadata"]["name"] == f"{plural}.druid.gardener.cloud"
        spec = crd["spec"]
        assert spec["group"] == "druid.gardener.cloud" and spec["scope"] == "Namespaced"
        assert spec["names"] == {
            "kind": kind,
            "listKind": f"{kind}List",
            "plural": plural,
            "singular": singular,
            **({"shortNames": short} if short else {}),
        }
        [version] = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def columns(plural: str) -> list[tuple[str, str, str, int]]:
    version = load(plural)["spec"]["versions"][0]
    return [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]]


def test_a1_printer_columns() -> None:
    assert columns("etcds") == [
        ("Ready", "string", ".status.ready", 0),
        ("Quorate", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("All Members Ready", "string", '.status.conditions[?(@.type=="AllMembersReady")].status', 0),
        ("Backup Ready", "string", '.status.conditions[?(@.type=="BackupReady")].status', 0),
        ("Cluster ID Mismatch", "string", '.status.conditions[?(@.type=="ClusterIDMismatch")].status', 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        ("Cluster Size", "integer", ".spec.replicas", 1),
        ("Current Replicas", "integer", ".status.currentReplicas", 1),
        ("Ready Replicas", "integer", ".status.readyReplicas", 1),
    ]
    assert columns("etcdcopybackupstasks") == [("Age", "date", ".metadata.creationTimestamp", 0)]
    assert columns("etcdopstasks") == [
        ("State", "string", ".status.state", 0),
        ("Etcd", "string", ".spec.etcdName", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        ("Phase", "string", ".status.lastOperation.type", 1),
        ("TTL", "integer", ".spec.ttlSecondsAfterFinished", 1),
    ]


def test_a1_printer_column_paths_exist_in_schema() -> None:
    for plural in MODELS:
        schema = root(plural)
        for _, _, path, _ in columns(plural):
            if path.startswith(".metadata"):
                continue
            at(schema, path.split("[", 1)[0])


def test_a2_scale_and_status_subresources() -> None:
    subresources = {plural: load(plural)["spec"]["versions"][0]["subresources"] for plural in MODELS}
    assert subresources["etcds"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert subresources["etcdcopybackupstasks"] == subresources["etcdopstasks"] == {"status": {}}
    schema = root("etcds")
    assert at(schema, ".status.replicas")["type"] == "integer"
    assert at(schema, ".status.selector")["type"] == "string"


def test_a3_replicas_can_grow_or_go_to_zero() -> None:
    schema = root("etcds")
    assert rules(at(schema, ".spec.replicas")) == {
        "self==0 ? true : self < oldSelf ? false : true": "Replicas can either be increased or be downscaled to 0."
    }
    assert {"backup", "etcd", "labels", "replicas"} == set(at(schema, ".spec")["required"])


def test_a4_immutable_fields() -> None:
    spec = at(root("etcds"), ".spec")
    for field in ("storageClass", "volumeClaimTemplate", "memberNamePrefix"):
        assert list(rules(spec["properties"][field])) == ["self == oldSelf"], field
    spec_rules = rules(spec)
    assert spec_rules["has(oldSelf.storageClass) ==  has(self.storageClass)"].endswith("immutable field.")
    assert "has(oldSelf.volumeClaimTemplate) == has(self.volumeClaimTemplate)" in spec_rules
    assert "has(oldSelf.memberNamePrefix) == has(self.memberNamePrefix)" in spec_rules
    prefix = spec["properties"]["memberNamePrefix"]
    assert (prefix["maxLength"], prefix["pattern"]) == (63, "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    assert "x-kubernetes-validations" not in spec["properties"]["storageCapacity"]


def test_a5_delta_snapshot_period_below_gc_period() -> None:
    backup = at(root("etcds"), ".spec.backup")
    [(rule, message)] = rules(backup).items()
    assert (
        "duration(self.deltaSnapshotPeriod).getSeconds() < duration(self.garbageCollectionPeriod).getSeconds()" in rule
    )
    assert (
        message == "etcd.spec.backup.garbageCollectionPeriod must be greater than etcd.spec.backup.deltaSnapshotPeriod"
    )
    for field in ("deltaSnapshotPeriod", "garbageCollectionPeriod"):
        assert backup["properties"][field]["pattern"] == "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"


def test_a6_additional_advertise_peer_urls() -> None:
    schema = root("etcds")
    entries = at(schema, ".spec.etcd.additionalAdvertisePeerURLs")
    assert entries["maxItems"] == 10
    item = entries["items"]
    assert item["required"] == ["memberName", "urls"]
    assert item["properties"]["memberName"]["maxLength"] == 253
    urls = item["properties"]["urls"]
    assert (urls["minItems"], urls["maxItems"], urls["x-kubernetes-list-type"]) == (1, 5, "set")
    assert urls["items"]["maxLength"] == 2048
    assert "isURL(self)" in next(iter(rules(urls["items"])))
    top = rules(schema)
    assert any("m.memberName.startsWith(self.metadata.name + '-')" in r for r in top)
    assert any("lastIndexOf('-')+1)) < self.spec.replicas" in r for r in top)
    etcd_rules = rules(at(schema, ".spec.etcd"))
    assert any("startsWith('https://')" in r and "additionalAdvertisePeerURLs" in r for r in etcd_rules)
    assert any("startsWith('http://')" in r and "additionalAdvertisePeerURLs" in r for r in etcd_rules)


def test_a7_bootstrap_with_existing_cluster() -> None:
    schema = root("etcds")
    bootstrap = at(schema, ".spec.etcd.bootstrapWithExistingCluster")
    members = bootstrap["properties"]["members"]
    assert (members["minItems"], members["maxItems"], members["x-kubernetes-list-type"]) == (1, 10, "atomic")
    peer_urls = members["items"]["properties"]["peerUrls"]
    assert (peer_urls["maxItems"], peer_urls["x-kubernetes-list-type"], peer_urls["items"]["maxLength"]) == (
        5,
        "set",
        2048,
    )
    endpoints = bootstrap["properties"]["clientEndpoints"]
    assert (endpoints["maxItems"], endpoints["x-kubernetes-list-type"], endpoints["items"]["maxLength"]) == (
        10,
        "set",
        2048,
    )
    etcd_rules = rules(at(schema, ".spec.etcd"))
    assert etcd_rules["!has(self.bootstrapWithExistingCluster) || has(oldSelf.bootstrapWithExistingCluster)"] == (
        "etcd.spec.etcd.bootstrapWithExistingCluster cannot be added after the Etcd resource has been created"
    )
    messages = set(rules(schema).values())
    assert "bootstrapWithExistingCluster.members[*].name must be unique" in messages
    assert (
        "etcd.spec.etcd.bootstrapWithExistingCluster.members cannot be modified while the bootstrap is in progress"
        in messages
    )
    in_progress = "cannot be modified while the bootstrap is in progress"
    assert f"etcd.spec.etcd.bootstrapWithExistingCluster.clientEndpoints {in_progress}" in messages
    assert any("must not collide with a target member" in m for m in messages)


def test_a8_ops_task_schema() -> None:
    schema = root("etcdopstasks")
    assert schema["required"] == ["spec"]
    spec = at(schema, ".spec")
    assert spec["required"] == ["config"]
    config = spec["properties"]["config"]
    assert (config["minProperties"], config["maxProperties"]) == (1, 1)
    assert rules(config) == {"self == oldSelf": "config is immutable"}
    assert rules(spec["properties"]["etcdName"]) == {"self == oldSelf": "etcdName is immutable"}
    ttl = spec["properties"]["ttlSecondsAfterFinished"]
    assert (ttl["default"], ttl["minimum"]) == (3600, 1)
    assert rules(ttl) == {"self == oldSelf": "ttlSecondsAfterFinished is immutable"}
    snapshot = config["properties"]["onDemandSnapshot"]
    assert snapshot["properties"]["type"]["enum"] == ["full", "delta"]
    full, delta = snapshot["properties"]["timeoutSecondsFull"], snapshot["properties"]["timeoutSecondsDelta"]
    assert (full["default"], full["minimum"], delta["default"], delta["minimum"]) == (900, 120, 60, 10)
    assert rules(snapshot) == {
        "self.type == 'delta' ? !has(self.isFinal) || self.isFinal == false : true": (
            "isFinal must be false (or omitted) when type is 'delta'"
        )
    }
    assert at(schema, ".status.lastErrors")["maxItems"] == 10
    assert at(schema, ".status.state")["enum"] == ["Pending", "InProgress", "Succeeded", "Failed", "Rejected"]


def test_a9_store_container_pattern_in_schema() -> None:
    stores = [
        at(root("etcds"), ".spec.backup.store"),
        at(root("etcdcopybackupstasks"), ".spec.sourceStore"),
        at(root("etcdcopybackupstasks"), ".spec.targetStore"),
    ]
    for store in stores:
        container = store["properties"]["container"]
        assert (container["pattern"], container["maxLength"]) == (CONTAINER_PATTERN, 63)
        assert CONTAINER_PATTERN == "^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$"
        assert store["required"] == ["prefix"]
        assert rules(store["properties"]["endpointOverride"]) == {
            "isURL(self)": "endpoint override must be a valid URL."
        }


def test_no_defaults_in_the_etcd_crd() -> None:
    for plural in ("etcds", "etcdcopybackupstasks"):
        defaulted = [path for path, node in walk(root(plural)) if "default" in node]
        assert defaulted == [], plural
