"""Hibernation of a three-member cluster: scaling to 0 takes a final full snapshot through the real sidecar
(EtcdOpsTask) before the StatefulSet goes to 0; waking it to 3 brings the keys back on every member."""

from __future__ import annotations

from typing import Any

import pytest

from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import STATEFULSETS
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    assert_keys,
    backed_up_etcd,
    etcdctl_for,
    member_pods,
    wait_etcd,
    wait_task,
    write_keys,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e


async def test_hibernate_three_with_final_snapshot_then_wake_to_three(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-hibernate"
    store, ctl = await backed_up_etcd(real_cluster, rkube, ns, name, 3, timeout=480)
    await write_keys(ctl, 30)
    fulls = len(store.snapshots("Full"))

    clock = Stopwatch()
    await rkube.merge_patch(ETCDS, name, {"spec": {"replicas": 0}}, ns)

    async def presync_task() -> dict[str, Any] | None:
        tasks = (await rkube.list(ETCD_OPS_TASKS, ns))["items"]
        return next((t for t in tasks if t["metadata"]["name"].startswith("presync-snapshot-hibernation")), None)

    task = await eventually(presync_task, timeout=60, what="the hibernation snapshot EtcdOpsTask", interval=0.5)
    await wait_task(rkube, ns, task["metadata"]["name"], timeout=120)

    async def scaled_to_zero() -> bool:
        sts = await rkube.get(STATEFULSETS, name, ns)
        return sts["spec"]["replicas"] == 0 and not await member_pods(rkube, ns, name)

    await eventually(scaled_to_zero, timeout=120, what="StatefulSet at 0 and no pods", interval=1)
    figures["hibernate (final snapshot, StatefulSet 0, pods gone), s"] = clock()
    assert len(store.snapshots("Full")) > fulls, "the final full snapshot is in the bucket"

    clock = Stopwatch()
    await rkube.merge_patch(ETCDS, name, {"spec": {"replicas": 3}}, ns)
    await wait_etcd(rkube, ns, name, timeout=600, what="awake with 3 members", members=3)
    figures["wake 0->3: patch -> Ready, s"] = clock()
    for i in range(3):
        member = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name, member=f"{name}-{i}")
        await assert_keys(member, 30)
