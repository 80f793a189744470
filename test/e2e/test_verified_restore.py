"""Verified restores for real: a 3-member Etcd backed up to a Local bucket, keys written, snapshots taken; a
``verifiedRestore`` EtcdOpsTask restores them into a scratch Job and reports the expected revision and key count,
the Etcd's ``BackupRestoreVerified`` condition and druid's metrics show it. Then the bucket's full snapshots are
corrupted (the restore fails in the scratch pod), then the bucket is emptied (nothing to restore): each next
verification fails with a clear reason, the condition goes False (keeping the last success), and the live
cluster is untouched throughout (same member pods, no restarts, keys intact, revisions still advancing)."""

from __future__ import annotations

import shutil
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from druid.api import constants as c
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.controllers.opstask import restoreschedule as rs
from druid.controllers.opstask import verifiedrestore as vr
from druid.runtime.client import Kube
from druid.runtime.objects import JOBS, PODS, Obj
from druid.testing.controlplane import LOOPBACK, free_port
from druid.testing.realcluster import RealCluster, operator_config
from druid.testing.realetcd import (
    Stopwatch,
    assert_keys,
    backed_up_etcd,
    lease_holder,
    member_pods,
    on_demand_full_snapshot,
    wait_etcd,
    write_keys,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-vr"


async def test_verified_restore_then_emptied_bucket_fails_and_live_cluster_untouched(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    original = real_cluster.config
    port = free_port()
    real_cluster.restart_druid(operator_config(metrics_port=port))  # the same configuration, metrics served
    try:
        await _scenario(real_cluster, rkube, ns, figures, port)
    finally:
        real_cluster.restart_druid(original)


async def _scenario(cluster: RealCluster, kube: Kube, ns: str, figures: dict[str, object], port: int) -> None:
    store, ctl = await backed_up_etcd(
        cluster, kube, ns, NAME, replicas=3, fullSnapshotSchedule="0 */1 * * *", deltaSnapshotPeriod="5s"
    )
    await write_keys(ctl, 20)
    await on_demand_full_snapshot(kube, ns, NAME, "full-1")
    revision = await write_keys(ctl, 10, prefix="/e2e/after-full/")

    async def delta_at_revision() -> int | None:
        holder = await lease_holder(kube, ns, f"{NAME}-delta-snap")
        return int(holder) if holder and int(holder) >= revision else None

    await eventually(delta_at_revision, timeout=120, what="delta snapshot lease at the written revision", interval=1)
    live_revision = ctl.revision()
    assert live_revision == revision, "nothing but the test writes to this etcd"
    members = await _members(kube, ns)

    # A verified restore: the full snapshot plus the deltas after it, restored in a scratch Job.
    clock = Stopwatch()
    task = await _verify(kube, ns, "verify-1", "Succeeded")
    figures["verified restore (3 members, 30 keys): task created -> Succeeded, s"] = clock()
    found = task["status"]["verifiedRestore"]
    assert found["restoredRevision"] == live_revision, found
    assert found["keyCount"] == 30, found
    assert found["leaseRevision"] >= revision and found["restoredRevision"] >= found["leaseRevision"]
    assert found["fullSnapshot"].startswith("Full-") and found["deltaSnapshots"] >= 1, found
    assert found["latestSnapshot"].startswith("Incr-") and found["reason"] == ""
    steps = {s["name"]: s["state"] for s in task["status"]["steps"]}
    assert steps == {"FindSnapshots": "Succeeded", "Restore": "Succeeded", "Verify": "Succeeded"}, steps
    figures["verified restore: restore duration (Job created -> restored etcd answering)"] = found["restoreDuration"]
    figures["verified restore: recovery-point gap (newest snapshot -> verification)"] = found["recoveryPointGap"]

    etcd = await kube.get(ETCDS, NAME, ns)
    condition = _condition(etcd)
    assert condition["status"] == "True" and condition["reason"] == vr.REASON_OK, condition
    assert f"revision {live_revision}" in condition["message"] and "30 keys" in condition["message"], condition
    upstream = [x["type"] for x in etcd["status"]["conditions"] if x["type"] != vr.CONDITION_TYPE]
    assert c.CONDITION_READY in upstream and c.CONDITION_BACKUP_READY in upstream

    series = _metrics(port)
    labels = {"namespace": ns, "etcd": NAME}
    assert _sample(series, "druid_verified_restore_revision", **labels) == live_revision
    assert _sample(series, "druid_verified_restore_keys", **labels) == 30
    assert _sample(series, "druid_verified_restore_last_success_timestamp_seconds", **labels) > 0
    assert _sample(series, "druid_verified_restore_duration_seconds", **labels) > 0
    assert _sample(series, "druid_verified_restore_recovery_point_gap_seconds", **labels) >= 0
    await _scratch_gone(kube, ns)

    # On a schedule: the annotation makes druid create a verifiedRestore task at the next tick (every minute
    # here); it succeeds too. The annotation is removed again before the failures below.
    schedule = {"metadata": {"annotations": {rs.ANNOTATION_SCHEDULE: "* * * * *"}}}
    await kube.merge_patch(ETCDS, NAME, schedule, ns)
    clock = Stopwatch()
    scheduled = await _scheduled_task_succeeded(kube, ns)
    figures["scheduled verified restore (every minute): annotation -> task Succeeded, s"] = clock()
    assert scheduled["status"]["verifiedRestore"]["restoredRevision"] == live_revision
    await kube.merge_patch(ETCDS, NAME, {"metadata": {"annotations": {rs.ANNOTATION_SCHEDULE: None}}}, ns)

    async def all_tasks_finished() -> bool:  # a tick may have started one more before the annotation went
        tasks = (await kube.list(ETCD_OPS_TASKS, ns))["items"]
        return all((t.get("status") or {}).get("state") in ("Succeeded", "Failed", "Rejected") for t in tasks)

    await eventually(all_tasks_finished, timeout=120, what="every EtcdOpsTask finished", interval=1)
    await _scratch_gone(kube, ns)

    # Corrupt the bucket (every full snapshot's content replaced, names kept): the sidecar still lists the
    # restore set, the restore itself fails in the scratch pod, and the task says why.
    fulls = store.snapshots("Full")
    assert fulls
    for path in fulls:
        path.write_bytes(b"not a snapshot\n" * 64)
    clock = Stopwatch()
    await _failed_verification(
        kube, ns, "verify-2", vr.REASON_RESTORE_FAILED, live_revision, port, figures, "corrupted"
    )
    figures["verified restore of the corrupted bucket: task created -> Failed, s"] = clock()

    # Empty the bucket: the next verification fails with a clear reason, the live cluster carries on.
    for child in store.path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    clock = Stopwatch()
    await _failed_verification(kube, ns, "verify-3", None, live_revision, port, figures, "emptied")
    figures["verified restore of the emptied bucket: task created -> Failed, s"] = clock()

    # The live cluster: the same member pods, none restarted, all keys there, writes go on from where they were.
    assert await _members(kube, ns) == members
    await assert_keys(ctl, 20)
    await assert_keys(ctl, 10, prefix="/e2e/after-full/")
    assert ctl.put("/e2e/after-verification", "v") == live_revision + 1
    await wait_etcd(kube, ns, NAME, timeout=60, members=3)


async def _failed_verification(
    kube: Kube,
    ns: str,
    task: str,
    expected: str | None,
    live_revision: int,
    port: int,
    figures: dict[str, object],
    what: str,
) -> None:
    """A verification that fails (with ``expected`` as its reason, if given): task, condition and metrics say so,
    the last success stays in the condition and the metrics, the scratch objects go."""
    failed = await _verify(kube, ns, task, "Failed")
    reason = failed["status"]["verifiedRestore"]["reason"]
    allowed = (vr.REASON_NO_FULL, vr.REASON_RESTORE_FAILED, vr.REASON_BEHIND)
    assert (reason == expected) if expected else (reason in allowed), failed["status"]
    errors = [e.get("description") or "" for e in failed["status"].get("lastErrors") or ()]
    assert any(reason in e for e in errors), errors
    figures[f"verified restore of the {what} bucket: reason"] = f"{reason}: {errors[-1][:160]}"

    condition = _condition(await kube.get(ETCDS, NAME, ns))
    assert condition["status"] == "False" and condition["reason"] == reason, condition
    assert f"last verified restore: revision {live_revision}" in condition["message"], condition
    series = _metrics(port)
    labels = {"namespace": ns, "etcd": NAME}
    assert _sample(series, "druid_verified_restore_failures_total", **labels, reason=reason) >= 1
    assert _sample(series, "druid_verified_restore_revision", **labels) == live_revision  # the last success stays
    await _scratch_gone(kube, ns)


async def _scheduled_task_succeeded(kube: Kube, ns: str, timeout: float = 180) -> Obj:
    async def succeeded() -> Obj | None:
        selector = f"{rs.LABEL_SCHEDULED}={NAME}"
        for task in (await kube.list(ETCD_OPS_TASKS, ns, label_selector=selector))["items"]:
            state = (task.get("status") or {}).get("state")
            if state in ("Failed", "Rejected"):
                raise AssertionError(f"scheduled task {task['metadata']['name']} {state}: {task.get('status')}")
            if state == "Succeeded":
                return task
        return None

    return await eventually(succeeded, timeout=timeout, what="a scheduled verifiedRestore task Succeeded", interval=1)


async def _verify(kube: Kube, ns: str, task: str, state: str, timeout: float = 300) -> Obj:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": task, "namespace": ns},
        "spec": {"etcdName": NAME, "config": {"verifiedRestore": {"timeoutSeconds": 240}}},
    }
    await kube.create(ETCD_OPS_TASKS, body)

    async def finished() -> Obj | None:
        got = await kube.get(ETCD_OPS_TASKS, task, ns)
        now = (got.get("status") or {}).get("state")
        if now in ("Succeeded", "Failed", "Rejected") and now != state:
            raise AssertionError(f"EtcdOpsTask {ns}/{task} {now}, expected {state}: {got.get('status')}")
        return got if now == state else None

    return await eventually(finished, timeout=timeout, what=f"EtcdOpsTask {ns}/{task} {state}", interval=1)


async def _members(kube: Kube, ns: str) -> list[tuple[str, str, int]]:
    """(name, uid, restarts) of each member pod."""
    pods = await member_pods(kube, ns, NAME)
    return sorted(
        (p["metadata"]["name"], p["metadata"]["uid"], sum(s.get("restartCount", 0) for s in p["status"].get(
            "containerStatuses") or ()))
        for p in pods
    )  # fmt: skip


def _condition(etcd: Obj) -> dict[str, Any]:
    found = [x for x in (etcd.get("status") or {}).get("conditions") or () if x["type"] == vr.CONDITION_TYPE]
    assert len(found) == 1, etcd.get("status")
    return dict(found[0])


def _metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """druid's ``druid_verified_restore_*`` samples, keyed by (name, labels)."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as resp:
        families = text_string_to_metric_families(resp.read().decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        if family.name.startswith("druid_verified_restore_")
        for sample in family.samples
    }


def _sample(series: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in series, f"{name}{labels} not in {sorted(series)}"
    return series[key]


async def _scratch_gone(kube: Kube, ns: str) -> None:
    selector = f"{c.LABEL_COMPONENT}={vr.COMPONENT}"

    async def gone() -> bool:
        jobs = (await kube.list(JOBS, ns, label_selector=selector))["items"]
        pods = (await kube.list(PODS, ns, label_selector=selector))["items"]
        return not jobs and not pods

    await eventually(gone, timeout=90, what="scratch Job and pod deleted", interval=1)
