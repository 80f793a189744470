"""One real member: Ready because the real sidecar says so, and a key written through the client Service reads back."""

from __future__ import annotations

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    etcdctl_for,
    lease_holder,
    member_pods,
    pod_pids,
    pod_ready,
    rss_mib,
    until,
    wait_etcd,
)

pytestmark = pytest.mark.e2e


async def test_one_member_ready_and_serves_keys(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    clock = Stopwatch()
    await rkube.create(ETCDS, etcd_manifest("etcd-one", ns, 1))
    etcd = await wait_etcd(rkube, ns, "etcd-one", timeout=240)
    figures["1 member: create -> Ready, s"] = clock()

    # Ready is backed by a Ready pod and by the lease the real backup-restore sidecar renews.
    pods = await member_pods(rkube, ns, "etcd-one")
    assert [p["metadata"]["name"] for p in pods] == ["etcd-one-0"] and pod_ready(pods[0])
    holder = await lease_holder(rkube, ns, "etcd-one-0")
    assert holder is not None and holder.endswith(":Leader"), holder
    member_id, cluster_id, _ = holder.split(":")

    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, "etcd-one")
    await until(lambda: ctl.put("/e2e/hello", "world"), timeout=30, what="a write through the client Service")
    assert ctl.get("/e2e/hello") == "world"
    members = ctl.members()
    assert len(members) == 1 and members[0]["name"] == "etcd-one-0"
    # The sidecar's lease names the real member and cluster (hex IDs).
    assert int(member_id, 16) == int(members[0]["ID"], 16)
    assert int(cluster_id, 16) == int(ctl.cluster_id(), 16)
    assert [m["name"] for m in etcd["status"]["members"]] == ["etcd-one-0"]

    # Memory: the node's own processes and one member pod (etcd-wrapper + etcd, backup-restore, pause).
    node = real_cluster.cp.node
    assert node is not None
    for name in ("containerd", "kubelet", "kube-proxy", "coredns"):
        figures[f"RSS {name}, MiB"] = rss_mib([p.pid for p in [node.processes[name]] if p.pid is not None])
    pids = pod_pids(pods[0]["metadata"]["uid"])
    assert pids, "the member pod's processes are in its cgroup"
    figures["RSS of one member pod (all its processes), MiB"] = rss_mib(pids)
