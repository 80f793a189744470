"""The Defragmentation task's I/O shell against FakeKube and fake etcd JSON gateways on loopback addresses.

Each fake member answers ``/v3/maintenance/status`` (its ID, the shared leader, its sizes),
``/v3/maintenance/defragment`` (its file shrinks to what is in use; the calls are logged, with who led at that
moment) and ``/v3/maintenance/transfer-leadership`` (only on the leader). The handler is built anew for every
call from the status the previous call returned, as the reconciler does, so resuming is what every step does.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from druid.api import constants as c
from druid.api import names
from druid.api.opstask import EtcdOpsTaskSpec, EtcdOpsTaskStatus
from druid.api.resources import ETCDS
from druid.backuprestore import BackupRestoreClient
from druid.controllers.opstask.defragmentation import DefragmentationHandler
from druid.controllers.opstask.handlers import HandlerDeps, TaskRef, default_registry
from druid.runtime.objects import PODS
from druid.testing.fakekube import FakeKube

NS, NAME = "ns", "etcd-x"
MB = 1 << 20
IPS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")


@dataclass
class Cluster:
    leader: int  # member ID of the leader
    sizes: dict[int, list[int]]  # member ID → [dbSize, dbSizeInUse]
    calls: list[tuple[str, int, int]] = field(default_factory=list)  # (call, member, leader at that time)
    fail_defrag: int = 0  # answer the next N defragmentations with 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def member_app(cluster: Cluster, member_id: int) -> web.Application:
    async def status(_: web.Request) -> web.Response:
        size, used = cluster.sizes[member_id]
        body = {"header": {"member_id": str(member_id)}, "leader": str(cluster.leader), "dbSize": str(size)}
        return web.json_response({**body, "dbSizeInUse": str(used)})

    async def defragment(_: web.Request) -> web.Response:
        cluster.calls.append(("defragment", member_id, cluster.leader))
        if cluster.fail_defrag:
            cluster.fail_defrag -= 1
            return web.json_response({"error": "boom"}, status=500)
        cluster.sizes[member_id][0] = cluster.sizes[member_id][1]
        return web.json_response({"header": {}})

    async def transfer(request: web.Request) -> web.Response:
        target = int((await request.json())["targetID"])
        cluster.calls.append(("transfer", member_id, cluster.leader))
        if member_id != cluster.leader:
            return web.json_response({"error": "not leader"}, status=500)
        cluster.leader = target
        return web.json_response({"header": {}})

    app = web.Application()
    app.router.add_post("/v3/maintenance/status", status)
    app.router.add_post("/v3/maintenance/defragment", defragment)
    app.router.add_post("/v3/maintenance/transfer-leadership", transfer)
    return app


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeKube, Cluster, BackupRestoreClient]]:
    port = _free_port()
    ids = (101, 202, 303)
    cluster = Cluster(leader=ids[0], sizes={i: [40 * MB, 4 * MB] for i in ids})
    runners = []
    for ip, member_id in zip(IPS, ids, strict=True):
        runner = web.AppRunner(member_app(cluster, member_id))
        await runner.setup()
        await web.TCPSite(runner, ip, port).start()
        runners.append(runner)
    kube = FakeKube()
    spec = {"replicas": 3, "labels": {"app": NAME}, "etcd": {"clientPort": port}, "backup": {}}
    kube.add(ETCDS, {"metadata": {"name": NAME, "namespace": NS}, "spec": spec})
    labels = names.default_labels(NAME)
    for i, ip in enumerate(IPS):
        ready = [{"type": "Ready", "status": "True"}]
        pod = {"metadata": {"name": f"{NAME}-{i}", "namespace": NS, "labels": labels}}
        kube.add(PODS, {**pod, "status": {"podIP": ip, "conditions": ready}})
    client = BackupRestoreClient()
    try:
        yield kube, cluster, client
    finally:
        await client.close()
        for runner in runners:
            await runner.cleanup()


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
