"""The Defragmentation task's I/O shell against FakeKube and fake etcd JSON gateways on loopback addresses
(:class:`~druid.testing.fake_etcd_gateway.FakeEtcdMembers`: IDs 101, 202, 303, the first leading). The
handler is built anew for every call from the status the previous call returned, as the reconciler does, so
resuming is what every step does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from druid.api import constants as c
from druid.api import names
from druid.api.opstask import EtcdOpsTaskSpec, EtcdOpsTaskStatus
from druid.api.resources import ETCDS
from druid.backuprestore import BackupRestoreClient
from druid.controllers.opstask.defragmentation import DefragmentationHandler
from druid.controllers.opstask.handlers import HandlerDeps, TaskRef, default_registry
from druid.runtime.objects import PODS
from druid.testing.fake_etcd_gateway import FakeEtcdMembers
from druid.testing.fakekube import FakeKube

NS, NAME = "ns", "etcd-x"
MB = 1 << 20


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeKube, FakeEtcdMembers, BackupRestoreClient]]:
    async with FakeEtcdMembers(3) as cluster:
        kube = FakeKube()
        spec = {"replicas": 3, "labels": {"app": NAME}, "etcd": {"clientPort": cluster.port}, "backup": {}}
        kube.add(ETCDS, {"metadata": {"name": NAME, "namespace": NS}, "spec": spec})
        for i, ip in enumerate(cluster.ips):
            pod = {"metadata": {"name": f"{NAME}-{i}", "namespace": NS, "labels": names.default_labels(NAME)}}
            kube.add(PODS, {**pod, "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}})
        client = BackupRestoreClient()
        try:
            yield kube, cluster, client
        finally:
            await client.close()


def task(config: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> TaskRef:
    spec = EtcdOpsTaskSpec.model_validate({"etcdName": NAME, "config": {"defragmentation": config or {}}})
    return TaskRef(NS, "defrag", spec, status or {})


async def drive(kube: FakeKube, client: BackupRestoreClient, config: dict[str, Any] | None = None) -> Any:
    """Call execute until it no longer requeues; the last result and the status it built."""
    status: dict[str, Any] = {}
    for _ in range(40):
        handler = default_registry().handler(HandlerDeps(kube, client), task(config, status))
        assert isinstance(handler, DefragmentationHandler)
        result = await handler.execute()
        status = {**status, **(result.status or {})}
        if not result.requeue:
            return result, status
    raise AssertionError(f"no end: {status}")


async def test_followers_then_move_then_former_leader_with_sizes_in_steps(world: Any) -> None:
    kube, cluster, client = world
    result, status = await drive(kube, client)
    assert result.error is None and result.description == "Defragmented 3 members, skipped 0"
    assert cluster.calls == [
        ("defragment", 202, 101),
        ("defragment", 303, 101),
        ("transfer", 101, 101),
        ("defragment", 101, 202),
    ]
    names = [s["name"] for s in status["steps"]]
    assert names == [f"Defragment/{NAME}-1", f"Defragment/{NAME}-2", f"MoveLeader/{NAME}-0", f"Defragment/{NAME}-0"]
    for step in status["steps"]:
        assert step["state"] == "Succeeded"
        if step["name"].startswith("Defragment/"):
            d = step["details"]
            assert (d["dbSizeBefore"], d["dbSizeAfter"], d["freed"]) == (str(40 * MB), str(4 * MB), str(36 * MB))
    assert status["defragmentation"] == {
        "leaderBefore": f"{NAME}-0",
        "leaderMovedTo": f"{NAME}-1",
        "defragmented": [f"{NAME}-1", f"{NAME}-2", f"{NAME}-0"],
    }
    EtcdOpsTaskStatus.model_validate(status)  # what is recorded fits the CRD's schema


async def test_threshold_skips_a_member_and_a_skipped_leader_is_not_moved(world: Any) -> None:
    kube, cluster, client = world
    cluster.sizes[101] = [40 * MB, 38 * MB]  # the leader: 5 % free
    cluster.sizes[303] = [40 * MB, 30 * MB]  # 25 % free
    result, status = await drive(kube, client, {"fragmentationThresholdPercent": 20})
    assert result.description == "Defragmented 2 members, skipped 1"
    assert cluster.calls == [("defragment", 202, 101), ("defragment", 303, 101)]
    assert status["defragmentation"]["skipped"] == [f"{NAME}-0"]
    skipped = status["steps"][-1]
    assert skipped["state"] == "Skipped" and skipped["details"]["fragmentationPercent"] == "5"


async def test_a_failing_member_is_retried_then_the_task_fails(world: Any) -> None:
    kube, cluster, client = world
    cluster.fail_defrag = 5
    result, status = await drive(kube, client)
    assert result.error is not None and result.error.code == "ERR_DEFRAGMENT" and not result.requeue
    step = status["steps"][-1]
    assert step["name"] == f"Defragment/{NAME}-1" and step["state"] == "Failed"
    assert step["details"]["attempts"] == "3"
    assert [call for call, *_ in cluster.calls] == ["defragment"] * 3


async def test_a_not_ready_member_makes_three_wait_for_quorum(world: Any) -> None:
    kube, cluster, client = world
    pod = kube.object(PODS, f"{NAME}-2", NS)
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    kube.add(PODS, pod)
    handler = DefragmentationHandler(HandlerDeps(kube, client), task())
    result = await handler.execute()
    assert result.requeue and result.error is None
    assert result.description.startswith("WaitingForQuorum") and f"{NAME}-2" in result.description
    assert cluster.calls == []


async def test_admit_rejects_a_gateway_turned_off(world: Any) -> None:
    kube, _, client = world
    etcd = kube.object(ETCDS, NAME, NS)
    etcd["spec"]["etcd"]["enableGRPCGateway"] = False
    kube.add(ETCDS, etcd)
    result = await DefragmentationHandler(HandlerDeps(kube, client), task()).admit()
    assert result.error is not None and result.error.code == "ERR_GATEWAY_DISABLED" and not result.requeue
    assert c.OPERATION_TYPE_ADMIT == result.error.operation
