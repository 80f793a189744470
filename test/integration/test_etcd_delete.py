"""Deleting an Etcd (checklist F47, F48): Delete/Processing, every component deleted (PVCs kept), the finalizer
removed only once nothing is left, also while spec reconciliation is suspended."""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.controllers.etcd.delete import WAITING
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.informer import FuncHandler, InformerFactory
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    PDBS,
    PVCS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.etcds import etcd_manifest, get_etcd, last_operation, wait_for_operation
from druid.testing.operator import FAST_REFLECTOR, Operator
from druid.testing.wait import eventually

HOLD = "test.druid/hold"


def components(n: str) -> list[tuple[ResourceRef, str]]:
    return [
        (SERVICEACCOUNTS, n),
        (ROLES, f"druid.gardener.cloud:etcd:{n}"),
        (ROLEBINDINGS, f"druid.gardener.cloud:etcd:{n}"),
        (LEASES, f"{n}-0"),
        (LEASES, f"{n}-full-snap"),
        (LEASES, f"{n}-delta-snap"),
        (PDBS, n),
        (SERVICES, f"{n}-client"),
        (SERVICES, f"{n}-peer"),
        (CONFIGMAPS, f"{n}-config"),
        (STATEFULSETS, n),
    ]


async def remaining(kube: Kube, ns: str, n: str) -> list[str]:
    return [f"{res.kind}/{name}" for res, name in components(n) if await kube.get_or_none(res, name, ns) is not None]


async def test_f47_delete_waits_for_cleanup_then_removes_finalizer(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    ns, n = namespace, "gone"
    store = {"provider": "Local", "container": "gone-bucket", "prefix": n}
    await kube.create(ETCDS, etcd_manifest(n, ns, backup={"store": store}))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)

    async def pvc_bound() -> bool:
        pvc = await kube.get_or_none(PVCS, f"{n}-{n}-0", ns)
        return pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"

    await eventually(pvc_bound, timeout=30, what="data PVC bound")
    # Someone else's finalizer keeps the ConfigMap around for a while.
    await kube.merge_patch(CONFIGMAPS, f"{n}-config", {"metadata": {"finalizers": [HOLD]}}, ns)

    operations: list[tuple[str, str, str]] = []
    factory = InformerFactory(kube, config=FAST_REFLECTOR)
    informer = factory.get(ETCDS, namespace=ns)

    def record(obj: Any, new: Obj | None = None) -> None:
        op = last_operation(new if new is not None else obj)
        if op and (not operations or operations[-1] != (op["type"], op["state"], op["description"])):
            operations.append((op["type"], op["state"], op["description"]))

    informer.add_handler(FuncHandler(add=record, update=record))
    factory.start_all()
    try:
        await informer.wait_for_sync(10)
        await kube.delete(ETCDS, n, ns)
        waiting = (c.OPERATION_TYPE_DELETE, c.OPERATION_STATE_REQUEUE, f"{WAITING} Operation will be retried.")

        async def waiting_for_cleanup() -> bool:
            return waiting in operations and await remaining(kube, ns, n) == [f"ConfigMap/{n}-config"]

        await eventually(waiting_for_cleanup, timeout=20, what="everything but the held ConfigMap deleted")
        started = (c.OPERATION_TYPE_DELETE, c.OPERATION_STATE_PROCESSING, "Etcd cluster deletion is in progress")
        assert started in operations and operations.index(started) < operations.index(waiting)
        etcd = await get_etcd(kube, ns, n)
        assert c.FINALIZER_ETCD in etcd["metadata"]["finalizers"], "finalizer kept while objects remain"

        await kube.merge_patch(CONFIGMAPS, f"{n}-config", {"metadata": {"finalizers": None}}, ns)

        async def etcd_gone() -> bool:
            return await kube.get_or_none(ETCDS, n, ns) is None

        await eventually(etcd_gone, timeout=20, what="Etcd gone once its objects are")
    finally:
        await factory.stop_all()
    assert await kube.get_or_none(PVCS, f"{n}-{n}-0", ns) is not None, "PVCs are kept"


async def test_f48_deletion_ignores_the_suspend_annotation(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "paused"
    await kube.create(ETCDS, etcd_manifest(n, ns))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    await kube.merge_patch(ETCDS, n, {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: ""}}}, ns)
    await kube.delete(ETCDS, n, ns)

    async def all_gone() -> bool:
        return await kube.get_or_none(ETCDS, n, ns) is None and not await remaining(kube, ns, n)

    await eventually(all_gone, timeout=20, what="suspended Etcd and its objects deleted")
