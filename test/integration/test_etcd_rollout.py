"""StatefulSet roll-outs that make the reconcile wait (checklist D34, D35, D36, B17) under kwok."""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.api import names
from druid.controllers.etcd.caches import CacheSource
from druid.controllers.etcd.operation import ETCDS
from druid.controllers.etcd.statefulset import ETCD_OPS_TASKS
from druid.runtime import patch
from druid.runtime.client import Kube
from druid.runtime.informer import FuncHandler, InformerFactory
from druid.runtime.objects import PODS, STATEFULSETS, Obj, ObjectKey
from druid.testing.etcds import (
    annotate_reconcile,
    create_secret,
    etcd_manifest,
    get_etcd,
    last_operation,
    tls,
    wait_for_operation,
)
from druid.testing.operator import FAST_REFLECTOR, Operator
from druid.testing.sidecar import renew_member_leases
from druid.testing.wait import eventually


async def ready_replicas(kube: Kube, ns: str, name: str, n: int) -> None:
    async def ready() -> bool:
        sts = await kube.get_or_none(STATEFULSETS, name, ns)
        return sts is not None and (sts.get("status") or {}).get("readyReplicas") == n

    await eventually(ready, timeout=30, what=f"StatefulSet {ns}/{name} with {n} ready replicas")


async def set_pod_ready(kube: Kube, ns: str, pod: str, ready: bool) -> None:
    """What a kubelet would report (kwok leaves Running pods alone)."""
    status = "True" if ready else "False"
    conditions = [{"type": t, "status": status} for t in ("Ready", "ContainersReady")]
    await kube.request(
        "PATCH",
        PODS.path(ns, pod, "status"),
        body={"status": {"conditions": conditions}},
        content_type=patch.STRATEGIC,
    )


def peer_mounts(sts: Obj) -> list[str]:
    etcd = next(x for x in sts["spec"]["template"]["spec"]["containers"] if x["name"] == "etcd")
    return [m["name"] for m in etcd.get("volumeMounts") or () if m["name"].startswith("etcd-peer")]


async def test_d34_b17_peer_tls_rollout_waits_for_members_and_leases(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    ns, n = namespace, "peer"
    await kube.create(ETCDS, etcd_manifest(n, ns, 3))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    await ready_replicas(kube, ns, n, 3)
    await set_pod_ready(kube, ns, f"{n}-1", False)
    await ready_replicas(kube, ns, n, 2)
    for name in ("peer-ca", "peer-server"):
        await create_secret(kube, ns, name)

    # Some but not all members ready: enabling peer TLS waits without touching the StatefulSet (B17: Requeue).
    before = await kube.get(STATEFULSETS, n, ns)
    await annotate_reconcile(kube, ns, n, {"etcd": {"peerUrlTls": tls("peer", client=False)}})
    etcd = await wait_for_operation(kube, ns, n, c.OPERATION_STATE_REQUEUE)
    op = last_operation(etcd)
    assert op["description"] == "retrying sync of component StatefulSet after 1s Operation will be retried."
    assert "lastErrors" not in etcd["status"] and etcd["status"]["observedGeneration"] == 1
    sts = await kube.get(STATEFULSETS, n, ns)
    assert sts["metadata"]["generation"] == before["metadata"]["generation"] and not peer_mounts(sts)

    # All members ready again: the StatefulSet is patched with its current replicas ...
    await set_pod_ready(kube, ns, f"{n}-1", True)

    async def patched() -> Obj | None:
        sts = await kube.get(STATEFULSETS, n, ns)
        return sts if peer_mounts(sts) else None

    sts = await eventually(patched, timeout=20, what="peer TLS mounts on the StatefulSet")
    assert sts["spec"]["replicas"] == 3
    # ... and the reconcile keeps waiting until every member lease says tls-enabled=true.
    await operator.wait_reconciles(3)
    etcd = await get_etcd(kube, ns, n)
    assert last_operation(etcd)["state"] == c.OPERATION_STATE_REQUEUE
    assert etcd["status"]["observedGeneration"] == 1
    assert etcd["metadata"]["annotations"][c.ANNOTATION_OPERATION] == "reconcile"
    await renew_member_leases(kube, n, ns, replicas=3, tls_enabled=True, ordinals=[0, 1])
    await operator.wait_reconciles(3)
    assert last_operation(await get_etcd(kube, ns, n))["state"] == c.OPERATION_STATE_REQUEUE
    await renew_member_leases(kube, n, ns, replicas=3, tls_enabled=True)
    etcd = await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=2)
    assert c.ANNOTATION_OPERATION not in (etcd["metadata"].get("annotations") or {})


async def test_d35_selector_change_orphan_deletes_and_recreates(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "legacy"
    # An Etcd whose StatefulSet still has an old selector (as etcd-druid <= v0.22 made them). Suspended while
    # the old StatefulSet is set up, so druid does not create its own first.
    suspended = {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: ""}
    etcd = await kube.create(ETCDS, etcd_manifest(n, ns, 1, annotations=suspended))
    labels = {**names.default_labels(n), "instance": n}
    old: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": n,
            "namespace": ns,
            "labels": names.default_labels(n),
            "ownerReferences": [names.owner_reference(n, etcd["metadata"]["uid"])],
        },
        "spec": {
            "replicas": 1,
            "serviceName": f"{n}-peer",
            "selector": {"matchLabels": {"instance": n, c.LABEL_PART_OF: n}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "etcd", "image": "registry.local/etcd:old"}]},
            },
        },
    }
    old_sts = await kube.create(STATEFULSETS, old)
    await ready_replicas(kube, ns, n, 1)
    pod = await kube.get(PODS, f"{n}-0", ns)

    seen: list[tuple[str, Any]] = []  # (uid, matchLabels) of every StatefulSet version observed
    factory = InformerFactory(kube, config=FAST_REFLECTOR)
    informer = factory.get(STATEFULSETS, namespace=ns)

    def record(obj: Obj, *_: Any) -> None:
        if isinstance(obj, dict):
            seen.append((obj["metadata"]["uid"], obj["spec"]["selector"]["matchLabels"]))

    informer.add_handler(FuncHandler(add=record, update=lambda _, new: record(new)))
    factory.start_all()
    try:
        await kube.merge_patch(ETCDS, n, {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: None}}}, ns)
        await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    finally:
        await factory.stop_all()
    sts = await kube.get(STATEFULSETS, n, ns)
    assert sts["metadata"]["uid"] != old_sts["metadata"]["uid"]
    assert sts["spec"]["selector"]["matchLabels"] == names.default_labels(n)
    assert (old_sts["metadata"]["uid"], old["spec"]["selector"]["matchLabels"]) in seen

    async def adopted() -> bool:  # the orphaned pod is kept and adopted (then rolled to the new template)
        current = await kube.get(PODS, f"{n}-0", ns)
        owner = current["metadata"].get("ownerReferences") or [{}]
        return bool(owner[0].get("uid") == sts["metadata"]["uid"])

    await eventually(adopted, timeout=30, what="pod adopted by the new StatefulSet")
    assert pod["metadata"]["uid"]  # the pod existed before druid touched the StatefulSet


async def test_d35_orphan_pods_recreate_with_member_count(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "adopt"
    await kube.create(ETCDS, etcd_manifest(n, ns, 3))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    await ready_replicas(kube, ns, n, 3)
    await renew_member_leases(kube, n, ns, replicas=3, ordinals=[0, 1])  # two members known in status

    async def two_members() -> bool:
        return len((await get_etcd(kube, ns, n))["status"].get("members") or ()) == 2

    await eventually(two_members, timeout=15, what="two members in status")

    replicas_seen: list[int] = []
    factory = InformerFactory(kube, config=FAST_REFLECTOR)
    informer = factory.get(STATEFULSETS, namespace=ns)
    informer.add_handler(
        FuncHandler(
            add=lambda o: replicas_seen.append(o["spec"]["replicas"]),
            update=lambda _, o: replicas_seen.append(o["spec"]["replicas"]),
        )
    )
    factory.start_all()
    try:
        await informer.wait_for_sync(10)
        old = await kube.get(STATEFULSETS, n, ns)
        await kube.delete(STATEFULSETS, n, ns, propagation="Orphan")
        cache = CacheSource(operator.informers).informer(STATEFULSETS).store

        async def gone_from_cache() -> bool:  # as after a real orphan deletion, druid's cache knows
            return cache.get(ObjectKey(ns, n)) is None

        await eventually(gone_from_cache, timeout=10, what="deletion seen by the operator")
        await annotate_reconcile(kube, ns, n)

        async def recreated() -> Obj | None:
            sts = await kube.get_or_none(STATEFULSETS, n, ns)
            if sts is None or sts["metadata"]["uid"] == old["metadata"]["uid"] or sts["spec"]["replicas"] != 3:
                return None
            annotations = (await get_etcd(kube, ns, n))["metadata"].get("annotations") or {}
            return None if c.ANNOTATION_OPERATION in annotations else sts

        await eventually(recreated, timeout=30, what="StatefulSet re-created and scaled back to 3")
    finally:
        await factory.stop_all()
    assert 2 in replicas_seen, f"re-created with len(status.members) replicas first; saw {replicas_seen}"
    assert replicas_seen[-1] == 3


async def test_d36_hibernation_waits_for_a_presync_snapshot(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "sleepy"
    store = {"provider": "Local", "container": "sleepy-bucket", "prefix": n}
    await kube.create(ETCDS, etcd_manifest(n, ns, 1, backup={"store": store}))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    await annotate_reconcile(kube, ns, n, {"replicas": 0})

    async def task_created() -> Obj | None:
        return await kube.get_or_none(ETCD_OPS_TASKS, "presync-snapshot-hibernation-0", ns)

    task = await eventually(task_created, timeout=15, what="pre-sync snapshot EtcdOpsTask")
    assert task["spec"]["etcdName"] == n and task["spec"]["config"]["onDemandSnapshot"]["type"] == "full"
    assert task["metadata"]["ownerReferences"][0]["name"] == n
    etcd = await wait_for_operation(kube, ns, n, c.OPERATION_STATE_REQUEUE)
    assert last_operation(etcd)["description"].startswith("requeueing pre-sync of component StatefulSet")
    assert (await kube.get(STATEFULSETS, n, ns))["spec"]["replicas"] == 1, "not scaled down before the snapshot"

    status = {"status": {"state": c.TASK_SUCCEEDED}}
    await kube.merge_patch(ETCD_OPS_TASKS, "presync-snapshot-hibernation-0", status, ns, subresource="status")
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=2)
    assert (await kube.get(STATEFULSETS, n, ns))["spec"]["replicas"] == 0
