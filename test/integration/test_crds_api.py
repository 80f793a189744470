"""Checklist items A1–A5: the CRDs behave on a real kube-apiserver as upstream's do."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from druid.runtime import patch

GROUP, VERSION = "druid.gardener.cloud", "v1alpha1"


def etcd(name: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Etcd",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "labels": {"app": "etcd-statefulset"},
            "etcd": {},
            "backup": {},
        },
    }
    body["spec"].update(spec)
    return body


class Etcds:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.co = client.CustomObjectsApi(api)
        self.ns = namespace

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.co.create_namespaced_custom_object(GROUP, VERSION, self.ns, "etcds", body)  # type: ignore[no-any-return]

    async def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.co.patch_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.ns, "etcds", name, body, **patch.merge()
        )

    async def rejected(self, name: str, body: dict[str, Any]) -> str:
        """Apply a patch that must be refused (422 Invalid); return the API server's message."""
        with pytest.raises(ApiException) as info:
            await self.patch(name, body)
        assert info.value.status == 422, info.value.body
        return str(info.value.body)


@pytest.fixture
def etcds(api: client.ApiClient, namespace: str, crds: list[str]) -> Etcds:
    return Etcds(api, namespace)


async def test_a1_kinds_names_and_printer_columns(api: client.ApiClient, crds: list[str]) -> None:
    ext = client.ApiextensionsV1Api(api)
    got = {c.spec.names.kind: c for c in (await ext.list_custom_resource_definition()).items if c.spec.group == GROUP}
    assert set(got) == {"Etcd", "EtcdCopyBackupsTask", "EtcdOpsTask"}
    assert got["EtcdOpsTask"].spec.names.short_names == ["eot"]
    assert not got["Etcd"].spec.names.short_names
    assert {c.spec.scope for c in got.values()} == {"Namespaced"}
    columns = {c.name: (c.json_path, c.priority or 0) for c in got["Etcd"].spec.versions[0].additional_printer_columns}
    assert columns["Ready"] == (".status.ready", 0)
    assert columns["Quorate"] == ('.status.conditions[?(@.type=="Ready")].status', 0)
    assert columns["All Members Ready"][0] == '.status.conditions[?(@.type=="AllMembersReady")].status'
    assert columns["Backup Ready"][0] == '.status.conditions[?(@.type=="BackupReady")].status'
    assert columns["Cluster ID Mismatch"][0] == '.status.conditions[?(@.type=="ClusterIDMismatch")].status'
    assert columns["Cluster Size"] == (".spec.replicas", 1)
    assert columns["Current Replicas"] == (".status.currentReplicas", 1)
    assert columns["Ready Replicas"] == (".status.readyReplicas", 1)
    assert "Age" in columns
    ops = {c.name: c.json_path for c in got["EtcdOpsTask"].spec.versions[0].additional_printer_columns}
    assert ops["State"] == ".status.state" and ops["Etcd"] == ".spec.etcdName"


async def test_a1_table_view_served_by_the_api_server(api: client.ApiClient, etcds: Etcds) -> None:
    """What `kubectl get etcd` shows: the server renders the printer columns as a Table."""
    await etcds.create(etcd("tbl"))
    resp = await api.call_api(
        f"/apis/{GROUP}/{VERSION}/namespaces/{etcds.ns}/etcds",
        "GET",
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        response_types_map={200: "object"},
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
    )
    names = [c["name"] for c in resp["columnDefinitions"]]
    assert names[:7] == ["Name", "Ready", "Quorate", "All Members Ready", "Backup Ready", "Cluster ID Mismatch", "Age"]
    assert resp["rows"][0]["cells"][0] == "tbl"


SELECTOR = "app.kubernetes.io/managed-by=etcd-druid,app.kubernetes.io/part-of=scaled"


async def test_a2_scale_subresource(etcds: Etcds) -> None:
    await etcds.create(etcd("scaled", replicas=3))
    await etcds.co.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        etcds.ns,
        "etcds",
        "scaled",
        {
            "status": {
                "replicas": 3,
                "selector": "app.kubernetes.io/managed-by=etcd-druid,app.kubernetes.io/part-of=scaled",
            }
        },
        **patch.merge(),
    )
    await etcds.co.patch_namespaced_custom_object_scale(
        GROUP, VERSION, etcds.ns, "etcds", "scaled", {"spec": {"replicas": 5}}, **patch.merge()
    )
    obj = await etcds.co.get_namespaced_custom_object(GROUP, VERSION, etcds.ns, "etcds", "scaled")
    assert obj["spec"]["replicas"] == 5
    scale = await etcds.co.get_namespaced_custom_object_scale(GROUP, VERSION, etcds.ns, "etcds", "scaled")
    assert scale["spec"]["replicas"] == 5
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == SELECTOR


async def test_a3_replicas_only_grow_or_go_to_zero(etcds: Etcds) -> None:
    await etcds.create(etcd("r", replicas=3))
    msg = await etcds.rejected("r", {"spec": {"replicas": 1}})
    assert "Replicas can either be increased or be downscaled to 0" in msg
    assert (await etcds.patch("r", {"spec": {"replicas": 5}}))["spec"]["replicas"] == 5
    assert (await etcds.patch("r", {"spec": {"replicas": 0}}))["spec"]["replicas"] == 0
    await etcds.create(etcd("r2", replicas=3))
    assert (await etcds.patch("r2", {"spec": {"replicas": 0}}))["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [("storageClass", "fast", "slow"), ("volumeClaimTemplate", "data", "other"), ("memberNamePrefix", "pre", "post")],
)
async def test_a4_immutable_fields(etcds: Etcds, field: str, value: str, other: str) -> None:
    name = f"imm-{field.lower()}"
    await etcds.create(etcd(name, **{field: value}))
    await etcds.rejected(name, {"spec": {field: other}})  # change
    await etcds.rejected(name, {"spec": {field: None}})  # removal
    await etcds.create(etcd(f"{name}-unset"))
    await etcds.rejected(f"{name}-unset", {"spec": {field: value}})  # addition after creation


async def test_a5_delta_period_must_be_below_gc_period(etcds: Etcds) -> None:
    bad = etcd("gc", backup={"deltaSnapshotPeriod": "10m", "garbageCollectionPeriod": "5m"})
    with pytest.raises(ApiException) as info:
        await etcds.create(copy.deepcopy(bad))
    assert info.value.status == 422
    good = etcd("gc", backup={"deltaSnapshotPeriod": "5m", "garbageCollectionPeriod": "10m"})
    created = await etcds.create(good)
    assert created["spec"]["backup"]["deltaSnapshotPeriod"] == "5m"
    await etcds.rejected("gc", {"spec": {"backup": {"deltaSnapshotPeriod": "1h"}}})
