"""Enabling peer TLS on a running three-member cluster: every member ends up serving peer TLS, and the cluster
never loses quorum on the way: a write probe keeps writing through the client Service, and the Etcd's Ready
condition never turns False."""

from __future__ import annotations

import asyncio

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS
from druid.testing.etcds import etcd_manifest, tls
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, WriteProbe, conditions, etcdctl_for, until, wait_etcd
from druid.testing.samples import tls_secrets
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-peer"


async def test_enabling_peer_tls_rolls_members_without_losing_quorum(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    for secret in tls_secrets(NAME, ns):
        await rkube.create(SECRETS, secret)
    await rkube.create(ETCDS, etcd_manifest(NAME, ns, 3))
    await wait_etcd(rkube, ns, NAME, timeout=480)
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, NAME)
    await until(lambda: ctl.put("/e2e/before", "1"), timeout=30, what="a write before the rollout")
    assert all(url.startswith("http://") for m in ctl.members() for url in m["peerURLs"])

    probe = WriteProbe(ctl)
    probe.thread.start()
    ready_false: list[dict[str, object]] = []
    clock = Stopwatch()
    try:
        patch = {"spec": {"etcd": {"peerUrlTls": tls(f"{NAME}-peer", client=False)}}}
        await rkube.merge_patch(ETCDS, NAME, patch, ns)

        async def rolled_out() -> bool:
            etcd = await rkube.get(ETCDS, NAME, ns)
            if conditions(etcd).get(c.CONDITION_READY) == "False":
                ready_false.append(etcd["status"])
            members = await asyncio.to_thread(ctl.members)
            if not all(url.startswith("https://") for m in members for url in m["peerURLs"]):
                return False
            return bool(conditions(etcd).get(c.CONDITION_ALL_MEMBERS_READY) == "True" and etcd["status"].get("ready"))

        await eventually(rolled_out, timeout=600, what="all members serving peer TLS, all Ready", interval=1)
        figures["peer TLS enabled on 3 members: patch -> all https + Ready, s"] = clock()
    finally:
        probe.stop.set()
        await asyncio.to_thread(probe.thread.join, 10)
    figures["peer TLS rollout: writes ok / failed, longest gap s"] = (
        f"{probe.writes} / {probe.failures}, {probe.longest_gap:.1f}"
    )
    assert not ready_false, f"Ready went False during the rollout: {ready_false[0]}"
    assert probe.writes > 0
    assert probe.longest_gap < 15, f"writes stalled for {probe.longest_gap:.1f}s: quorum was lost"
    assert len(ctl.members()) == 3
