"""The Defragmentation EtcdOpsTask through the real controller and API server, members faked on loopback.

The EtcdOpsTask controller runs in-process against the control plane; the Etcd and its three pods are created
directly (no Etcd controller, no kubelet: the pods' podIP and Ready condition are written through the status
subresource) and point at :class:`~druid.testing.fake_etcd_gateway.FakeEtcdMembers`. Shows that the CRD takes the
new config, that ``status.steps`` and ``status.defragmentation`` survive the API server's schema (pruning would
drop them), and that the task ends Succeeded with the leader last after a move.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from druid.api import constants as c
from druid.api import names
from druid.backuprestore import BackupRestoreClient
from druid.controllers.opstask.handlers import ETCDS
from druid.controllers.opstask.reconciler import OPS_TASKS
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import PODS, Obj
from druid.runtime.reflector import ReflectorConfig
from druid.testing.controlplane import ControlPlane
from druid.testing.fake_etcd_gateway import MB, FakeEtcdMembers
from druid.testing.operator import ops_task_controller
from druid.testing.wait import eventually

pytestmark = pytest.mark.apiserver

FAST = ReflectorConfig(backoff_initial=0.1, backoff_max=1.0)
LOOPBACK = "127.0.0.1"
NAME = "etcd-d"


@pytest.fixture
async def members() -> AsyncIterator[FakeEtcdMembers]:
    async with FakeEtcdMembers(3) as fake:
        yield fake


@pytest.fixture
async def kube(control_plane: ControlPlane, crds: list[str], namespace: str) -> AsyncIterator[Kube]:
    """A client, with the EtcdOpsTask controller running (confined to the namespace) while the test runs."""
    async with ops_task_controller(str(control_plane.kubeconfig), namespace, BackupRestoreClient()) as k:
        yield k


async def three_pods(kube: Kube, namespace: str, members: FakeEtcdMembers) -> None:
    spec = {"replicas": 3, "labels": {"app": NAME}, "etcd": {"clientPort": members.port}, "backup": {}}
    meta = {"name": NAME, "namespace": namespace}
    await kube.create(ETCDS, {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD, "metadata": meta, "spec": spec})
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i, ip in enumerate(members.ips):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{NAME}-{i}", "namespace": namespace, "labels": names.default_labels(NAME)},
            "spec": {"containers": [{"name": "etcd", "image": "etcd"}]},
        }
        await kube.create(PODS, pod)
        status = {"podIP": ip, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}
        await kube.merge_patch(PODS, f"{NAME}-{i}", {"status": status}, namespace, subresource="status")


async def create_task(kube: Kube, namespace: str, name: str, config: dict[str, Any]) -> None:
    meta = {"name": name, "namespace": namespace}
    spec = {"etcdName": NAME, "config": {"defragmentation": config}}
    body = {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD_OPS_TASK, "metadata": meta, "spec": spec}
    await kube.create(OPS_TASKS, body)


async def finished(kube: Kube, namespace: str, name: str) -> Obj:
    async def probe() -> Obj | None:
        task = await kube.get(OPS_TASKS, name, namespace)
        return task if (task.get("status") or {}).get("state") in ("Succeeded", "Failed", "Rejected") else None

    result: Obj = await eventually(probe, timeout=60, what=f"task {name} finished")
    return result


async def test_defragmentation_task_runs_leader_last_and_keeps_its_status(
    kube: Kube, namespace: str, members: FakeEtcdMembers
) -> None:
    await three_pods(kube, namespace, members)
    await create_task(kube, namespace, "defrag", {"timeoutSecondsPerMember": 30})
    task = await finished(kube, namespace, "defrag")
    status = task["status"]
    assert status["state"] == "Succeeded", status
    assert [name for name, *_ in members.calls] == ["defragment", "defragment", "transfer", "defragment"]
    assert members.calls[-1] == ("defragment", 101, 202), "the former leader last, after the move"
    assert [s["name"] for s in status["steps"]] == [
        f"Defragment/{NAME}-1",
        f"Defragment/{NAME}-2",
        f"MoveLeader/{NAME}-0",
        f"Defragment/{NAME}-0",
    ]
    last = status["steps"][-1]
    assert last["details"]["dbSizeBefore"] == str(40 * MB) and last["details"]["dbSizeAfter"] == str(4 * MB)
    assert status["defragmentation"] == {
        "leaderBefore": f"{NAME}-0",
        "leaderMovedTo": f"{NAME}-1",
        "defragmented": [f"{NAME}-1", f"{NAME}-2", f"{NAME}-0"],
    }
    assert status["lastOperation"]["description"] == "Defragmented 3 members, skipped 0"


async def test_the_api_server_refuses_a_threshold_out_of_range(kube: Kube, namespace: str) -> None:
    with pytest.raises(ApiError) as refused:
        await create_task(kube, namespace, "bad", {"fragmentationThresholdPercent": 100})
    assert refused.value.status == 422
