"""The verified-restore schedule: when the next verification is due, and the task the scheduler creates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.controllers.opstask import restoreschedule as rs
from druid.runtime.clock import rfc3339
from druid.runtime.metrics import REGISTRY
from druid.runtime.objects import ObjectKey
from druid.testing.fakekube import FakeKube

NS, NAME = "shoot--dev", "etcd-main"
T0 = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()


def etcd(schedule: str | None = "0 */6 * * *", *, ready: bool = True, verified: str | None = None) -> dict[str, Any]:
    def condition(ctype: str, status: str, at: str) -> dict[str, Any]:
        return {"type": ctype, "status": status, "lastTransitionTime": at, "lastUpdateTime": at, "reason": "r",
                "message": "m"}  # fmt: skip

    conditions = [condition("Ready", "True" if ready else "False", rfc3339(T0 - dt.timedelta(days=1)))]
    if verified is not None:
        conditions.append(condition(rs.CONDITION_TYPE, "True", verified))
    annotations = {rs.ANNOTATION_SCHEDULE: schedule} if schedule is not None else {}
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": "u1",
            "annotations": annotations,
            "creationTimestamp": rfc3339(T0 - dt.timedelta(days=1)),
        },
        "spec": {
            "replicas": 3,
            "labels": {"a": "b"},
            "etcd": {},
            "backup": {"store": {"provider": "Local", "container": "bucket", "prefix": "p"}},
        },
        "status": {"conditions": conditions},
    }


def test_next_run_is_the_first_tick_after_the_last_run() -> None:
    six = T0 - dt.timedelta(hours=2)  # 18:00, a tick
    assert rs.next_run("0 */6 * * *", six) == six + dt.timedelta(hours=6)
    assert rs.next_run("0 */6 * * *", six - dt.timedelta(minutes=1)) == six
    assert rs.next_run("*/5 * * * *", T0 + dt.timedelta(seconds=1)) == T0 + dt.timedelta(minutes=5)


def test_last_run_is_the_latest_of_verification_and_scheduled_task() -> None:
    obj = etcd(verified=rfc3339(T0 - dt.timedelta(hours=2)))
    task = {"metadata": {"creationTimestamp": rfc3339(T0 - dt.timedelta(hours=1))}}
    assert rs.last_run(obj, []) == T0 - dt.timedelta(hours=2)
    assert rs.last_run(obj, [task]) == T0 - dt.timedelta(hours=1)
    assert rs.last_run(etcd(), []) == T0 - dt.timedelta(days=1)  # never verified: since creation


@pytest.mark.parametrize(("schedule", "ok"), [("0 */6 * * *", True), ("@daily", False), ("61 * * * *", False)])
def test_schedule_validity(schedule: str, ok: bool) -> None:
    assert rs.valid(schedule) is ok


async def reconcile(kube: FakeKube, now: dt.datetime) -> Any:
    reconciler = rs.RestoreScheduleReconciler(kube, FixedClock(now))
    obj = kube.object(ETCDS, NAME, NS)
    return await reconciler.reconcile(ObjectKey(NS, NAME), obj)


async def test_overdue_etcd_gets_one_task_then_waits_for_it() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd(verified=rfc3339(T0 - dt.timedelta(hours=7))))
    action = await reconcile(kube, T0)
    (task,) = kube.objects(ETCD_OPS_TASKS, NS)
    assert task["metadata"]["name"] == f"{NAME}-verify-202612031800"  # the tick after the last verification
    assert task["metadata"]["labels"] == {rs.LABEL_SCHEDULED: NAME}
    assert task["spec"] == {"etcdName": NAME, "config": {"verifiedRestore": {}}}
    assert action.requeue_after == rs.BUSY_RETRY
    # The task is not finished yet: nothing new (its creation also moved the last run past the tick).
    await reconcile(kube, T0 + dt.timedelta(minutes=1))
    assert len(kube.objects(ETCD_OPS_TASKS, NS)) == 1


async def test_not_due_requeues_at_the_next_tick() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd(verified=rfc3339(T0 - dt.timedelta(hours=1))))
    action = await reconcile(kube, T0)
    assert not kube.objects(ETCD_OPS_TASKS, NS)
    assert action.requeue_after == 4 * 3600  # verified at 19:00, next tick 00:00


@pytest.mark.parametrize("obj", [etcd(None), etcd("not a cron"), etcd(ready=False)])
async def test_nothing_for_unscheduled_invalid_or_unready(obj: dict[str, Any]) -> None:
    kube = FakeKube()
    kube.add(ETCDS, obj)
    await reconcile(kube, T0)
    assert not kube.objects(ETCD_OPS_TASKS, NS)
    assert not [w for w in kube.writes() if "etcdopstasks" in w[1]]


async def test_another_unfinished_task_defers_the_verification() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd())
    other = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": "snap", "namespace": NS, "creationTimestamp": rfc3339(T0 - dt.timedelta(days=2))},
        "spec": {"etcdName": NAME, "config": {"onDemandSnapshot": {"type": "full"}}},
        "status": {"state": "InProgress"},
    }
    kube.add(ETCD_OPS_TASKS, other)
    action = await reconcile(kube, T0)
    assert [t["metadata"]["name"] for t in kube.objects(ETCD_OPS_TASKS, NS)] == ["snap"]
    assert action.requeue_after == rs.BUSY_RETRY


async def test_a_true_condition_restores_the_last_success_metric() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd(verified=rfc3339(T0 - dt.timedelta(hours=1))))
    reconciler = rs.RestoreScheduleReconciler(kube, FixedClock(T0))
    await reconciler.reconcile(ObjectKey(NS, NAME), kube.object(ETCDS, NAME, NS))
    labels = {"namespace": NS, "etcd": NAME}
    value = REGISTRY.get_sample_value("druid_verified_restore_last_success_timestamp_seconds", labels)
    assert value == (T0 - dt.timedelta(hours=1)).timestamp()
