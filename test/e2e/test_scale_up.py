"""Scale-up 1→3 of a real cluster with data: the same cluster ID, every key on every member, three members in
status, and no ClusterIDMismatch."""

from __future__ import annotations

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    assert_keys,
    backed_up_etcd,
    conditions,
    etcdctl_for,
    wait_etcd,
    write_keys,
)

pytestmark = pytest.mark.e2e


async def test_scale_up_one_to_three_keeps_the_cluster_and_its_keys(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-scale"
    _, one = await backed_up_etcd(real_cluster, rkube, ns, name)
    await write_keys(one, 30)
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
        await assert_keys(ctl, 30)
