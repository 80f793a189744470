"""The StatefulSet as stored and its pods under kwok (checklist D28–D33), and Secret gating: while a referenced
Secret is missing the StatefulSet is neither created nor changed, and the Etcd converges once it appears."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from druid.api import constants as c
from druid.components import configmap
from druid.controllers.etcd.caches import CacheSource
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import CONFIGMAPS, LEASES, PODS, SECRETS, SERVICES, STATEFULSETS, Obj, ObjectKey
from druid.testing.etcds import annotate_reconcile, create_secret, etcd_manifest, get_etcd, tls, wait_for_operation
from druid.testing.operator import Operator
from druid.testing.sidecar import renew_member_leases
from druid.testing.wait import eventually


def pod_spec(sts: Obj) -> dict[str, Any]:
    spec: dict[str, Any] = sts["spec"]["template"]["spec"]
    return spec


def container(sts: Obj, name: str) -> dict[str, Any]:
    return next(x for x in pod_spec(sts)["containers"] if x["name"] == name)


def mounts(sts: Obj, name: str) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container(sts, name).get("volumeMounts") or ()}


def volumes(sts: Obj) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(sts).get("volumes") or ()}


async def test_d28_d29_d30_statefulset_and_running_pods(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "sts"
    await kube.create(ETCDS, etcd_manifest(n, ns, 3, storageCapacity=None))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    sts = await kube.get(STATEFULSETS, n, ns)
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate" and spec["serviceName"] == f"{n}-peer"
    assert spec["selector"] == {"matchLabels": {c.LABEL_MANAGED_BY: "etcd-druid", c.LABEL_PART_OF: n}}
    [vct] = spec["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == n and vct["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert vct["spec"]["resources"]["requests"]["storage"] == "16Gi"

    async def pods_running() -> list[Obj] | None:
        pods = (await kube.list(PODS, ns, label_selector=f"{c.LABEL_PART_OF}={n}"))["items"]
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        return running if len(running) == 3 else None

    pods = await eventually(pods_running, timeout=30, what="3 etcd pods Running under kwok")
    for pod in pods:  # D29
        p = pod["spec"]
        assert [x["name"] for x in p["containers"]] == ["etcd", "backup-restore"]
        assert p["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": [f"{n}-local"]}]
        assert p["shareProcessNamespace"] is True and p["serviceAccountName"] == n
        assert p["securityContext"]["runAsUser"] == 65532 and p["securityContext"]["runAsNonRoot"] is True
        assert pod["metadata"]["labels"]["app"] == n  # spec.labels reach the pods

    # D30: the pod template checksum follows the rendered ConfigMap.
    before = spec["template"]["metadata"]["annotations"][c.ANNOTATION_CONFIGMAP_CHECKSUM]
    config = await kube.get(CONFIGMAPS, f"{n}-config", ns)
    assert before == configmap.checksum(config)
    await annotate_reconcile(kube, ns, n, {"etcd": {"quota": "1Gi"}})
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=2)
    sts = await kube.get(STATEFULSETS, n, ns)
    after = sts["spec"]["template"]["metadata"]["annotations"][c.ANNOTATION_CONFIGMAP_CHECKSUM]
    assert after != before and after == configmap.checksum(await kube.get(CONFIGMAPS, f"{n}-config", ns))


async def test_d31_missing_store_secret_gates_the_statefulset_until_it_appears(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    ns, n = namespace, "local"
    store = {"provider": "Local", "container": "local-bucket", "prefix": n, "secretRef": {"name": "buckets"}}
    await kube.create(ETCDS, etcd_manifest(n, ns, backup={"store": store}))
    etcd = await wait_for_operation(kube, ns, n, c.OPERATION_STATE_ERROR)
    [error] = etcd["status"]["lastErrors"]
    assert error["code"] == "ERR_SYNC_STATEFULSET" and "buckets" in error["description"]
    assert "observedGeneration" not in etcd["status"]
    assert await kube.get_or_none(STATEFULSETS, n, ns) is None
    for res, name in ((CONFIGMAPS, f"{n}-config"), (SERVICES, f"{n}-client"), (LEASES, f"{n}-full-snap")):
        assert await kube.get_or_none(res, name, ns) is not None, f"{res.kind} {name} is synced all the same"

    host_path = base64.b64encode(b"/data/buckets").decode()
    await create_secret(kube, ns, "buckets", {"hostPath": host_path})  # no further action needed
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    sts = await kube.get(STATEFULSETS, n, ns)
    assert volumes(sts)["local-backup"]["hostPath"] == {
        "path": "/data/buckets/local-bucket",
        "type": "DirectoryOrCreate",
    }
    [init] = pod_spec(sts)["initContainers"]
    assert init["name"] == "change-backup-bucket-permissions"
    assert init["command"] == ["chown", "-R", "65532:65532", "/home/nonroot/local-bucket"]
    assert mounts(sts, "backup-restore")["local-backup"] == "/home/nonroot/local-bucket"

    # The host path is read once per version of the Secret (druid caches Secrets by metadata only): a changed
    # hostPath reaches the StatefulSet on the next reconcile, not the remembered one.
    moved = base64.b64encode(b"/data/moved").decode()
    patched = await kube.merge_patch(SECRETS, "buckets", {"data": {"hostPath": moved}}, ns)
    secrets = CacheSource(operator.informers).secrets().store

    async def seen() -> bool:  # like any cached read, a Secret update is known once its watch event arrived
        cached = secrets.get(ObjectKey(ns, "buckets")) or {}
        return cached.get("metadata", {}).get("resourceVersion") == patched["metadata"]["resourceVersion"]

    await eventually(seen, timeout=10, what="the Secret's update seen by the operator")
    await annotate_reconcile(kube, ns, n, {"etcd": {"quota": "1Gi"}})
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=2)
    sts = await kube.get(STATEFULSETS, n, ns)
    assert volumes(sts)["local-backup"]["hostPath"]["path"] == "/data/moved/local-bucket"


async def test_d32_cloud_provider_secret_volume(operator: Operator, kube: Kube, namespace: str) -> None:
    ns = namespace
    await create_secret(kube, ns, "s3-creds", {"accessKeyID": "YQ=="})
    with_ref = {"provider": "aws", "container": "s3-bucket", "prefix": "p", "secretRef": {"name": "s3-creds"}}
    await kube.create(ETCDS, etcd_manifest("s3", ns, backup={"store": with_ref}))
    await kube.create(ETCDS, etcd_manifest("s3-ambient", ns, backup={"store": {**with_ref, "secretRef": None}}))
    await wait_for_operation(kube, ns, "s3", c.OPERATION_STATE_SUCCEEDED, generation=1)
    await wait_for_operation(kube, ns, "s3-ambient", c.OPERATION_STATE_SUCCEEDED, generation=1)
    sts = await kube.get(STATEFULSETS, "s3", ns)
    assert volumes(sts)["etcd-backup-secret"]["secret"] == {"secretName": "s3-creds", "defaultMode": 0o640}
    assert mounts(sts, "backup-restore")["etcd-backup-secret"] == "/var/etcd-backup"
    env = {e["name"]: e.get("value") for e in container(sts, "backup-restore")["env"]}
    assert env["AWS_APPLICATION_CREDENTIALS"] == "/var/etcd-backup" and env["STORAGE_CONTAINER"] == "s3-bucket"
    ambient = await kube.get(STATEFULSETS, "s3-ambient", ns)
    assert "etcd-backup-secret" not in volumes(ambient)


async def test_d33_tls_and_missing_tls_secrets_do_not_change_the_statefulset(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    ns, n = namespace, "tls"
    await kube.create(ETCDS, etcd_manifest(n, ns))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    plain = await kube.get(STATEFULSETS, n, ns)
    assert container(plain, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTP"

    # Turn on client, peer and backup-restore TLS before the Secrets exist: the StatefulSet stays as it is.
    spec = {
        "etcd": {"clientUrlTls": tls("client"), "peerUrlTls": tls("peer", client=False)},
        "backup": {"tls": tls("br")},
    }
    await annotate_reconcile(kube, ns, n, spec)
    secrets = [f"{p}-{k}" for p in ("client", "br") for k in ("ca", "server", "client")] + ["peer-ca", "peer-server"]

    async def gated() -> Obj | None:
        etcd = await get_etcd(kube, ns, n)
        errors = etcd["status"].get("lastErrors") or []
        return etcd if errors and all(s in errors[0]["description"] for s in secrets) else None

    etcd = await eventually(gated, timeout=15, what="lastErrors naming the missing TLS secrets")
    assert etcd["status"]["lastOperation"]["state"] == c.OPERATION_STATE_ERROR
    assert etcd["status"]["observedGeneration"] == 1
    assert (await kube.get(STATEFULSETS, n, ns))["metadata"]["generation"] == plain["metadata"]["generation"]
    config = yaml.safe_load((await kube.get(CONFIGMAPS, f"{n}-config", ns))["data"]["etcd.conf.yaml"])
    assert config["listen-client-urls"] == "https://0.0.0.0:2379"  # the other components are synced

    for name in secrets:
        await create_secret(kube, ns, name)
    # The member restarts with peer TLS and backup-restore reports it on its lease (the fake sidecar here).
    await renew_member_leases(kube, n, ns, replicas=1, tls_enabled=True)
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=2, timeout=45)
    sts = await kube.get(STATEFULSETS, n, ns)
    assert mounts(sts, "etcd") == {
        n: "/var/etcd/data",
        "etcd-ca": "/var/etcd/ssl/ca",
        "etcd-server-tls": "/var/etcd/ssl/server",
        "etcd-client-tls": "/var/etcd/ssl/client",
        "etcd-peer-ca": "/var/etcd/ssl/peer/ca",
        "etcd-peer-server-tls": "/var/etcd/ssl/peer/server",
        "backup-restore-ca": "/var/etcdbr/ssl/ca",
    }
    br = mounts(sts, "backup-restore")
    assert (
        br["backup-restore-server-tls"] == "/var/etcdbr/ssl/server" and br["etcd-client-tls"] == "/var/etcd/ssl/client"
    )
    vols = volumes(sts)
    assert vols["etcd-peer-server-tls"]["secret"]["secretName"] == "peer-server"
    assert vols["backup-restore-client-tls"]["secret"]["secretName"] == "br-client"
    assert container(sts, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert "--backup-restore-tls-enabled=true" in container(sts, "etcd")["args"]
    config = yaml.safe_load((await kube.get(CONFIGMAPS, f"{n}-config", ns))["data"]["etcd.conf.yaml"])
    assert config["client-transport-security"]["trusted-ca-file"] == "/var/etcd/ssl/ca/ca.crt"
    assert config["peer-transport-security"]["cert-file"] == "/var/etcd/ssl/peer/server/tls.crt"
