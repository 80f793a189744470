"""Pure parts of the Etcd controller: the event predicate (B10–B13), event mapping, referenced Secrets
(J61), DruidError descriptions and lastOperation records (B16, B17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.facts import referenced_secrets
from druid.components.errors import DruidError, RequeueAfter
from druid.controllers.etcd.operation import ETCDS, StatusWriter, StepResult, duration_text
from druid.controllers.etcd.predicate import etcd_of, etcd_predicate, lease_predicate, pod_predicate
from druid.controllers.etcd.secrets import secret_refs_index
from druid.runtime.client import ApiError
from druid.runtime.objects import ObjectKey
from druid.testing.fakekube import FakeKube


def etcd(
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    last_op: tuple[str, str] | None = None,
    observed: int | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if last_op:
        status["lastOperation"] = {"type": last_op[0], "state": last_op[1]}
    if observed is not None:
        status["observedGeneration"] = observed
    meta: dict[str, Any] = {"name": "e", "namespace": "ns", "generation": generation, "annotations": annotations or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": status}


SUCCEEDED = (c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_SUCCEEDED)
ERROR = (c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_ERROR)
RECONCILE = {c.ANNOTATION_OPERATION: "reconcile"}


@pytest.mark.parametrize(
    ("auto", "old", "new", "passes"),
    [
        # auto-reconcile off, no annotation: nothing passes (B11)
        (False, etcd(1, observed=1, last_op=SUCCEEDED), etcd(2, observed=1, last_op=SUCCEEDED), False),
        # annotation + spec change, or annotation + last reconcile finished (B12), either annotation key
        (False, etcd(1, observed=1, last_op=ERROR), etcd(2, RECONCILE, observed=1, last_op=ERROR), True),
        (False, etcd(1, observed=1, last_op=SUCCEEDED), etcd(1, RECONCILE, observed=1, last_op=SUCCEEDED), True),
        (False, etcd(1), etcd(1, {c.ANNOTATION_GARDENER_OPERATION: "reconcile"}, observed=1, last_op=SUCCEEDED), True),
        # annotation but the last reconcile failed and no spec change: a status write must not loop
        (False, etcd(1, RECONCILE, observed=1, last_op=ERROR), etcd(1, RECONCILE, observed=1, last_op=ERROR), False),
        # never reconciled (issue 898)
        (False, etcd(1), etcd(1, RECONCILE), True),
        (True, etcd(1), etcd(1), True),
        # auto-reconcile: spec changes pass (B13), status-only updates do not
        (True, etcd(1, observed=1, last_op=SUCCEEDED), etcd(2, observed=1, last_op=SUCCEEDED), True),
        (True, etcd(1, observed=1, last_op=ERROR), etcd(1, observed=1, last_op=SUCCEEDED), False),
        # druid: deletion starts at once
        (False, etcd(1, observed=1, last_op=SUCCEEDED), etcd(2, observed=1, last_op=SUCCEEDED, deleting=True), True),
    ],
)
def test_etcd_predicate(auto: bool, old: dict[str, Any], new: dict[str, Any], passes: bool) -> None:
    assert etcd_predicate(auto)(old, new) is passes


def lease(renewed: str | None, holder: str = "a:Leader", **annotations: str) -> dict[str, Any]:
    spec = {"holderIdentity": holder} | ({"renewTime": renewed} if renewed else {})
    return {"metadata": {"name": "e-0", "annotations": annotations}, "spec": spec}


def test_lease_predicate_ignores_healthy_renewals() -> None:
    now = dt.datetime(2026, 1, 1, 0, 1, 0, tzinfo=dt.UTC)
    passes = lease_predicate(60.0, lambda: now)
    fresh, fresher = "2026-01-01T00:00:50.000000Z", "2026-01-01T00:00:59.000000Z"
    assert not passes(lease(fresh), lease(fresher))
    assert passes(lease("2025-12-31T23:59:00.000000Z"), lease(fresher)), "a stale lease's renewal matters"
    assert passes(lease(None), lease(fresher)), "the first renewal matters"
    assert passes(lease(fresh), lease(fresh, "a:Member")), "role change"
    assert passes(lease(fresh), lease(fresh, **{c.ANNOTATION_LEASE_PEER_TLS_ENABLED: "true"}))


def test_pod_predicate_and_mapping() -> None:
    def pod(ready: str) -> dict[str, Any]:
        return {
            "metadata": {
                "namespace": "ns",
                "labels": {c.LABEL_MANAGED_BY: "etcd-druid", c.LABEL_PART_OF: "e"},
                "ownerReferences": [{"kind": "StatefulSet", "name": "e", "controller": True}],
            },
            "status": {"phase": "Running", "conditions": [{"type": "ContainersReady", "status": ready}]},
        }

    assert pod_predicate(pod("True"), pod("False")) and not pod_predicate(pod("True"), pod("True"))
    assert etcd_of(pod("True")) == [ObjectKey("ns", "e")]
    owned = {
        "metadata": {
            "namespace": "ns",
            "ownerReferences": [{"apiVersion": c.API_VERSION, "kind": "Etcd", "name": "x", "controller": True}],
        }
    }
    assert etcd_of(owned) == [ObjectKey("ns", "x")]
    assert etcd_of({"metadata": {"namespace": "ns", "labels": {c.LABEL_PART_OF: "e"}}}) == []


def test_j61_referenced_secrets() -> None:
    spec = {
        "etcd": {
            "clientUrlTls": {
                "tlsCASecretRef": {"name": "ca"},
                "serverTLSSecretRef": {"name": "srv"},
                "clientTLSSecretRef": {"name": "cl"},
            },
            "peerUrlTls": {
                "tlsCASecretRef": {"name": "ca"},
                "serverTLSSecretRef": {"name": "peer"},
                "clientTLSSecretRef": {"name": "ignored"},
            },
        },
        "backup": {
            "tls": {"tlsCASecretRef": {"name": "br-ca"}, "serverTLSSecretRef": {"name": "br"}},
            "store": {"secretRef": {"name": "store"}},
        },
    }
    obj = {"metadata": {"namespace": "ns"}, "spec": spec}
    assert referenced_secrets(obj) == ["ca", "srv", "cl", "peer", "br-ca", "br", "store"]
    assert secret_refs_index(obj)[0] == "ns/ca"
    assert referenced_secrets({"spec": {"etcd": {}, "backup": {"store": {"provider": "Local"}}}}) == []


def test_b16_druid_error_descriptions() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    err = DruidError("ERR_SYNC_CLIENT_SERVICE", "Sync", "Error during create", ValueError("422 Invalid"), at)
    assert err.last_error() == {
        "code": "ERR_SYNC_CLIENT_SERVICE",
        "description": "[Operation: Sync, Code: ERR_SYNC_CLIENT_SERVICE] message: Error during create, "
        "cause: 422 Invalid",
        "observedAt": "2026-01-02T03:04:05Z",
    }
    assert str(err) == "[Operation: Sync, Code: ERR_SYNC_CLIENT_SERVICE] 422 Invalid"
    assert RequeueAfter("Sync", "wait").code == "ERR_REQUEUE_AFTER"
    refused = ApiError(422, "Invalid", 'StatefulSet.apps "e" is invalid: spec.replicas: Invalid value: -1')
    described = DruidError("ERR_SYNC_STATEFULSET", "Sync", "Error during create", refused, at).description()
    assert described.endswith(', cause: StatefulSet.apps "e" is invalid: spec.replicas: Invalid value: -1')
    assert [duration_text(x) for x in (10, 1, 0.5, 90)] == ["10s", "1s", "500ms", "1m30s"]


async def test_b16_b17_last_operation_records_and_dedupe() -> None:
    kube = FakeKube()
    etcd = kube.add(ETCDS, {"metadata": {"name": "e", "namespace": "ns"}, "status": {"lastErrors": [{"code": "OLD"}]}})
    writer = StatusWriter(kube, etcd, "run-1")

    def status() -> dict[str, Any]:
        return (kube.object(ETCDS, "e", "ns") or {})["status"]

    wait = StepResult.wait(10.0, "retrying sync of component StatefulSet after 10s")
    await writer.record_incomplete(c.OPERATION_TYPE_RECONCILE, wait)
    op = status()["lastOperation"]
    assert (op["state"], op["description"], op["runID"]) == (
        "Requeue",
        "retrying sync of component StatefulSet after 10s Operation will be retried.",
        "run-1",
    )
    assert "lastErrors" not in status()
    writes = len(kube.writes())
    await writer.record_incomplete(c.OPERATION_TYPE_RECONCILE, wait)
    assert len(kube.writes()) == writes == 1, "an identical record is not written again"
    failed = StepResult.failed(DruidError("ERR_SYNC_STATEFULSET", "Sync", "boom"))
    await writer.record_incomplete(c.OPERATION_TYPE_RECONCILE, failed)
    assert status()["lastOperation"]["state"] == "Error"
    # druid names the failed step (upstream: " Operation will be retried."): from the errors when not given ...
    assert status()["lastOperation"]["description"] == "Sync failed (ERR_SYNC_STATEFULSET). Operation will be retried."
    assert [e["code"] for e in status()["lastErrors"]] == ["ERR_SYNC_STATEFULSET"]
    # ... and as the step that failed when the run says which
    failed = StepResult.failed(DruidError("ERR_SYNC_STATEFULSET", "Sync", "boom"), step="Sync of component StatefulSet")
    await writer.record_incomplete(c.OPERATION_TYPE_RECONCILE, failed)
    description = status()["lastOperation"]["description"]
    assert description == "Sync of component StatefulSet failed. Operation will be retried."
    other = StepResult.failed_with(ValueError("x"), "Removing the finalizer")
    assert (other.description, other.errors) == ("Removing the finalizer failed.", [])
    await writer.record_success(c.OPERATION_TYPE_RECONCILE)
    assert status()["lastOperation"]["description"] == "Etcd cluster has been successfully reconciled"


async def test_held_status_patches_are_one_write_and_read_back_before_it() -> None:
    """Succeeded, status fields and observedGeneration collected by hold() reach the API server as one write."""
    kube = FakeKube()
    live = {"lastOperation": {"type": "Reconcile", "state": "Processing"}, "conditions": [{"type": "Other"}]}
    etcd = kube.add(ETCDS, {"metadata": {"name": "e", "namespace": "ns", "generation": 3}, "status": live})
    writer = StatusWriter(kube, etcd, "run-1")
    writer.hold()
    await writer.record_success(c.OPERATION_TYPE_RECONCILE)
    await writer.patch_status({"replicas": 3, "conditions": [{"type": "Ready", "status": "True"}]})
    assert writer.status["lastOperation"]["state"] == "Succeeded" and writer.status["replicas"] == 3
    await writer.patch_status({"observedGeneration": 3})
    assert kube.writes() == [], "nothing is written while held"
    await writer.flush()
    assert len(kube.writes()) == 1
    status = (kube.object(ETCDS, "e", "ns") or {})["status"]
    assert status["lastOperation"]["state"] == "Succeeded"
    assert (status["replicas"], status["observedGeneration"]) == (3, 3)
    assert [x["type"] for x in status["conditions"]] == ["Other", "Ready"], "other writers' conditions are kept"
    assert (
        writer.etcd["metadata"]["resourceVersion"]
        == (kube.object(ETCDS, "e", "ns") or {})["metadata"]["resourceVersion"]
    )
    await writer.flush()
    assert len(kube.writes()) == 1, "a flush without held patches writes nothing"


def _etcd_obj(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "e", "namespace": "ns", "uid": "u-1", "generation": 1}, "status": status}


async def test_spec_reconcile_decision_reads_its_own_observed_generation_and_finishes_unfinished_runs() -> None:
    from types import SimpleNamespace
    from typing import cast

    from druid.controllers.etcd.context import Deps
    from druid.controllers.etcd.reconciler import EtcdReconciler

    r = EtcdReconciler(cast(Deps, SimpleNamespace(auto_reconcile=False)))
    succeeded = {"type": "Reconcile", "state": "Succeeded"}
    assert await r.should_reconcile_spec(_etcd_obj({})) is True  # never reconciled
    assert await r.should_reconcile_spec(_etcd_obj({"observedGeneration": 1, "lastOperation": succeeded})) is False
    for state in ("Processing", "Error", "Requeue"):  # an unfinished spec reconcile is always finished
        last = {"type": "Reconcile", "state": state}
        assert await r.should_reconcile_spec(_etcd_obj({"observedGeneration": 1, "lastOperation": last})) is True
    # The cache still shows the Etcd before our observedGeneration write landed: no second spec run.
    stale = {
        **_etcd_obj({"lastOperation": succeeded}),
        "metadata": {**_etcd_obj({})["metadata"], "resourceVersion": "7"},
    }
    written = _etcd_obj({"observedGeneration": 1, "lastOperation": succeeded})
    key = ObjectKey("ns", "e")
    r.expectations.wrote(key, stale, written)
    assert await r.should_reconcile_spec(r.expectations.freshest(key, stale)) is False
    assert r.expectations.freshest(key, written) is written  # the cache caught up: the tracker forgets
    assert len(r.expectations) == 0


class LiveKube:
    """One Etcd whose /status is merge-patched for real, with resourceVersion preconditions."""

    def __init__(self, etcd: dict[str, Any]) -> None:
        self.etcd = etcd

    async def merge_patch(self, res: Any, name: str, body: dict[str, Any], namespace: str, **_: Any) -> dict[str, Any]:
        from druid.runtime.client import ApiError
        from druid.runtime.patch import apply_merge_patch

        if body["metadata"]["resourceVersion"] != self.etcd["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "modified")
        rv = str(int(self.etcd["metadata"]["resourceVersion"]) + 1)
        self.etcd = {
            "metadata": {**self.etcd["metadata"], "resourceVersion": rv},
            "status": apply_merge_patch(self.etcd.get("status") or {}, body["status"]),
        }
        return self.etcd

    async def get(self, res: Any, name: str, namespace: str) -> dict[str, Any]:
        return self.etcd


async def test_status_writer_merges_only_the_etcd_controllers_condition_types() -> None:
    compaction = {"type": "LastSnapshotCompactionSucceeded", "status": "True", "reason": "None"}
    ready = {"type": "Ready", "status": "True", "reason": "Quorate"}
    live = {
        "metadata": {"name": "e", "namespace": "ns", "resourceVersion": "2"},
        "status": {"conditions": [compaction]},
    }
    kube = LiveKube(live)
    stale = {"metadata": {**live["metadata"], "resourceVersion": "1"}, "status": {}}  # the cache lags
    writer = StatusWriter(kube, stale, "run")  # type: ignore[arg-type]
    await writer.patch_status({"conditions": [ready, {**compaction, "status": "False"}], "selector": "s"})
    assert kube.etcd["status"] == {"conditions": [compaction, ready], "selector": "s"}, "sorted by type, theirs kept"
    assert writer.superseded == ["1", "2"], "the cached and the conflicting version are both superseded"
    await writer.patch_status({"conditions": None})  # no condition of its own any more
    assert kube.etcd["status"]["conditions"] == [compaction]
