"""Checklist items A6–A9: CEL and pattern validations of the CRDs, shown by real API requests."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from druid.runtime import patch

GROUP, VERSION = "druid.gardener.cloud", "v1alpha1"
PEER_TLS = {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "peer"}}


def etcd(name: str, replicas: int = 3, etcd_spec: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Etcd",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "labels": {"a": "b"}, "etcd": etcd_spec or {}, "backup": {}, **spec},
    }


class Api:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.co = client.CustomObjectsApi(api)
        self.ns = namespace

    async def create(self, plural: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.co.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body, **kw)  # type: ignore[no-any-return]

    async def refused_create(self, plural: str, body: dict[str, Any], **kw: Any) -> str:
        with pytest.raises(ApiException) as info:
            await self.create(plural, body, **kw)
        assert info.value.status == 422, info.value.body
        return str(info.value.body)

    async def patch(self, plural: str, name: str, body: dict[str, Any], status: bool = False) -> dict[str, Any]:
        fn = self.co.patch_namespaced_custom_object_status if status else self.co.patch_namespaced_custom_object
        return await fn(GROUP, VERSION, self.ns, plural, name, body, **patch.merge())  # type: ignore[no-any-return]

    async def refused_patch(self, plural: str, name: str, body: dict[str, Any]) -> str:
        with pytest.raises(ApiException) as info:
            await self.patch(plural, name, body)
        assert info.value.status == 422, info.value.body
        return str(info.value.body)


@pytest.fixture
def crs(api: client.ApiClient, namespace: str, crds: list[str]) -> Api:
    return Api(api, namespace)


def peer_urls(member: str, *urls: str) -> dict[str, Any]:
    return {"memberName": member, "urls": list(urls)}


async def test_a6_additional_advertise_peer_urls(crs: Api) -> None:
    ok = etcd("apu", etcd_spec={"additionalAdvertisePeerURLs": [peer_urls("apu-2", "http://10.0.0.2:2380")]})
    assert (await crs.create("etcds", ok))["spec"]["etcd"]["additionalAdvertisePeerURLs"][0]["memberName"] == "apu-2"
    cases = {
        "foreign member name": [peer_urls("other-0", "http://10.0.0.1:2380")],
        "index >= replicas": [peer_urls("apu-3", "http://10.0.0.1:2380")],
        "more than 5 urls": [peer_urls("apu-0", *(f"http://10.0.0.{i}:2380" for i in range(6)))],
        "more than 10 entries": [peer_urls("apu-0", f"http://10.0.1.{i}:2380") for i in range(11)],
        "https without peer TLS": [peer_urls("apu-0", "https://10.0.0.1:2380")],
        "not a URL": [peer_urls("apu-0", "10.0.0.1:2380")],
    }
    for case, entries in cases.items():
        body = etcd("apu-bad", etcd_spec={"additionalAdvertisePeerURLs": entries})
        msg = await crs.refused_create("etcds", body)
        assert "additionalAdvertisePeerURLs" in msg, (case, msg)
    with_tls = {"peerUrlTls": PEER_TLS, "additionalAdvertisePeerURLs": [peer_urls("apu-0", "http://10.0.0.1:2380")]}
    await crs.refused_create("etcds", etcd("apu-bad", etcd_spec=with_tls))  # http with peer TLS


BOOTSTRAP = {
    "members": [{"name": "src-0", "peerUrls": ["http://10.1.0.1:2380"]}],
    "clientEndpoints": ["http://10.1.0.1:2379"],
}


async def test_a7_bootstrap_with_existing_cluster(crs: Api) -> None:
    await crs.create("etcds", etcd("late"))
    await crs.refused_patch("etcds", "late", {"spec": {"etcd": {"bootstrapWithExistingCluster": BOOTSTRAP}}})
    dup = {**BOOTSTRAP, "members": BOOTSTRAP["members"] * 2}
    await crs.refused_create("etcds", etcd("dup", etcd_spec={"bootstrapWithExistingCluster": dup}))
    colliding = {**BOOTSTRAP, "members": [{"name": "boot-1", "peerUrls": ["http://10.1.0.1:2380"]}]}
    await crs.refused_create("etcds", etcd("boot", etcd_spec={"bootstrapWithExistingCluster": colliding}))
    await crs.create("etcds", etcd("boot", etcd_spec={"bootstrapWithExistingCluster": BOOTSTRAP}))
    # Editable before the bootstrap starts; frozen while BootstrappedWithExistingCluster is False.
    moved = {"clientEndpoints": ["http://10.1.0.9:2379"]}
    await crs.patch("etcds", "boot", {"spec": {"etcd": {"bootstrapWithExistingCluster": moved}}})
    condition = {
        "type": "BootstrappedWithExistingCluster",
        "status": "False",
        "reason": "BootstrapInProgress",
        "message": "Not all members have joined the cluster yet",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "lastUpdateTime": "2026-01-01T00:00:00Z",
    }
    await crs.patch("etcds", "boot", {"status": {"conditions": [condition]}}, status=True)
    frozen = {"members": [{"name": "src-0", "peerUrls": ["http://10.1.0.2:2380"]}]}
    await crs.refused_patch("etcds", "boot", {"spec": {"etcd": {"bootstrapWithExistingCluster": frozen}}})


def ops_task(name: str, config: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EtcdOpsTask",
        "metadata": {"name": name},
        "spec": {"config": config, **spec},
    }


async def test_a8_etcd_ops_task_validation_and_defaults(crs: Api) -> None:
    created = await crs.create("etcdopstasks", ops_task("t", {"onDemandSnapshot": {"type": "full"}}, etcdName="e"))
    assert created["spec"]["ttlSecondsAfterFinished"] == 3600
    snap = created["spec"]["config"]["onDemandSnapshot"]
    assert (snap["timeoutSecondsFull"], snap["timeoutSecondsDelta"]) == (900, 60)
    await crs.refused_create("etcdopstasks", ops_task("empty", {}))
    # A second member is not part of the union: strict field validation (kubectl's default) refuses it.
    two = {"onDemandSnapshot": {"type": "full"}, "somethingElse": {}}
    with pytest.raises(ApiException) as info:
        await crs.create("etcdopstasks", ops_task("two", two), field_validation="Strict")
    assert info.value.status in (400, 422) and "somethingElse" in str(info.value.body)
    await crs.refused_create(
        "etcdopstasks", ops_task("final-delta", {"onDemandSnapshot": {"type": "delta", "isFinal": True}})
    )
    await crs.refused_create(
        "etcdopstasks", ops_task("short", {"onDemandSnapshot": {"type": "full", "timeoutSecondsFull": 60}})
    )
    for change in (
        {"config": {"onDemandSnapshot": {"type": "delta"}}},
        {"etcdName": "other"},
        {"ttlSecondsAfterFinished": 10},
    ):
        await crs.refused_patch("etcdopstasks", "t", {"spec": change})


def store(container: str) -> dict[str, Any]:
    return {"provider": "S3", "prefix": "p", "container": container}


async def test_a9_store_container_pattern(crs: Api) -> None:
    for bad in ("-bucket", "b", "bucket_!", "x" * 64):
        await crs.refused_create("etcds", etcd("st", backup={"store": store(bad)}))
        task = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EtcdCopyBackupsTask",
            "metadata": {"name": "copy"},
            "spec": {"sourceStore": store(bad), "targetStore": store("target-bucket")},
        }
        await crs.refused_create("etcdcopybackupstasks", task)
    assert (await crs.create("etcds", etcd("st", backup={"store": store("my.bucket-1")})))["metadata"]["name"] == "st"
