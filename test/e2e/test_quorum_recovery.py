"""Permanent quorum loss and its recovery on real etcd pods: 3 members backed up to a Local bucket, keys
written, a delta snapshot taken; members 1 and 2 lose pods and volumes (their node-side data goes with the
PVs) so quorum is lost, and stays lost for the whole minQuorumLossDuration; ``druid recover-quorum`` (the CLI,
as a user runs it) creates a ``quorumLossRecovery`` EtcdOpsTask and follows it until 3 Ready members are back
with one cluster ID and every key written before the snapshot. Refusals: a recovery while quorum is there, one
for an Etcd without a backup store, one asked for before the loss has lasted long enough, and a second task
while the recovery runs — all Rejected, nothing changed."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.runtime.client import Kube
from druid.runtime.clock import parse_time
from druid.runtime.objects import PODS, PVCS, STATEFULSETS, Obj
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    assert_keys,
    backed_up_etcd,
    conditions,
    etcdctl_for,
    wait_etcd,
    wait_task,
    write_keys,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-qr"
KEYS = 40
MIN_LOSS, MIN_LOSS_SECONDS = "60s", 60
STEPS = [
    "HoldReconcile",
    "ScaleToZero",
    "RemoveVolumes",
    "SingleMemberConfig",
    "RestoreOne",
    "Verify",
    "ReleaseReconcile",
    "ScaleBack",
]


def task(name: str, config: dict[str, Any]) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": name},
        "spec": {"etcdName": NAME, "config": config},
    }


async def finished(kube: Kube, ns: str, name: str, timeout: float) -> Obj:
    async def probe() -> Obj | None:
        got = await kube.get(ETCD_OPS_TASKS, name, ns)
        return got if (got.get("status") or {}).get("state") in ("Succeeded", "Failed", "Rejected") else None

    return await eventually(probe, timeout=timeout, what=f"EtcdOpsTask {ns}/{name} finished", interval=1)


async def untouched(kube: Kube, ns: str) -> dict[str, str]:
    """What a refused recovery must leave alone: the Etcd's annotations, the StatefulSet's replicas and
    generation, and which PVCs exist (uids)."""
    etcd = await kube.get(ETCDS, NAME, ns)
    sts = await kube.get(STATEFULSETS, NAME, ns)
    pvcs = (await kube.list(PVCS, ns))["items"]
    out = {
        "etcd-annotations": str(etcd["metadata"].get("annotations")),
        "sts": f"{sts['spec']['replicas']}/{sts['metadata']['generation']}",
    }
    out.update({p["metadata"]["name"]: p["metadata"]["uid"] for p in pvcs})
    return out


async def recover_quorum(cluster: RealCluster, ns: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "druid.cli.main",
        "recover-quorum",
        NAME,
        "-n",
        ns,
        "--kubeconfig",
        str(cluster.kubeconfig),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def outcome(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_recovery_from_permanent_quorum_loss(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    _, ctl = await backed_up_etcd(real_cluster, rkube, ns, NAME, replicas=3, timeout=600)
    await write_keys(ctl, KEYS)
    old_cluster = ctl.cluster_id()

    # Refusal: quorum is there.
    before = await untouched(rkube, ns)
    await rkube.create(ETCD_OPS_TASKS, task("too-early", {"quorumLossRecovery": {"force": True}}), ns)
    early = await finished(rkube, ns, "too-early", timeout=120)
    assert early["status"]["state"] == "Rejected", early["status"]
    assert "QuorumNotLost" in early["status"]["lastOperation"]["description"]
    assert await untouched(rkube, ns) == before

    # Refusal: an Etcd without a backup store has nothing to restore from (checked first, whatever its health;
    # 0 replicas, so it adds no pod or claim next to the cluster under test).
    await rkube.create(ETCDS, etcd_manifest("nostore", ns, 0))
    nostore_before = (await rkube.get(ETCDS, "nostore", ns))["metadata"].get("annotations")
    body = task("no-store", {"quorumLossRecovery": {"force": True}})
    body["spec"]["etcdName"] = "nostore"
    await rkube.create(ETCD_OPS_TASKS, body, ns)
    refused = await finished(rkube, ns, "no-store", timeout=120)
    assert refused["status"]["state"] == "Rejected", refused["status"]
    assert "NoBackupStore" in refused["status"]["lastOperation"]["description"]
    assert (await rkube.get(ETCDS, "nostore", ns))["metadata"].get("annotations") == nostore_before
    assert await untouched(rkube, ns) == before

    await rkube.create(ETCD_OPS_TASKS, task("delta", {"onDemandSnapshot": {"type": "delta"}}), ns)
    await wait_task(rkube, ns, "delta", timeout=180)
    snapshot_revision = ctl.revision()

    # Members 1 and 2 lose pods and volumes: quorum is gone for good.
    old_pvcs = {n: (await rkube.get(PVCS, n, ns))["metadata"]["uid"] for n in (f"{NAME}-{NAME}-{i}" for i in (1, 2))}
    clock = Stopwatch()
    for i in (1, 2):
        await rkube.delete(PVCS, f"{NAME}-{NAME}-{i}", ns)  # held by pvc-protection until the pod is gone
    for i in (1, 2):
        await rkube.delete(PODS, f"{NAME}-{i}", ns)
    lost = await wait_etcd(rkube, ns, NAME, timeout=300, what="without quorum", **{c.CONDITION_READY: "False"})
    figures["quorum recovery: 2 of 3 members destroyed -> Ready False, s"] = clock()
    ready = next(x for x in lost["status"]["conditions"] if x["type"] == c.CONDITION_READY)
    assert ready["reason"] == "QuorumLost", ready

    async def new_volumes() -> bool | None:
        pvcs = [await rkube.get_or_none(PVCS, n, ns) for n in old_pvcs]
        return all(p and p["metadata"]["uid"] not in old_pvcs.values() for p in pvcs) or None

    await eventually(new_volumes, timeout=120, what="members 1 and 2 on new, empty volumes", interval=1)

    # Refusal: quorum lost, but not for minQuorumLossDuration yet.
    before = await untouched(rkube, ns)
    code, _, err = await outcome(await recover_quorum(real_cluster, ns, "--min-loss", MIN_LOSS, "--task", "soon"), 120)
    assert code == 1 and "less than minQuorumLossDuration" in err, err
    assert await untouched(rkube, ns) == before

    # The loss lasts: Ready stays False for the whole minQuorumLossDuration.
    since = parse_time(ready["lastTransitionTime"]).timestamp()
    while time.time() < since + MIN_LOSS_SECONDS + 2:
        etcd = await rkube.get(ETCDS, NAME, ns)
        assert conditions(etcd).get(c.CONDITION_READY) == "False", etcd["status"]
        await asyncio.sleep(2)

    clock = Stopwatch()
    cli = await recover_quorum(real_cluster, ns, "--min-loss", MIN_LOSS, "--task", "recover")

    # Refusal: a task is already running for the Etcd.
    async def running() -> bool | None:
        got = await rkube.get_or_none(ETCD_OPS_TASKS, "recover", ns)
        return (got or {}).get("status", {}).get("state") == "InProgress" or None

    await eventually(running, timeout=120, what="the recovery task InProgress", interval=0.5)
    await rkube.create(ETCD_OPS_TASKS, task("second", {"onDemandSnapshot": {"type": "full"}}), ns)
    second = await finished(rkube, ns, "second", timeout=120)
    assert second["status"]["state"] == "Rejected"
    assert second["status"]["lastErrors"][-1]["code"] == "ERR_DUPLICATE_TASK", second["status"]

    code, out, err = await outcome(cli, 1500)
    figures["quorum recovery: druid recover-quorum output"] = "\n" + out
    assert code == 0, (out, err)
    for step in STEPS:
        assert f"] {step} Succeeded after " in out, (step, out)
    assert "restored revision " in out and "data-loss window" in out
    done = await finished(rkube, ns, "recover", timeout=1500)
    status = done["status"]
    figures["quorum recovery: task created -> Succeeded, s"] = clock()
    for step in status.get("steps") or ():
        if step.get("finishedAt"):
            took = (parse_time(step["finishedAt"]) - parse_time(step["startedAt"])).total_seconds()
            figures[f"quorum recovery step {step['name']}, s"] = round(took, 1)
    assert status["state"] == "Succeeded", status
    assert [s["name"] for s in status["steps"]] == STEPS
    evidence = status["quorumLossRecovery"]
    assert evidence["originalReplicas"] == 3
    assert evidence["restoredRevision"] >= snapshot_revision
    window = evidence["dataLossWindow"]
    assert parse_time(window["start"]) <= parse_time(window["end"]), window
    figures["quorum recovery: data-loss window, s"] = (
        parse_time(window["end"]) - parse_time(window["start"])
    ).total_seconds()

    etcd = await wait_etcd(rkube, ns, NAME, timeout=300, what="Ready with 3 members", members=3)
    assert conditions(etcd).get(c.CONDITION_CLUSTER_ID_MISMATCH) != "True", etcd["status"]
    assert c.ANNOTATION_SUSPEND_SPEC_RECONCILE not in (etcd["metadata"].get("annotations") or {})
    ids = set()
    for i in range(3):
        member = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, NAME, member=f"{NAME}-{i}")
        ids.add(int(member.cluster_id(), 16))
        assert sorted(m["name"] for m in member.members()) == [f"{NAME}-{j}" for j in range(3)]
        await assert_keys(member, KEYS)
    assert ids == {int(evidence["clusterID"], 16)}, (ids, evidence)
    figures["quorum recovery: cluster ID before -> after"] = f"{old_cluster} -> {evidence['clusterID']}"
