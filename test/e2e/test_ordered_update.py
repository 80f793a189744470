"""Druid-ordered, quorum-aware member updates (``OrderedMemberUpdate`` gate) on real etcd pods.

1. Three members, member 0's etcd frozen (all its containers, as if its machine hung), a pod-template change
   applied with the reconcile annotation while a write probe writes through the client Service:
   - gate on: druid replaces member 0 first and the leader last (after moving leadership to an updated
     follower), every member ends at the StatefulSet's update revision, and writes stall at most for a short
     leader-change blip (bounded, reported);
   - gate off (the StatefulSet's own RollingUpdate, as etcd-druid): the same scenario; its write failures are
     reported as the baseline that shows the hazard (nothing is asserted about them).
2. Three members with two frozen and a template change: druid deletes no pod (UIDs unchanged over several
   reconciles after the status says why) and the Etcd's MemberUpdate condition says WaitingForQuorum, naming
   the frozen members.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.config import features
from druid.runtime.client import Kube
from druid.runtime.objects import EVENTS, PODS, STATEFULSETS
from druid.testing.etcdctl import Etcdctl
from druid.testing.etcds import annotate_reconcile, condition, etcd_manifest
from druid.testing.realcluster import RealCluster, operator_config
from druid.testing.realetcd import (
    Stopwatch,
    WriteProbe,
    conditions,
    etcdctl_for,
    member_pods,
    pod_ready,
    until,
    wait_etcd,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-order"
REVISION_LABEL = "controller-revision-hash"
BLIP_BOUND = 10.0  # seconds without a successful write allowed with the gate on
BASELINE_WINDOW = 240.0  # gate off: how long the StatefulSet may roll with member 0 frozen before it is thawed


@pytest.fixture
def gate(real_cluster: RealCluster) -> Any:
    """``gate(on)``: restart druid with OrderedMemberUpdate on/off; the default configuration is put back after."""
    changed: list[bool] = []

    def set_gate(on: bool) -> None:
        gates = {features.ORDERED_MEMBER_UPDATE: True} if on else None
        real_cluster.restart_druid(operator_config(feature_gates=gates))
        changed.append(on)

    yield set_gate
    if changed and changed[-1]:
        real_cluster.restart_druid(operator_config())


@pytest.fixture
async def frozen(real_cluster: RealCluster) -> AsyncIterator[list[list[str]]]:
    """Containers frozen by the test; thawed (where they still exist) afterwards."""
    node = real_cluster.cp.node
    assert node is not None
    ids: list[list[str]] = []
    yield ids
    for group in ids:
        try:
            node.thaw(group)
        except RuntimeError:
            pass  # the pod was replaced: its containers are gone


def uids(pods: list[dict[str, Any]]) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


async def three_members(rkube: Kube, real_cluster: RealCluster, ns: str) -> Etcdctl:
    await rkube.create(ETCDS, etcd_manifest(NAME, ns, 3))
    # AllMembersUpdated too: the StatefulSet's template can change once after creation, which with the gate on
    # is itself an ordered roll; the scenario starts from a settled cluster.
    want = {c.CONDITION_READY: "True", c.CONDITION_ALL_MEMBERS_READY: "True", c.CONDITION_ALL_MEMBERS_UPDATED: "True"}
    await wait_etcd(rkube, ns, NAME, timeout=600, **want)
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, NAME)
    await until(lambda: ctl.put("/e2e/before", "1"), timeout=30, what="a write before the roll")
    return ctl


async def freeze_member(real_cluster: RealCluster, rkube: Kube, ns: str, ordinal: int, frozen: list[list[str]]) -> None:
    """Freeze member ``ordinal`` and wait until its pod is not Ready and its status member not Ready."""
    node = real_cluster.cp.node
    assert node is not None
    pod = f"{NAME}-{ordinal}"
    frozen.append(node.freeze(ns, pod))

    async def down() -> bool:
        etcd = await rkube.get(ETCDS, NAME, ns)
        member = next(m for m in etcd["status"].get("members") or [] if m["name"] == pod)
        return member["status"] != c.MEMBER_READY and not pod_ready(await rkube.get(PODS, pod, ns))

    await eventually(down, timeout=90, what=f"{pod} frozen: pod and member not Ready", interval=1)


def _hex(value: Any) -> str:
    return f"{value:x}" if isinstance(value, int) else str(value).lower()


def leader_name(ctl: Etcdctl) -> str | None:
    """The leader's member name as the reachable members see it."""
    members = {_hex(m["ID"]): m.get("name") for m in ctl.members()}
    for status in ctl.status():
        leader = status.get("Status", {}).get("leader")
        if leader is not None:
            return members.get(_hex(leader))
    return None


async def change_template(rkube: Kube, ns: str) -> None:
    """A pod-template change (a pod annotation), applied with the reconcile annotation."""
    await annotate_reconcile(rkube, ns, NAME, spec={"annotations": {"e2e.druid/roll": str(time.time())}})


async def wait_rolled(
    rkube: Kube, ns: str, before: dict[str, str], timeout: float, replaced: list[str] | None = None
) -> list[str]:
    """Wait until every pod was replaced, runs the update revision and the Etcd is Ready again; the pods in the
    order they were replaced (continuing ``replaced``)."""
    replaced = [] if replaced is None else replaced

    async def rolled() -> bool:
        pods = await member_pods(rkube, ns, NAME)
        for name, pod_uid in uids(pods).items():
            if name in before and pod_uid != before[name] and name not in replaced:
                replaced.append(name)
        sts = await rkube.get(STATEFULSETS, NAME, ns)
        revision = (sts.get("status") or {}).get("updateRevision")
        if len(replaced) < len(before) or not revision:
            return False
        if any((p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision for p in pods):
            return False
        if not all(pod_ready(p) for p in pods):
            return False
        etcd = await rkube.get(ETCDS, NAME, ns)
        return conditions(etcd).get(c.CONDITION_READY) == "True"

    await eventually(rolled, timeout=timeout, what="every member replaced, updated and Ready", interval=0.5)
    return replaced


async def events(rkube: Kube, ns: str, reason: str) -> list[dict[str, Any]]:
    items = (await rkube.list(EVENTS, ns))["items"]
    found = [e for e in items if e.get("reason") == reason and e["involvedObject"].get("name") == NAME]
    return sorted(found, key=lambda e: e.get("firstTimestamp") or "")


async def member_0_frozen_with_probe(
    real_cluster: RealCluster, rkube: Kube, ns: str, frozen: list[list[str]]
) -> tuple[str | None, dict[str, str], WriteProbe]:
    """Three settled members, member 0 frozen, a write probe started: the leader, the pod UIDs, the probe."""
    ctl = await three_members(rkube, real_cluster, ns)
    await freeze_member(real_cluster, rkube, ns, 0, frozen)
    leader = await asyncio.to_thread(leader_name, ctl)
    before = uids(await member_pods(rkube, ns, NAME))
    probe = WriteProbe(ctl)
    probe.thread.start()
    return leader, before, probe


async def one_frozen_roll(
    real_cluster: RealCluster, rkube: Kube, ns: str, frozen: list[list[str]]
) -> tuple[list[str], str | None, WriteProbe, float]:
    leader, before, probe = await member_0_frozen_with_probe(real_cluster, rkube, ns, frozen)
    clock = Stopwatch()
    try:
        await change_template(rkube, ns)
        order = await wait_rolled(rkube, ns, before, timeout=900)
        took = clock()
    finally:
        probe.stop.set()
        await asyncio.to_thread(probe.thread.join, 10)
    return order, leader, probe, took


async def test_gate_on_replaces_frozen_member_first_and_leader_last(
    real_cluster: RealCluster, rkube: Kube, ns: str, gate: Any, frozen: list[list[str]], figures: dict[str, object]
) -> None:
    await asyncio.to_thread(gate, True)
    order, leader, probe, took = await one_frozen_roll(real_cluster, rkube, ns, frozen)
    transfers = await events(rkube, ns, "LeadershipTransferred")
    replaced = await events(rkube, ns, "MemberReplaced")
    figures["ordered roll (gate on), 1 of 3 frozen: order, leader before"] = f"{order}, {leader}"
    figures["ordered roll (gate on): template change -> all updated + Ready, s"] = took
    figures["ordered roll (gate on): writes ok / failed, longest gap s"] = (
        f"{probe.writes} / {probe.failures}, {probe.longest_gap:.1f}"
    )
    print(
        f"\ngate on: order {order}, leader before the roll {leader}, {took}s, writes {probe.writes} ok / "
        f"{probe.failures} failed, longest gap {probe.longest_gap:.1f}s"
    )
    print("events:", [e["message"] for e in replaced + transfers])
    assert order[0] == f"{NAME}-0", order
    assert replaced and replaced[0]["message"].startswith(f"replacing unhealthy member {NAME}-0"), replaced
    assert transfers, "no leadership transfer recorded"
    moved_from = transfers[-1]["message"].split()[3]
    assert order[-1] == moved_from, (order, transfers[-1]["message"])
    if leader is not None:
        assert order[-1] == leader, f"the leader before the roll ({leader}) was not replaced last: {order}"
    assert probe.writes > 0
    assert probe.longest_gap < BLIP_BOUND, f"writes stalled for {probe.longest_gap:.1f}s"
    etcd = await rkube.get(ETCDS, NAME, ns)
    assert condition(etcd, c.CONDITION_MEMBER_UPDATE)["reason"] == "UpToDate", etcd["status"]
    sts = await rkube.get(STATEFULSETS, NAME, ns)
    assert sts["spec"]["updateStrategy"]["type"] == "OnDelete"


async def test_gate_off_baseline_statefulset_rolling_update_with_a_frozen_member(
    real_cluster: RealCluster, rkube: Kube, ns: str, gate: Any, frozen: list[list[str]], figures: dict[str, object]
) -> None:
    """The same scenario under the StatefulSet's own RollingUpdate. What the StatefulSet controller does with
    a frozen member is observed, not assumed: for up to BASELINE_WINDOW seconds the roll may proceed; then
    member 0 is thawed (if its pod still exists) and the roll must finish."""
    await asyncio.to_thread(gate, False)
    leader, before, probe = await member_0_frozen_with_probe(real_cluster, rkube, ns, frozen)
    clock = Stopwatch()
    replaced: list[str] = []
    try:
        await change_template(rkube, ns)
        deadline = time.monotonic() + BASELINE_WINDOW

        async def rolled_or_window_over() -> bool:
            for name, pod_uid in uids(await member_pods(rkube, ns, NAME)).items():
                if pod_uid != before.get(name) and name not in replaced:
                    replaced.append(name)
            return len(replaced) == 3 or time.monotonic() >= deadline

        await eventually(rolled_or_window_over, timeout=BASELINE_WINDOW + 60, what="baseline window", interval=0.5)
        while_frozen = list(replaced)
        gap_while_frozen, failures_while_frozen = probe.longest_gap, probe.failures
        for group in frozen:
            try:
                real_cluster.cp.node.thaw(group)  # type: ignore[union-attr]
            except RuntimeError:
                pass
        frozen.clear()
        order = await wait_rolled(rkube, ns, before, timeout=900, replaced=replaced)
        took = clock()
    finally:
        probe.stop.set()
        await asyncio.to_thread(probe.thread.join, 10)
    figures["RollingUpdate (gate off), 1 of 3 frozen: replaced while frozen, whole order, leader before"] = (
        f"{while_frozen}, {order}, {leader}"
    )
    figures["RollingUpdate (gate off): template change -> all updated + Ready, s (incl. thaw)"] = took
    figures["RollingUpdate (gate off): writes ok / failed, longest gap s (whole run)"] = (
        f"{probe.writes} / {probe.failures}, {probe.longest_gap:.1f}"
    )
    figures["RollingUpdate (gate off): failed writes / longest gap s while member 0 frozen"] = (
        f"{failures_while_frozen}, {gap_while_frozen:.1f}"
    )
    print(
        f"\ngate off: replaced while frozen {while_frozen}, final order {order}, leader before {leader}, {took}s, "
        f"writes {probe.writes} ok / {probe.failures} failed, longest gap {probe.longest_gap:.1f}s "
        f"(while frozen: {failures_while_frozen} failed, gap {gap_while_frozen:.1f}s)"
    )
    # What is true of the baseline: the StatefulSet controller rolled (druid deleted nothing), all pods updated.
    sts = await rkube.get(STATEFULSETS, NAME, ns)
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert sorted(order) == [f"{NAME}-{i}" for i in range(3)]
    assert not await events(rkube, ns, "MemberReplaced")
    etcd = await rkube.get(ETCDS, NAME, ns)
    assert c.CONDITION_MEMBER_UPDATE not in conditions(etcd)


async def test_gate_on_two_frozen_no_pod_is_deleted_and_status_says_why(
    real_cluster: RealCluster, rkube: Kube, ns: str, gate: Any, frozen: list[list[str]], figures: dict[str, object]
) -> None:
    await asyncio.to_thread(gate, True)
    await three_members(rkube, real_cluster, ns)
    await freeze_member(real_cluster, rkube, ns, 0, frozen)
    await freeze_member(real_cluster, rkube, ns, 1, frozen)
    before = uids(await member_pods(rkube, ns, NAME))
    clock = Stopwatch()
    await change_template(rkube, ns)

    async def says_why() -> dict[str, Any] | None:
        etcd = await rkube.get(ETCDS, NAME, ns)
        found = [x for x in etcd["status"].get("conditions") or [] if x["type"] == c.CONDITION_MEMBER_UPDATE]
        return found[0] if found and found[0]["reason"] == "WaitingForQuorum" else None

    cond = await eventually(says_why, timeout=120, what="MemberUpdate WaitingForQuorum", interval=1)
    figures["2 of 3 frozen, template change -> MemberUpdate WaitingForQuorum, s"] = clock()
    print(f"\ncondition: {cond}")
    assert f"{NAME}-0" in cond["message"] and f"{NAME}-1" in cond["message"], cond
    # The StatefulSet has the new revision, so every pod is out of date; druid still deletes none. Watch through
    # several reconciles (status sync period 2 s): wait until a new reconcile has observably run — the
    # StatefulSet reports the new update revision and at least 10 more seconds of druid's reconciles passed.
    sts = await rkube.get(STATEFULSETS, NAME, ns)
    revision = sts["status"]["updateRevision"]
    assert any(
        (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision for p in await member_pods(rkube, ns, NAME)
    )
    deadline = time.monotonic() + 20

    async def window_over_and_unchanged() -> bool:
        now = uids(await member_pods(rkube, ns, NAME))
        assert now == before, f"a pod was replaced while quorum was lost: {before} -> {now}"
        return time.monotonic() >= deadline

    await eventually(window_over_and_unchanged, timeout=60, what="20 s window without a deletion", interval=1)
    warnings = await events(rkube, ns, "WaitingForQuorum")
    assert warnings, "no WaitingForQuorum event"
    etcd = await rkube.get(ETCDS, NAME, ns)
    assert condition(etcd, c.CONDITION_MEMBER_UPDATE)["status"] == "True"
