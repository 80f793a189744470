"""E37 acceptance: member health follows the member leases under kwok, with thresholds shortened through the
operator configuration (unknownThreshold 2 s, notReadyThreshold 3 s, etcdStatusSyncPeriod 1 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.testing.controlplane import ControlPlane
from druid.testing.etcds import condition, etcd_manifest, get_etcd, wait_for_operation
from druid.testing.operator import Operator, fast_config
from druid.testing.sidecar import LeaseRenewer, member_id
from druid.testing.wait import eventually


@pytest.fixture(scope="module")
async def operator(control_plane: ControlPlane, crds: list[str]) -> AsyncIterator[Operator]:
    config = fast_config(status_sync_period="1s", unknown_threshold="2s", not_ready_threshold="3s")
    op = await Operator.start(control_plane.kubeconfig, config)
    yield op
    await op.stop()


def members(etcd: dict) -> list[tuple[str, str, str]]:
    return [(m["name"], m["status"], m["reason"]) for m in (etcd.get("status") or {}).get("members") or ()]


async def test_e37_three_members_ready_then_unknown_then_not_ready(
    operator: Operator, kube: Kube, namespace: str
) -> None:
    ns, n = namespace, "live"
    await kube.create(ETCDS, etcd_manifest(n, ns, 3))
    await wait_for_operation(kube, ns, n, c.OPERATION_STATE_SUCCEEDED, generation=1)
    renewer = LeaseRenewer(kube, n, ns, replicas=3, interval=0.5, leader_ordinal=1, cluster_id="c1")
    renewer.start()
    try:

        async def healthy() -> dict | None:
            etcd = await get_etcd(kube, ns, n)
            ok = (
                condition(etcd, c.CONDITION_READY).get("status") == "True"
                and condition(etcd, c.CONDITION_ALL_MEMBERS_READY).get("status") == "True"
                and etcd["status"].get("ready") is True
            )
            return etcd if ok else None

        etcd = await eventually(healthy, timeout=30, what="Ready=True and AllMembersReady=True")
        assert members(etcd) == [(f"{n}-{i}", "Ready", "LeaseSucceeded") for i in range(3)]
        status = etcd["status"]
        assert [m["role"] for m in status["members"]] == ["Member", "Leader", "Member"]
        assert status["members"][0]["id"] == member_id(f"{n}-0")
        assert condition(etcd, c.CONDITION_READY)["reason"] == "Quorate"
        assert condition(etcd, c.CONDITION_CLUSTER_ID_MISMATCH)["status"] == "False"
        assert status["readyReplicas"] == 3 and status["currentReplicas"] == 3
        assert status["selector"] == f"app.kubernetes.io/managed-by=etcd-druid,app.kubernetes.io/part-of={n}"
        assert [x["type"] for x in status["conditions"]] == sorted(x["type"] for x in status["conditions"])

        # Renewals that change nothing in the status cause no writes at all.
        writes, reconciles, rounds = operator.writes(ns), operator.reconciles(), renewer.rounds

        async def quiet_period() -> bool:
            return operator.reconciles() >= reconciles + 3 and renewer.rounds >= rounds + 4

        with structlog.testing.capture_logs() as logs:
            await eventually(quiet_period, timeout=15, what="renewals and periodic reconciles")
        written = [x for x in logs if x["event"] in ("patched status", "applied", "recorded last operation")]
        assert operator.writes(ns) == writes, f"lease renewals without a status change must not write: {written}"
    finally:
        await renewer.stop()

    # Renewals stop (the sidecars "die"): Unknown after unknownThreshold while the pods still look ready ...
    async def unknown() -> dict | None:
        etcd = await get_etcd(kube, ns, n)
        return etcd if {m[1:] for m in members(etcd)} == {("Unknown", "LeaseExpired")} else None

    etcd = await eventually(unknown, timeout=10, what="members Unknown/LeaseExpired")
    assert condition(etcd, c.CONDITION_ALL_MEMBERS_READY)["status"] == "False"
    assert condition(etcd, c.CONDITION_READY)["status"] == "True"  # Unknown members still count for quorum

    # ... and NotReady once notReadyThreshold has passed as well.
    async def not_ready() -> dict | None:
        etcd = await get_etcd(kube, ns, n)
        return etcd if {m[1:] for m in members(etcd)} == {("NotReady", "UnknownGracePeriodExceeded")} else None

    etcd = await eventually(not_ready, timeout=10, what="members NotReady/UnknownGracePeriodExceeded")
    ready = condition(etcd, c.CONDITION_READY)
    assert (ready["status"], ready["reason"]) == ("False", "QuorumLost")

    # A renewal brings them back at once (the stale lease's renewal is an event druid reacts to).
    renewer.start()
    try:
        await eventually(healthy, timeout=10, what="members Ready again after renewals resume")
    finally:
        await renewer.stop()
