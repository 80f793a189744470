"""Status tells the truth about real members: freeze one member of three (all its containers, as if its machine
hung) and that member goes Unknown/NotReady and AllMembersReady False within the configured thresholds while
Ready stays True (quorum); freeze a second and Ready goes False; thaw both and everything is True again.
The fault-to-status times are reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, conditions, etcdctl_for, until, wait_etcd
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-truth"


def member(etcd: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in (etcd.get("status") or {}).get("members") or [] if m["name"] == name)


async def test_one_then_two_members_stop_status_follows_and_recovers(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    node = real_cluster.cp.node
    assert node is not None
    clock = Stopwatch()
    await rkube.create(ETCDS, etcd_manifest(NAME, ns, 3))
    await wait_etcd(rkube, ns, NAME, timeout=480)
    figures["3 members (no TLS): create -> Ready, s"] = clock()
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, NAME)
    await until(lambda: ctl.put("/e2e/before", "1"), timeout=30, what="a write before the faults")

    # Thresholds from the operator configuration (unknown 15 s, not ready 15 s; the sidecar renews every 10 s).
    frozen: list[list[str]] = []
    try:
        clock = Stopwatch()
        frozen.append(node.freeze(ns, f"{NAME}-2"))

        async def one_down() -> dict[str, Any] | None:
            etcd = await rkube.get(ETCDS, NAME, ns)
            conds = conditions(etcd)
            if (
                member(etcd, f"{NAME}-2")["status"] != c.MEMBER_READY
                and conds[c.CONDITION_ALL_MEMBERS_READY] == "False"
            ):
                return etcd
            return None

        etcd = await eventually(one_down, timeout=60, what="member 2 not Ready, AllMembersReady False", interval=0.5)
        figures["1 of 3 frozen -> member not Ready + AllMembersReady False, s"] = clock()
        assert conditions(etcd)[c.CONDITION_READY] == "True", etcd["status"]
        assert member(etcd, f"{NAME}-0")["status"] == c.MEMBER_READY
        # Quorum holds: the cluster still takes writes.
        await until(lambda: ctl.put("/e2e/one-down", "1"), timeout=30, what="a write with one member down")

        async def not_ready() -> bool:
            return member(await rkube.get(ETCDS, NAME, ns), f"{NAME}-2")["status"] == c.MEMBER_NOT_READY

        await eventually(not_ready, timeout=60, what="member 2 NotReady", interval=0.5)
        figures["1 of 3 frozen -> member NotReady, s"] = clock()
        etcd = await rkube.get(ETCDS, NAME, ns)
        assert conditions(etcd)[c.CONDITION_READY] == "True", etcd["status"]

        clock = Stopwatch()
        frozen.append(node.freeze(ns, f"{NAME}-1"))

        async def quorum_lost() -> bool:
            return conditions(await rkube.get(ETCDS, NAME, ns))[c.CONDITION_READY] == "False"

        await eventually(quorum_lost, timeout=60, what="Ready False with two of three frozen", interval=0.5)
        figures["2 of 3 frozen -> Ready False, s"] = clock()
    finally:
        for ids in frozen:
            node.thaw(ids)
    clock = Stopwatch()
    await wait_etcd(rkube, ns, NAME, timeout=120, what="recovered")
    figures["thaw -> Ready and AllMembersReady True, s"] = clock()
    await until(lambda: ctl.get("/e2e/one-down") == "1", timeout=30, what="the write made with one member down")
    await asyncio.to_thread(ctl.put, "/e2e/after", "1")
