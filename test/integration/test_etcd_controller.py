"""The Etcd controller's reconcile triggers and outcomes (checklist B10–B17) and the invalid-spec acceptance,
against the real control plane with the controllers running in-process."""

from __future__ import annotations

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    PDBS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    ObjectKey,
)
from druid.testing.etcds import (
    annotate_reconcile,
    condition,
    etcd_manifest,
    get_etcd,
    last_operation,
    wait_for_operation,
)
from druid.testing.operator import Operator
from druid.testing.sidecar import LeaseRenewer, renew_member_leases
from druid.testing.wait import eventually

NAMES = {
    SERVICEACCOUNTS: ["{n}"],
    ROLES: ["druid.gardener.cloud:etcd:{n}"],
    ROLEBINDINGS: ["druid.gardener.cloud:etcd:{n}"],
    LEASES: ["{n}-0"],
    PDBS: ["{n}"],
    SERVICES: ["{n}-client", "{n}-peer"],
    CONFIGMAPS: ["{n}-config"],
    STATEFULSETS: ["{n}"],
}


async def test_b10_b15_new_etcd_reconciled_once_then_steady_state_writes_nothing(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    await kube.create(ETCDS, etcd_manifest("b10", namespace))
    etcd = await wait_for_operation(kube, namespace, "b10", c.OPERATION_STATE_SUCCEEDED, generation=1)
    assert c.FINALIZER_ETCD in etcd["metadata"]["finalizers"]
    op = last_operation(etcd)
    assert op["description"] == "Etcd cluster has been successfully reconciled" and op["runID"]
    assert "lastErrors" not in etcd["status"]
    for res, names in NAMES.items():
        for name in names:
            got = await kube.get(res, name.format(n="b10"), namespace)
            assert got["metadata"]["ownerReferences"][0]["uid"] == etcd["metadata"]["uid"]

    # B15: the status keeps being refreshed without any event of the Etcd itself: the member appears and
    # the cluster turns ready while (only) the fake sidecar renews the member lease ...
    renewer = LeaseRenewer(kube, "b10", namespace, replicas=1, interval=0.3)
    renewer.start()
    try:

        async def ready() -> bool:
            etcd = await get_etcd(kube, namespace, "b10")
            members = (etcd.get("status") or {}).get("members") or ()
            return (
                [(m["name"], m["status"]) for m in members] == [("b10-0", "Ready")]
                and etcd["status"].get("ready") is True
                and condition(etcd, c.CONDITION_ALL_MEMBERS_READY).get("status") == "True"
            )

        await eventually(ready, timeout=20, what="member b10-0 Ready and the Etcd ready")
        # ... and once everything is in sync, periodic reconciles and lease renewals write nothing at all.
        await operator.wait_reconciles(2, "status refresh")
        writes, rounds = operator.writes(namespace), renewer.rounds
        await operator.wait_reconciles(3, "three more periodic reconciles")

        async def renewed_twice() -> bool:  # (reconciles count every Etcd of the operator, so they may be quick)
            return renewer.rounds >= rounds + 2

        await eventually(renewed_twice, timeout=10, what="two more lease renewals")
        assert operator.writes(namespace) == writes, "a steady state must not write"
        assert last_operation(await get_etcd(kube, namespace, "b10"))["runID"] == op["runID"]
    finally:
        await renewer.stop()


async def test_b11_b12_spec_change_needs_the_operation_annotation(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    await kube.create(ETCDS, etcd_manifest("b11", namespace))
    await wait_for_operation(kube, namespace, "b11", c.OPERATION_STATE_SUCCEEDED, generation=1)
    quota = {"spec": {"etcd": {"quota": "1Gi"}}}
    await kube.merge_patch(ETCDS, "b11", quota, namespace)
    await operator.wait_reconciles(3, "periodic reconciles after the spec change")
    etcd = await get_etcd(kube, namespace, "b11")
    assert etcd["metadata"]["generation"] == 2 and etcd["status"]["observedGeneration"] == 1
    config = await kube.get(CONFIGMAPS, "b11-config", namespace)
    assert "quota-backend-bytes: 8589934592" in config["data"]["etcd.conf.yaml"]

    for key, generation in ((c.ANNOTATION_OPERATION, 2), (c.ANNOTATION_GARDENER_OPERATION, 3)):
        if generation == 3:
            await kube.merge_patch(ETCDS, "b11", {"spec": {"etcd": {"quota": "2Gi"}}}, namespace)
        await kube.merge_patch(ETCDS, "b11", {"metadata": {"annotations": {key: "reconcile"}}}, namespace)
        etcd = await wait_for_operation(kube, namespace, "b11", c.OPERATION_STATE_SUCCEEDED, generation=generation)

        async def annotation_removed(key: str = key) -> bool:
            annotations = (await get_etcd(kube, namespace, "b11"))["metadata"].get("annotations") or {}
            return key not in annotations

        await eventually(annotation_removed, timeout=10, what=f"{key} removed")
        config = await kube.get(CONFIGMAPS, "b11-config", namespace)
        want = 1 << 30 if generation == 2 else 2 << 30
        assert f"quota-backend-bytes: {want}" in config["data"]["etcd.conf.yaml"]


async def test_b14_suspend_skips_spec_but_refreshes_status(operator: Operator, kube: Kube, namespace: str) -> None:
    await kube.create(ETCDS, etcd_manifest("b14", namespace))
    await wait_for_operation(kube, namespace, "b14", c.OPERATION_STATE_SUCCEEDED, generation=1)
    annotations = {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: "", c.ANNOTATION_OPERATION: "reconcile"}
    await kube.merge_patch(
        ETCDS, "b14", {"metadata": {"annotations": annotations}, "spec": {"etcd": {"quota": "1Gi"}}}, namespace
    )
    message = (
        f"spec reconciliation of {namespace}/b14 is skipped by etcd-druid due to the presence of annotation "
        f"{c.ANNOTATION_SUSPEND_SPEC_RECONCILE} on the etcd resource"
    )

    async def warned() -> dict | None:
        events = await kube.list(EVENTS, namespace, field_selector="involvedObject.name=b14")
        for event in events["items"]:
            if event["reason"] == "SpecReconciliationSkipped":
                return event
        return None

    event = await eventually(warned, timeout=15, what="Warning event SpecReconciliationSkipped")
    assert event["type"] == "Warning" and event["message"] == message
    assert event["source"]["component"] == "etcd-controller"
    assert event["involvedObject"]["kind"] == "Etcd"

    async def counted_again() -> bool:  # emitted on every reconcile: the event's count grows
        again = await warned()
        return again is not None and again.get("count", 1) > 1

    await eventually(counted_again, timeout=15, what="event repeated")
    await renew_member_leases(kube, "b14", namespace, replicas=1)

    async def status_refreshed() -> bool:
        return bool(((await get_etcd(kube, namespace, "b14")).get("status") or {}).get("members"))

    await eventually(status_refreshed, timeout=15, what="status refreshed while suspended")
    etcd = await get_etcd(kube, namespace, "b14")
    assert etcd["status"]["observedGeneration"] == 1
    assert etcd["metadata"]["annotations"][c.ANNOTATION_OPERATION] == "reconcile"
    config = await kube.get(CONFIGMAPS, "b14-config", namespace)
    assert "quota-backend-bytes: 8589934592" in config["data"]["etcd.conf.yaml"]


async def test_b16_failing_component_stops_later_ones(operator: Operator, kube: Kube, namespace: str) -> None:
    bad = {"etcd": {"clientService": {"labels": {"bad label!": "x"}}}}
    await kube.create(ETCDS, etcd_manifest("b16", namespace, **bad))
    etcd = await wait_for_operation(kube, namespace, "b16", c.OPERATION_STATE_ERROR)
    op = last_operation(etcd)
    assert op["description"] == " Operation will be retried."
    errors = etcd["status"]["lastErrors"]
    assert [e["code"] for e in errors] == ["ERR_SYNC_CLIENT_SERVICE"]
    assert errors[0]["description"].startswith("[Operation: Sync, Code: ERR_SYNC_CLIENT_SERVICE] message: ")
    # The API server's refusal is printed as Go prints a StatusError: its message, no "422 Invalid:" prefix.
    cause = errors[0]["description"].split(", cause: ", 1)[1]
    assert cause.startswith('Service "b16-client" is invalid: '), cause
    assert "observedGeneration" not in etcd["status"]
    assert await kube.get_or_none(PDBS, "b16", namespace) is not None  # synced before the client service
    # The kinds before the StatefulSet are written concurrently (one wave); the StatefulSet's wave is stopped.
    assert await kube.get_or_none(STATEFULSETS, "b16", namespace) is None, "the StatefulSet must not be created"
    key = ObjectKey(namespace, "b16")

    async def retried_with_backoff() -> bool:
        return operator.etcd.queue.num_requeues(key) >= 3

    await eventually(retried_with_backoff, timeout=15, what="rate-limited retries")
    assert operator.etcd.queue._limiter.max_delay == 1.0  # backoff capped at etcdStatusSyncPeriod

    await annotate_reconcile(kube, namespace, "b16", {"etcd": {"clientService": {"labels": None}}})
    etcd = await wait_for_operation(kube, namespace, "b16", c.OPERATION_STATE_SUCCEEDED, generation=2)
    assert "lastErrors" not in etcd["status"]
    assert await kube.get_or_none(STATEFULSETS, "b16", namespace) is not None


async def test_invalid_spec_writes_nothing_and_says_why(operator: Operator, kube: Kube, namespace: str) -> None:
    store = {"store": {"provider": "floppy", "container": "bucket", "prefix": "p"}}
    await kube.create(ETCDS, etcd_manifest("bad", namespace, backup=store))
    etcd = await wait_for_operation(kube, namespace, "bad", c.OPERATION_STATE_ERROR)
    [error] = etcd["status"]["lastErrors"]
    assert error["code"] == "ERR_SYNC_STATEFULSET"
    assert "spec.backup.store.provider" in error["description"] and "floppy" in error["description"]
    await operator.wait_reconciles(3, "retries of the invalid Etcd")
    for res, names in NAMES.items():
        for name in names:
            assert await kube.get_or_none(res, name.format(n="bad"), namespace) is None, "no half-applied state"
    assert c.FINALIZER_ETCD not in ((await get_etcd(kube, namespace, "bad"))["metadata"].get("finalizers") or ())
