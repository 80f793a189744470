"""Pure builders of the small components (checklist C18–C24, C26) and the component registry."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes_asyncio import client

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.components import (
    clientservice,
    memberlease,
    pdb,
    peerservice,
    registry,
    role,
    rolebinding,
    serviceaccount,
    snapshotlease,
)
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.runtime.objects import LEASES, PDBS, SERVICES, Obj

OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))
MODULES: list[Any] = [  # the runtime components' modules, in sync order
    serviceaccount,
    role,
    rolebinding,
    memberlease,
    snapshotlease,
    pdb,
    clientservice,
    peerservice,
]
UID = "0b5a2f8e-7f7e-4c1e-9a59-0a2d2d0c4e11"
STORE = {"container": "backups", "prefix": "shoot--dev--main/etcd-main", "provider": "aws"}
DEFAULTS = {"app.kubernetes.io/managed-by": "etcd-druid", "app.kubernetes.io/part-of": "etcd-main"}
OWNER = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "Etcd",
    "name": "etcd-main",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def make_etcd(
    replicas: int = 3,
    *,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Etcd:
    body: dict[str, Any] = {"replicas": replicas, "labels": {"role": "main"}, "etcd": {}, "backup": {}}
    body.update(copy.deepcopy(spec or {}))
    meta: dict[str, Any] = {"name": "etcd-main", "namespace": "shoot--dev", "uid": UID}
    if annotations is not None:
        meta["annotations"] = annotations
    return Etcd.model_validate({"metadata": meta, "spec": body})


def only(objs: list[Obj]) -> Obj:
    assert len(objs) == 1
    return objs[0]


def labels(component: str, name: str) -> dict[str, str]:
    return {**DEFAULTS, "app.kubernetes.io/component": component, "app.kubernetes.io/name": name}


def test_c18_service_account_automount() -> None:
    sa = only(serviceaccount.build(make_etcd(), OPTS))
    assert sa["apiVersion"] == "v1"
    assert sa["kind"] == "ServiceAccount"
    assert sa["metadata"]["name"] == "etcd-main"
    assert sa["metadata"]["namespace"] == "shoot--dev"
    assert sa["metadata"]["labels"] == labels("etcd-service-account", "etcd-main")
    assert sa["automountServiceAccountToken"] is True

    off = BuildOptions(images=OPTS.images, disable_etcd_service_account_automount=True)
    assert only(serviceaccount.build(make_etcd(), off))["automountServiceAccountToken"] is False


def test_c19_role_and_binding() -> None:
    etcd = make_etcd()
    r = only(role.build(etcd, OPTS))
    assert (r["apiVersion"], r["kind"]) == ("rbac.authorization.k8s.io/v1", "Role")
    assert r["metadata"]["name"] == "druid.gardener.cloud:etcd:etcd-main"
    assert r["metadata"]["labels"] == labels("etcd-role", "druid.gardener.cloud-etcd-etcd-main")
    assert r["rules"] == [  # druid: narrowed to the Etcd's own Leases and StatefulSet, the sidecar's verbs only
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "patch", "update"],
            "resourceNames": [
                "etcd-main-0",
                "etcd-main-1",
                "etcd-main-2",
                "etcd-main-delta-snap",
                "etcd-main-full-snap",
            ],
        },
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"], "resourceNames": ["etcd-main"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]
    scaled = only(role.build(make_etcd(replicas=5), OPTS))["rules"][0]["resourceNames"]
    assert scaled[:5] == [f"etcd-main-{i}" for i in range(5)]  # one per member: the Role follows the replicas

    rb = only(rolebinding.build(etcd, OPTS))
    assert (rb["apiVersion"], rb["kind"]) == ("rbac.authorization.k8s.io/v1", "RoleBinding")
    assert rb["metadata"]["name"] == "druid.gardener.cloud:etcd:etcd-main"
    assert rb["metadata"]["labels"] == labels("etcd-role-binding", "druid.gardener.cloud-etcd-etcd-main")
    assert rb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "druid.gardener.cloud:etcd:etcd-main",
    }
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "etcd-main", "namespace": "shoot--dev"}]


def test_c20_member_leases_names_and_labels() -> None:
    leases = memberlease.build(make_etcd(3), OPTS)
    assert [lease["metadata"]["name"] for lease in leases] == ["etcd-main-0", "etcd-main-1", "etcd-main-2"]
    for lease in leases:
        assert (lease["apiVersion"], lease["kind"]) == ("coordination.k8s.io/v1", "Lease")
        assert lease["spec"] == {}
        assert lease["metadata"]["labels"] == labels("etcd-member-lease", lease["metadata"]["name"])
        assert "annotations" not in lease["metadata"]

    prefixed = memberlease.build(make_etcd(2, spec={"memberNamePrefix": "pfx"}), OPTS)
    assert [lease["metadata"]["name"] for lease in prefixed] == ["pfx-etcd-main-0", "pfx-etcd-main-1"]
    assert prefixed[1]["metadata"]["labels"]["app.kubernetes.io/name"] == "pfx-etcd-main-1"

    assert memberlease.build(make_etcd(0), OPTS) == []
    assert memberlease.COMPONENT.selector("etcd-main") == {**DEFAULTS, c.LABEL_COMPONENT: "etcd-member-lease"}
    assert memberlease.COMPONENT.names("etcd-main") == []  # found by labels only


def test_c21_snapshot_leases_only_with_store() -> None:
    assert snapshotlease.build(make_etcd(), OPTS) == []

    leases = snapshotlease.build(make_etcd(spec={"backup": {"store": STORE}}), OPTS)
    assert [lease["metadata"]["name"] for lease in leases] == ["etcd-main-delta-snap", "etcd-main-full-snap"]
    for lease in leases:
        assert (lease["apiVersion"], lease["kind"]) == ("coordination.k8s.io/v1", "Lease")
        assert lease["spec"] == {}
        assert lease["metadata"]["labels"] == labels("etcd-snapshot-lease", lease["metadata"]["name"])

    assert snapshotlease.lease_names(make_etcd()) == ["etcd-main-delta-snap", "etcd-main-full-snap"]
    assert snapshotlease.COMPONENT.selector("etcd-main") == {**DEFAULTS, c.LABEL_COMPONENT: "etcd-snapshot-lease"}
    assert snapshotlease.COMPONENT.names("etcd-main") == snapshotlease.lease_names(make_etcd())


@pytest.mark.parametrize(("replicas", "expected"), [(0, 0), (1, 0), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_c22_pdb_min_available_and_eviction_policy(replicas: int, expected: int) -> None:
    budget = only(pdb.build(make_etcd(replicas), OPTS))
    assert (budget["apiVersion"], budget["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert budget["metadata"]["name"] == "etcd-main"
    assert budget["metadata"]["labels"] == labels("etcd-pdb", "etcd-main")
    assert budget["spec"] == {"minAvailable": expected, "selector": {"matchLabels": DEFAULTS}}

    allowed = make_etcd(replicas, annotations={c.ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION: ""})
    assert only(pdb.build(allowed, OPTS))["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    other = make_etcd(replicas, annotations={"foo": "bar"})
    assert "unhealthyPodEvictionPolicy" not in only(pdb.build(other, OPTS))["spec"]


def test_c23_client_service_ports_selector_and_overrides() -> None:
    svc = only(clientservice.build(make_etcd(), OPTS))
    assert (svc["apiVersion"], svc["kind"]) == ("v1", "Service")
    assert svc["metadata"]["name"] == "etcd-main-client"
    assert svc["metadata"]["labels"] == labels("etcd-client-service", "etcd-main-client")
    assert svc["metadata"]["annotations"] == {}
    assert svc["spec"] == {
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "selector": {**DEFAULTS, "app.kubernetes.io/component": "etcd-statefulset"},
        "ports": [
            {"name": "client", "protocol": "TCP", "port": 2379, "targetPort": 2379},
            {"name": "server", "protocol": "TCP", "port": 2380, "targetPort": 2380},
            {"name": "backuprestore", "protocol": "TCP", "port": 8080, "targetPort": 8080},
        ],
    }

    custom = make_etcd(
        spec={
            "etcd": {
                "clientPort": 3379,
                "serverPort": 3380,
                "clientService": {
                    "labels": {
                        "networking.gardener.cloud/to-etcd": "allowed",
                        "app.kubernetes.io/name": "custom",
                        "app.kubernetes.io/managed-by": "not-druid",
                    },
                    "annotations": {"networking.resources.gardener.cloud/from-all": "true"},
                    "trafficDistribution": "PreferClose",
                },
            },
            "backup": {"port": 9090},
        }
    )
    svc = only(clientservice.build(custom, OPTS))
    # druid's own labels win over clientService labels with the same key (etcd-druid lets the user's win)
    assert svc["metadata"]["labels"] == {
        **labels("etcd-client-service", "etcd-main-client"),
        "networking.gardener.cloud/to-etcd": "allowed",
    }
    assert svc["metadata"]["annotations"] == {"networking.resources.gardener.cloud/from-all": "true"}
    assert svc["spec"]["trafficDistribution"] == "PreferClose"
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("client", 3379, 3379),
        ("server", 3380, 3380),
        ("backuprestore", 9090, 9090),
    ]


def test_c23_client_service_does_not_alias_spec() -> None:
    etcd = make_etcd(spec={"etcd": {"clientService": {"labels": {"a": "b"}, "annotations": {"x": "y"}}}})
    svc = only(clientservice.build(etcd, OPTS))
    svc["metadata"]["annotations"]["z"] = "w"
    assert etcd.spec.etcd.client_service is not None
    assert etcd.spec.etcd.client_service.annotations == {"x": "y"}


def test_c24_peer_service_headless() -> None:
    svc = only(peerservice.build(make_etcd(spec={"etcd": {"serverPort": 3380}}), OPTS))
    assert (svc["apiVersion"], svc["kind"]) == ("v1", "Service")
    assert svc["metadata"]["name"] == "etcd-main-peer"
    assert svc["metadata"]["labels"] == labels("etcd-peer-service", "etcd-main-peer")
    assert "annotations" not in svc["metadata"]
    assert svc["spec"] == {
        "type": "ClusterIP",
        "clusterIP": "None",
        "sessionAffinity": "None",
        "selector": {**DEFAULTS, "app.kubernetes.io/component": "etcd-statefulset"},
        "publishNotReadyAddresses": True,
        "ports": [{"name": "peer", "protocol": "TCP", "port": 3380, "targetPort": 3380}],
    }
    assert only(peerservice.build(make_etcd(), OPTS))["spec"]["ports"][0]["port"] == 2380


def all_objects() -> list[tuple[registry.Component, Obj]]:
    etcd = make_etcd(
        5,
        spec={
            "memberNamePrefix": "pfx",
            "backup": {"store": STORE},
            "etcd": {"clientService": {"labels": {"x": "y"}, "trafficDistribution": "PreferSameZone"}},
        },
        annotations={c.ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION: "true"},
    )
    return [(module, o) for module in MODULES for o in module.build(etcd, OPTS)]


def test_c26_labels_and_owner_reference_on_every_object() -> None:
    objs = all_objects()
    assert len(objs) == 1 + 1 + 1 + 5 + 2 + 1 + 1 + 1
    for module, o in objs:
        meta = o["metadata"]
        assert meta["namespace"] == "shoot--dev"
        assert meta["ownerReferences"] == [OWNER]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "etcd-druid"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "etcd-main"
        assert meta["labels"]["app.kubernetes.io/component"] == module.COMPONENT_LABEL
        assert meta["labels"]["app.kubernetes.io/name"] == meta["name"].replace(":", "-")
        assert o["apiVersion"] == module.RESOURCE.api_version
        assert o["kind"] == module.RESOURCE.kind


def test_builders_are_pure_and_fresh() -> None:
    etcd = make_etcd(spec={"backup": {"store": STORE}})
    before = etcd.model_dump()
    for module in MODULES:
        first = module.build(etcd, OPTS)
        assert first == module.build(etcd, OPTS)
        for o in first:  # mutating a result must not leak into the next build
            o["metadata"]["labels"]["mutated"] = "yes"
        assert all("mutated" not in o["metadata"]["labels"] for o in module.build(etcd, OPTS))
    assert etcd.model_dump() == before


MODEL_TYPES = {
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "Lease": "V1Lease",
    "PodDisruptionBudget": "V1PodDisruptionBudget",
    "Service": "V1Service",
}


async def test_objects_round_trip_through_kubernetes_models() -> None:
    """Every field is a known field of the real type with the right shape: deserialize and serialize back."""
    async with client.ApiClient() as api:
        for _, o in all_objects():
            model = api._ApiClient__deserialize(copy.deepcopy(o), MODEL_TYPES[o["kind"]])
            assert api.sanitize_for_serialization(model) == o


def test_registry_order_and_interface() -> None:
    assert registry.SYNC_ORDER == (
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "MemberLease",
        "SnapshotLease",
        "PodDisruptionBudget",
        "ClientService",
        "PeerService",
        "ConfigMap",
        "StatefulSet",
    )
    assert registry.components(registry.RUNTIME_KINDS) == [m.COMPONENT for m in MODULES]
    assert registry.runtime_components() == [m.COMPONENT for m in MODULES]
    for name in ("SERVICE_ACCOUNT", "ROLE", "ROLE_BINDING", "MEMBER_LEASE", "SNAPSHOT_LEASE"):
        assert getattr(registry, name) in registry.SYNC_ORDER
    for name in ("POD_DISRUPTION_BUDGET", "CLIENT_SERVICE", "PEER_SERVICE", "CONFIG_MAP", "STATEFUL_SET"):
        assert getattr(registry, name) in registry.SYNC_ORDER
    for module in MODULES:
        comp = module.COMPONENT
        assert registry.component(module.KIND) is comp
        assert (comp.kind, comp.resource, comp.component_label, comp.error_codes) == (
            module.KIND,
            module.RESOURCE,
            module.COMPONENT_LABEL,
            module.ERROR_CODES,
        )
        assert isinstance(module.ERROR_CODES, registry.ErrorCodes)
        get, sync, delete = module.ERROR_CODES
        assert get.startswith(("ERR_GET_", "ERR_LIST_"))
        assert sync.startswith("ERR_SYNC_")
        assert delete.startswith("ERR_DELETE_")
        assert get.split("_", 2)[2] == sync.split("_", 2)[2] == delete.split("_", 2)[2]
    assert clientservice.ERROR_CODES.sync == "ERR_SYNC_CLIENT_SERVICE"
    assert memberlease.ERROR_CODES.get == "ERR_LIST_MEMBER_LEASE"
    assert pdb.ERROR_CODES.delete == "ERR_DELETE_POD_DISRUPTION_BUDGET"


def test_registry_sync_and_cleanup_kinds() -> None:
    assert registry.sync_kinds(make_etcd()) == registry.SYNC_ORDER
    assert registry.cleanup_kinds(make_etcd()) == ()
    off = make_etcd(annotations={c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""})
    assert registry.sync_kinds(off) == ("ConfigMap", "StatefulSet")
    assert registry.cleanup_kinds(off) == registry.RUNTIME_KINDS


def test_components_declare_their_behaviour() -> None:
    etcd = make_etcd(3, spec={"backup": {"store": STORE}})
    desired = registry.desired_objects(etcd, OPTS)
    for comp in registry.COMPONENTS:
        if comp.selector("etcd-main") is None:  # found by name: every built object is found by its name
            assert [o["metadata"]["name"] for o in desired[comp.kind]] == comp.names("etcd-main")
    concurrent = [comp.kind for comp in registry.COMPONENTS if comp.concurrent]
    assert concurrent == ["MemberLease", "SnapshotLease"]
    assert [comp.kind for comp in registry.COMPONENTS if comp.delete_when_not_desired] == ["SnapshotLease"]
    stale = {comp.kind: comp.stale_spec_fields for comp in registry.COMPONENTS if comp.stale_spec_fields}
    assert stale == {"PodDisruptionBudget": ("unhealthyPodEvictionPolicy",), "ClientService": ("trafficDistribution",)}
    for comp in registry.COMPONENTS:  # Leases leave the spec to backup-restore; everything else is applied whole
        for o in desired[comp.kind]:
            applied = comp.applied(o)
            assert applied == ({k: v for k, v in o.items() if k != "spec"} if comp.resource == LEASES else o)


def test_managed_resources_derive_from_the_registry() -> None:
    resources = registry.managed_resources()
    assert len(resources) == len(set(resources)) == 8
    assert {comp.resource for comp in registry.COMPONENTS} == set(resources)
    runtime = registry.runtime_resources()
    assert {LEASES, PDBS, SERVICES} <= set(runtime) and set(runtime) < set(resources)
    assert {r.kind for r in resources} - {r.kind for r in runtime} == {"ConfigMap", "StatefulSet"}


def test_desired_objects_reports_the_component_that_cannot_build() -> None:
    etcd = make_etcd(spec={"backup": {"store": {**STORE, "provider": "nope"}}})
    with pytest.raises(registry.InvalidSpec) as err:
        registry.desired_objects(etcd, OPTS)
    assert err.value.kind == "StatefulSet" and isinstance(err.value.error, ValueError)
    assert str(err.value) == str(err.value.error)
