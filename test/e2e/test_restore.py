"""Data loss: a single member loses its pod and its volume; the new member restores from the Local bucket and
the keys written before are there."""

from __future__ import annotations

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import PODS, PVCS, SECRETS
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, etcdctl_for, on_demand_full_snapshot, until, wait_etcd
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e


async def test_member_restores_from_the_bucket_after_pod_and_volume_are_lost(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-restore"
    store = real_cluster.local_store(ns, f"{ns}--{name}")
    await rkube.create(SECRETS, store.secret)
    await rkube.create(ETCDS, etcd_manifest(name, ns, 1, backup={"store": store.spec}))
    await wait_etcd(rkube, ns, name, timeout=300)
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name)
    await until(lambda: ctl.put("/e2e/k0", "v0"), timeout=30, what="a first write")
    for i in range(1, 50):
        ctl.put(f"/e2e/k{i}", f"v{i}")
    revision = ctl.revision()
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
    await until(lambda: ctl.get("/e2e/k49") == "v49", timeout=60, what="the restored keys")
    assert all(ctl.get(f"/e2e/k{i}") == f"v{i}" for i in range(50))
    assert ctl.revision() >= revision
