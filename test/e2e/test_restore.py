"""Data loss: a single member loses its pod and its volume; the new member restores from the Local bucket and
the keys written before are there."""

from __future__ import annotations

import pytest

from druid.runtime.client import Kube
from druid.runtime.objects import PODS, PVCS
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    assert_keys,
    backed_up_etcd,
    etcdctl_for,
    on_demand_full_snapshot,
    wait_etcd,
    write_keys,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e


async def test_member_restores_from_the_bucket_after_pod_and_volume_are_lost(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-restore"
    _, ctl = await backed_up_etcd(real_cluster, rkube, ns, name)
    revision = await write_keys(ctl, 50)
    await on_demand_full_snapshot(rkube, ns, name, "before-loss")

    pvc_name = f"{name}-{name}-0"
    old_pvc = await rkube.get(PVCS, pvc_name, ns)
    old_volume = old_pvc["spec"]["volumeName"]
    clock = Stopwatch()
    await rkube.delete(PVCS, pvc_name, ns)  # held by pvc-protection until the pod is gone
    await rkube.delete(PODS, f"{name}-0", ns)

    async def new_volume() -> str | None:
        pvc = await rkube.get_or_none(PVCS, pvc_name, ns)
        if pvc is None or pvc["metadata"]["uid"] == old_pvc["metadata"]["uid"]:
            return None
        return str(pvc["spec"].get("volumeName") or "") or None

    volume = await eventually(new_volume, timeout=120, what="a new volume for member 0", interval=1)
    assert volume != old_volume
    await wait_etcd(rkube, ns, name, timeout=300, what="Ready after the data loss")
    figures["1 member: pod + volume lost -> Ready with restored data, s"] = clock()

    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name)
    await assert_keys(ctl, 50)
    assert ctl.revision() >= revision
