"""Scale-up 1→3 of a real cluster with data: the same cluster ID, every key on every member, three members in
status, and no ClusterIDMismatch."""

from __future__ import annotations

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, conditions, etcdctl_for, until, wait_etcd

pytestmark = pytest.mark.e2e


async def test_scale_up_one_to_three_keeps_the_cluster_and_its_keys(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-scale"
    store = real_cluster.local_store(ns, f"{ns}--{name}")
    await rkube.create(SECRETS, store.secret)
    await rkube.create(ETCDS, etcd_manifest(name, ns, 1, backup={"store": store.spec}))
    await wait_etcd(rkube, ns, name, timeout=300)
    one = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name)
    await until(lambda: one.put("/e2e/k0", "v0"), timeout=30, what="a first write")
    for i in range(1, 30):
        one.put(f"/e2e/k{i}", f"v{i}")
    cluster_id = one.cluster_id()

    clock = Stopwatch()
    await rkube.merge_patch(ETCDS, name, {"spec": {"replicas": 3}}, ns)
    etcd = await wait_etcd(rkube, ns, name, timeout=480, what="Ready with 3 members", members=3)
    figures["scale-up 1->3 (with data): patch -> Ready, s"] = clock()
    assert len(etcd["status"]["members"]) == 3
    assert conditions(etcd).get(c.CONDITION_CLUSTER_ID_MISMATCH) != "True", etcd["status"]

    for i in range(3):
        ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name, member=f"{name}-{i}")
        assert ctl.cluster_id() == cluster_id
        assert sorted(m["name"] for m in ctl.members()) == [f"{name}-{j}" for j in range(3)]
        await until(lambda ctl=ctl: ctl.get("/e2e/k29") == "v29", timeout=30, what=f"keys on member {i}")
        assert all(ctl.get(f"/e2e/k{j}") == f"v{j}" for j in range(30))
