"""Spec auto-reconcile (checklist B13; also C18 with disableEtcdServiceAccountAutomount): spec changes apply
without the annotation, every periodic reconcile re-runs the spec sync, and that sync writes nothing when in sync
(even for values the API server normalises, like ``cpu: 1000m``, and with ``clientService.labels`` that try to
override druid's own labels: issue 13, finding 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import CONFIGMAPS, SERVICEACCOUNTS, SERVICES, STATEFULSETS, Obj, ObjectKey, ResourceRef
from druid.testing.controlplane import ControlPlane
from druid.testing.etcds import etcd_manifest, wait_for_operation
from druid.testing.operator import Operator, fast_config
from druid.testing.wait import eventually


@pytest.fixture
async def operator(control_plane: ControlPlane, crds: list[str], namespace: str) -> AsyncIterator[Operator]:
    """Confined to the test's namespace, so ``wait_reconciles`` counts reconciles of this test's Etcd only (a
    cluster-wide operator also reconciles Etcds other tests of the session left behind)."""
    config = fast_config(enableEtcdSpecAutoReconcile=True, disableEtcdServiceAccountAutomount=True)
    op = await Operator.start(control_plane.kubeconfig, config, namespace=namespace)
    yield op
    await op.stop()


def cached(operator: Operator, res: ResourceRef, namespace: str, name: str) -> Obj | None:
    """The object as the operator's informer cache holds it."""
    for informer in operator.informers:
        if informer.resource == res and (found := informer.store.get(ObjectKey(namespace, name))) is not None:
            return found
    return None


async def assert_no_writes(operator: Operator, namespace: str, reconciles: int, why: str) -> None:
    """After two reconciles to settle, ``reconciles`` more write nothing in ``namespace`` (else: what was written)."""
    await operator.wait_reconciles(2)
    writes = operator.writes(namespace)
    with structlog.testing.capture_logs() as logs:
        await operator.wait_reconciles(reconciles)
    written = [x for x in logs if x["event"] in ("applied", "patched status", "recorded last operation")]
    assert operator.writes(namespace) == writes, f"{why}: {written}"


async def test_b13_auto_reconcile_applies_changes_and_resyncs(operator: Operator, kube: Kube, namespace: str) -> None:
    resources = {"requests": {"cpu": "1000m", "memory": "1024Mi"}}  # stored as "1" and "1Gi"
    await kube.create(ETCDS, etcd_manifest("b13", namespace, etcd={"resources": resources}))
    await wait_for_operation(kube, namespace, "b13", c.OPERATION_STATE_SUCCEEDED, generation=1)
    sts = await kube.get(STATEFULSETS, "b13", namespace)
    etcd_container = sts["spec"]["template"]["spec"]["containers"][0]
    assert etcd_container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}

    async def pods_ready() -> bool:
        current = await kube.get(STATEFULSETS, "b13", namespace)
        return (current.get("status") or {}).get("readyReplicas") == 1

    await eventually(pods_ready, timeout=30, what="StatefulSet ready")

    # In sync: druid's status shows the ready StatefulSet (pod events can cause reconciles before the StatefulSet's
    # status update reaches druid, so reconciles alone do not tell), and druid's caches hold the current Etcd (its
    # own last status write) and StatefulSet; a reconcile on a stale cache would repeat that write.
    async def in_sync() -> bool:
        etcd, current = await kube.get(ETCDS, "b13", namespace), await kube.get(STATEFULSETS, "b13", namespace)
        status = etcd.get("status") or {}
        return (
            status.get("ready") is True
            and status.get("readyReplicas") == 1
            and all(
                (cached(operator, res, namespace, "b13") or {}).get("metadata", {}).get("resourceVersion")
                == obj["metadata"]["resourceVersion"]
                for res, obj in ((ETCDS, etcd), (STATEFULSETS, current))
            )
        )

    await eventually(in_sync, timeout=30, what="druid's status and caches in sync with the ready StatefulSet")
    await assert_no_writes(operator, namespace, 4, "spec sync of an Etcd in sync must not write")

    sa = await kube.get(SERVICEACCOUNTS, "b13", namespace)
    assert sa["automountServiceAccountToken"] is False  # C18 with disableEtcdServiceAccountAutomount
    await kube.merge_patch(ETCDS, "b13", {"spec": {"etcd": {"quota": "1Gi"}}}, namespace)
    await wait_for_operation(kube, namespace, "b13", c.OPERATION_STATE_SUCCEEDED, generation=2)
    config_map = await kube.get(CONFIGMAPS, "b13-config", namespace)
    assert "quota-backend-bytes: 1073741824" in config_map["data"]["etcd.conf.yaml"]
    # Spec sync re-runs on every periodic reconcile: a deleted component comes back without any trigger.
    await kube.delete(SERVICES, "b13-client", namespace)

    async def recreated() -> bool:
        return await kube.get_or_none(SERVICES, "b13-client", namespace) is not None

    await eventually(recreated, timeout=15, what="client service re-created by the periodic spec sync")


async def test_finding5_client_service_labels_cannot_override_druids_and_steady_state_writes_nothing(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    hostile = {
        c.LABEL_MANAGED_BY: "not-druid",
        c.LABEL_PART_OF: "someone-else",
        c.LABEL_COMPONENT: "x",
        c.LABEL_NAME: "y",
        "team": "blue",
    }
    await kube.create(ETCDS, etcd_manifest("hostile", namespace, etcd={"clientService": {"labels": hostile}}))
    await wait_for_operation(kube, namespace, "hostile", c.OPERATION_STATE_SUCCEEDED, generation=1)
    svc = await kube.get(SERVICES, "hostile-client", namespace)
    assert svc["metadata"]["labels"] == {
        c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE,
        c.LABEL_PART_OF: "hostile",
        c.LABEL_COMPONENT: c.COMPONENT_CLIENT_SERVICE,
        c.LABEL_NAME: "hostile-client",
        "team": "blue",
    }

    async def in_sync() -> bool:  # (as in the B13 test: status and caches show the ready StatefulSet)
        etcd, sts = await kube.get(ETCDS, "hostile", namespace), await kube.get(STATEFULSETS, "hostile", namespace)
        return (etcd.get("status") or {}).get("readyReplicas") == 1 and all(
            (cached(operator, res, namespace, obj["metadata"]["name"]) or {}).get("metadata", {}).get("resourceVersion")
            == obj["metadata"]["resourceVersion"]
            for res, obj in ((ETCDS, etcd), (STATEFULSETS, sts), (SERVICES, svc))
        )

    await eventually(in_sync, timeout=30, what="druid's status and caches (the client Service too) in sync")
    await assert_no_writes(operator, namespace, 5, "hostile clientService.labels must not cause writes")
