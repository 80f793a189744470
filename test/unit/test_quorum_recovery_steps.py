"""Quorum-loss recovery: admission, the pure step machine (against a simulated world that answers late, loses
writes and is re-read from scratch each poll), the ConfigMap rewrite, and refusals through the real reconciler
that change nothing."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as hs

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTaskSpec, QuorumLossRecoveryConfig
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.components import configmap
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.controllers.opstask import handlers as h
from druid.controllers.opstask import quorumrecovery as q
from druid.controllers.opstask.reconciler import OpsTaskReconciler
from druid.controllers.opstask.status import record_step
from druid.runtime.objects import STATEFULSETS, Obj, ObjectKey
from druid.testing.etcds import etcd_manifest
from druid.testing.fakekube import FakeKube

NOW = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def etcd_obj(
    *,
    store: bool = True,
    ready: str | None = "False",
    since: dt.timedelta = dt.timedelta(minutes=30),
    annotations: dict[str, str] | None = None,
    replicas: int = 3,
) -> Obj:
    backup = {"store": {"provider": "Local", "container": "bucket", "prefix": "p"}} if store else {}
    obj = etcd_manifest("main", "ns", replicas, annotations=annotations, backup=backup)
    obj["metadata"]["uid"] = "uid-main"
    if ready is not None:
        obj["status"] = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "QuorumLost" if ready == "False" else "Quorate",
                    "message": "m",
                    "lastTransitionTime": _ts(NOW - since),
                    "lastUpdateTime": _ts(NOW),
                }
            ]
        }
    return obj


def refusal(obj: Obj, config: QuorumLossRecoveryConfig | None = None, task: str = "rec") -> q.Refusal | None:
    return q.admission(Etcd.model_validate(obj), config or QuorumLossRecoveryConfig(), task, NOW)


# ---------------------------------------------------------------------------------------------- admission


def test_admission_needs_a_backup_store() -> None:
    found = refusal(etcd_obj(store=False))
    assert found is not None and found.code == h.ERR_BACKUP_NOT_ENABLED and "NoBackupStore" in found.message


@pytest.mark.parametrize("ready", [None, "True"])
def test_admission_refuses_while_quorum_is_not_lost(ready: str | None) -> None:
    found = refusal(etcd_obj(ready=ready), QuorumLossRecoveryConfig(force=True))
    assert found is not None and found.code == q.ERR_QUORUM_NOT_LOST and "QuorumNotLost" in found.message


def test_admission_waits_for_the_minimum_loss_duration_unless_forced() -> None:
    recent = etcd_obj(since=dt.timedelta(minutes=4))
    found = refusal(recent)
    assert found is not None and found.code == q.ERR_QUORUM_NOT_LOST
    assert "4m0s only, less than minQuorumLossDuration 10m0s" in found.message
    assert refusal(recent, QuorumLossRecoveryConfig(min_quorum_loss_duration="3m")) is None
    assert refusal(recent, QuorumLossRecoveryConfig(force=True)) is None
    assert refusal(etcd_obj(since=dt.timedelta(minutes=10))) is None


def test_admission_refuses_a_hold_of_someone_else_and_accepts_its_own() -> None:
    held = etcd_obj(annotations={c.ANNOTATION_SUSPEND_SPEC_RECONCILE: "true"})
    found = refusal(held)
    assert found is not None and found.code == q.ERR_RECONCILE_SUSPENDED
    own = etcd_obj(annotations={c.ANNOTATION_SUSPEND_SPEC_RECONCILE: q.hold_value("rec")})
    assert refusal(own) is None


def test_admission_refuses_a_hibernated_etcd() -> None:
    found = refusal(etcd_obj(replicas=0), QuorumLossRecoveryConfig(force=True))
    assert found is not None and found.code == q.ERR_ETCD_HIBERNATED


def test_data_loss_window_runs_from_the_last_snapshot_to_the_loss_of_quorum() -> None:
    obj = etcd_obj(since=dt.timedelta(minutes=30))
    delta = {"spec": {"renewTime": "2026-12-03T19:20:00.000000Z"}}
    full = {"spec": {"renewTime": "2026-12-03T19:00:00.000000Z"}}
    assert q.data_loss_window(obj, [delta, full, None]) == {
        "start": "2026-12-03T19:20:00.000000Z",
        "end": "2026-12-03T19:30:00Z",
    }
    assert q.data_loss_window(obj, [None]) == {"end": "2026-12-03T19:30:00Z"}


# ---------------------------------------------------------------------------------------------- the config rewrite


def test_single_member_config_keeps_everything_but_the_other_members() -> None:
    etcd = Etcd.model_validate(etcd_obj())
    text = configmap.render(
        etcd, BuildOptions(images=Images(etcd_wrapper="w:1", etcd_backup_restore="b:1", alpine="a:1"))
    )
    out = yaml.safe_load(q.single_member_config(text, "main-0"))
    before = yaml.safe_load(text)
    assert len(before["initial-cluster"].split(",")) == 3
    assert out["initial-cluster"] == "main-0=http://main-0.main-peer.ns.svc:2380"
    assert list(out["initial-advertise-peer-urls"]) == ["main-0"] and list(out["advertise-client-urls"]) == ["main-0"]
    assert out["enable-grpc-gateway"] is True
    changed = {"initial-cluster", "initial-advertise-peer-urls", "advertise-client-urls", "enable-grpc-gateway"}
    assert {k: v for k, v in out.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}
    assert q.config_members(q.single_member_config(text, "main-0")) == ("main-0",)
    assert q.config_members(text) == ("main-0", "main-1", "main-2")


# ---------------------------------------------------------------------------------------------- the step machine

PLAN = q.Plan(task="rec", etcd="main", namespace="ns", replicas=3, member0="main-0", pod0="main-0")
MINE = q.hold_value("rec")


def broken_world() -> q.World:
    """Quorum lost for good: member 0 runs alone, 1 and 2 crash-loop on empty volumes."""
    return q.World(
        now=NOW,
        sts_replicas=3,
        pods={"main-0": False, "main-1": False, "main-2": False},
        pvcs=("main-main-0", "main-main-1", "main-main-2"),
        leases=("main-0", "main-1", "main-2"),
        config_members=("main-0", "main-1", "main-2"),
    )


class Sim:
    """A cluster that carries out the handler's actions a little later (``lag`` polls) and checks invariants."""

    def __init__(self, lag: int, reconcile_running: bool = False) -> None:
        self.w = broken_world()
        self.w = replace(self.w, reconcile_running=reconcile_running)
        self.lag = lag
        self.pending: list[tuple[int, Any]] = []
        self.tick = 0
        self.verified = False
        self.acted: list[str] = []

    def later(self, change: Any) -> None:
        self.pending.append((self.tick + self.lag, change))

    def act(self, step: str) -> None:
        self.acted.append(step)
        w = self.w
        if step == q.HOLD:
            self.w = replace(w, holder=MINE)
            self.later(lambda w: replace(w, reconcile_running=False))
        elif step == q.SCALE_TO_ZERO:
            self.w = replace(w, sts_replicas=0)
            self.later(lambda w: replace(w, pods={}))
        elif step == q.REMOVE_VOLUMES:
            assert not w.pods and w.sts_replicas == 0, "volumes removed while members may run"
            assert w.holder == MINE
            self.later(lambda w: replace(w, pvcs=(), leases=()))
        elif step == q.SINGLE_MEMBER_CONFIG:
            assert not w.pods
            self.w = replace(w, config_members=("main-0",))
        elif step == q.RESTORE_ONE:
            assert w.config_members == ("main-0",) and not w.pvcs, "scaled to 1 before the data was gone"
            self.w = replace(w, sts_replicas=1)
            self.later(lambda w: replace(w, pods={"main-0": True}, restored=q.Restored(77, 0xABC, 0x1, ("main-0",))))
        elif step == q.RELEASE:
            assert self.verified, "released before Verify succeeded"
            assert w.holder == MINE, "released a hold it does not own"
            self.w = replace(w, holder=None)
            self.later(lambda w: replace(w, sts_replicas=3, config_members=("main-0", "main-1", "main-2")))
            self.later(
                lambda w: replace(
                    w,
                    pods=dict.fromkeys(("main-0", "main-1", "main-2"), True),
                    etcd_ready=True,
                    all_members_ready=True,
                    status_members=3,
                )
            )

    def advance(self) -> None:
        self.tick += 1
        self.w = replace(self.w, now=self.w.now + dt.timedelta(seconds=q.POLL))
        due = [p for p in self.pending if p[0] <= self.tick]
        self.pending = [p for p in self.pending if p[0] > self.tick]
        for _, change in due:
            self.w = change(self.w)


def run_machine(sim: Sim, steps: list[dict[str, Any]] | None = None, limit: int = 200) -> list[dict[str, Any]]:
    steps = list(steps or [])
    for _ in range(limit):
        decision = q.decide(PLAN, steps, sim.w)
        if decision is None:
            return steps
        assert decision.kind != "fail", decision.message
        if decision.kind == "done":
            if decision.step == q.VERIFY:
                sim.verified = True
            steps = record_step(steps, decision.step, "Succeeded", sim.w.now, decision.message)
        else:
            if decision.kind == "act":
                sim.act(decision.step)
            steps = record_step(steps, decision.step, "InProgress", sim.w.now, decision.message)
        sim.advance()
    raise AssertionError(f"no end after {limit} polls: {steps}")


@settings(max_examples=40, deadline=None)
@given(lag=hs.integers(min_value=0, max_value=5), running=hs.booleans())
def test_steps_run_in_order_and_keep_the_invariants(lag: int, running: bool) -> None:
    sim = Sim(lag, running)
    steps = run_machine(sim)
    assert [s["name"] for s in steps] == list(q.STEPS)
    assert all(s["state"] == "Succeeded" and s["startedAt"] <= s["finishedAt"] for s in steps)
    assert sim.w.holder is None


@settings(max_examples=30, deadline=None)
@given(lag=hs.integers(min_value=0, max_value=4), cut=hs.integers(min_value=1, max_value=60))
def test_a_restart_resumes_from_the_recorded_steps(lag: int, cut: int) -> None:
    """Stop after ``cut`` polls, forget everything but status.steps and the world, and go on: same end."""
    sim = Sim(lag)
    steps: list[dict[str, Any]] = []
    for _ in range(cut):
        decision = q.decide(PLAN, steps, sim.w)
        if decision is None:
            break
        if decision.kind == "done":
            sim.verified = sim.verified or decision.step == q.VERIFY
            steps = record_step(steps, decision.step, "Succeeded", sim.w.now)
        else:
            if decision.kind == "act":
                sim.act(decision.step)
            steps = record_step(steps, decision.step, "InProgress", sim.w.now)
        sim.advance()
    steps = run_machine(sim, copy.deepcopy(steps))
    assert [s["name"] for s in steps] == list(q.STEPS)


def test_a_removed_hold_fails_the_task_and_keeps_nothing_released() -> None:
    sim = Sim(0)
    steps: list[dict[str, Any]] = []
    while q.current_step(steps) != q.REMOVE_VOLUMES:
        decision = q.decide(PLAN, steps, sim.w)
        assert decision is not None
        if decision.kind == "act":
            sim.act(decision.step)
        steps = record_step(steps, decision.step, "Succeeded" if decision.kind == "done" else "InProgress", sim.w.now)
        sim.advance()
    decision = q.decide(PLAN, steps, replace(sim.w, holder=None))
    assert decision is not None and decision.kind == "fail" and decision.step == q.REMOVE_VOLUMES
    assert "was removed" in decision.message and "stays held" in decision.message


def test_member_data_is_never_touched_while_a_pod_runs() -> None:
    steps = [{"name": n, "state": "Succeeded"} for n in (q.HOLD, q.SCALE_TO_ZERO)]
    world = replace(broken_world(), holder=MINE, sts_replicas=0, pods={"main-1": False})
    decision = q.decide(PLAN, steps, world)
    assert decision is not None and decision.kind == "fail" and "refusing to touch member data" in decision.message


def test_a_step_past_its_deadline_fails_and_says_what_to_do() -> None:
    steps = [{"name": n, "state": "Succeeded"} for n in q.STEPS[:4]]
    steps = record_step(steps, q.RESTORE_ONE, "InProgress", NOW)
    world = replace(broken_world(), holder=MINE, sts_replicas=1, pods={"main-0": False}, pvcs=(), leases=())
    assert q.decide(PLAN, steps, replace(world, now=NOW + dt.timedelta(minutes=14))).kind == "wait"  # type: ignore[union-attr]
    decision = q.decide(PLAN, steps, replace(world, now=NOW + dt.timedelta(minutes=16)))
    assert decision is not None and decision.kind == "fail"
    assert "backup-restore container's log of pod 0" in decision.message and "stays held" in decision.message


def test_verify_refuses_a_member_that_is_not_alone_or_empty() -> None:
    steps = [{"name": n, "state": "Succeeded"} for n in q.STEPS[:5]]
    world = replace(broken_world(), holder=MINE, sts_replicas=1, pods={"main-0": True}, pvcs=(), leases=())
    two = q.decide(PLAN, steps, replace(world, restored=q.Restored(5, 1, 1, ("main-0", "main-1"))))
    empty = q.decide(PLAN, steps, replace(world, restored=q.Restored(0, 1, 1, ("main-0",))))
    waiting = q.decide(PLAN, steps, replace(world, restored=q.Restored(error="connection refused")))
    assert two is not None and two.kind == "fail" and empty is not None and empty.kind == "fail"
    assert waiting is not None and waiting.kind == "wait" and "connection refused" in waiting.message


def test_release_leaves_a_replaced_hold_alone() -> None:
    steps = [{"name": n, "state": "Succeeded"} for n in q.STEPS[:6]]
    decision = q.decide(PLAN, steps, replace(broken_world(), holder="true"))
    assert decision is not None and decision.kind == "fail" and "someone else's hold" in decision.message


# ---------------------------------------------------------------------------------------------- through the reconciler


def recovery_task(name: str = "rec", **config: Any) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"etcdName": "main", "config": {"quorumLossRecovery": config}},
    }


class Clock:
    def now(self) -> dt.datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0


def reconciler(kube: FakeKube) -> OpsTaskReconciler:
    deps = h.HandlerDeps(kube)
    registry = h.default_registry()

    def factory(d: h.HandlerDeps, ref: h.TaskRef) -> h.Handler:
        return q.QuorumLossRecoveryHandler(d, ref, clock=Clock())  # type: ignore[arg-type]

    registry.register(q.QUORUM_LOSS_RECOVERY, factory)
    return OpsTaskReconciler(kube, deps, registry, requeue_interval=15, clock=Clock())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("etcd", "config", "code", "reason"),
    [
        (etcd_obj(store=False), {"force": True}, h.ERR_BACKUP_NOT_ENABLED, "NoBackupStore"),
        (etcd_obj(ready="True"), {"force": True}, q.ERR_QUORUM_NOT_LOST, "QuorumNotLost"),
        (etcd_obj(since=dt.timedelta(minutes=1)), {}, q.ERR_QUORUM_NOT_LOST, "less than minQuorumLossDuration"),
        (None, {"force": True}, h.ERR_GET_ETCD, "EtcdNotFound"),
    ],
)
async def test_refusals_write_nothing_but_the_task(
    etcd: Obj | None, config: dict[str, Any], code: str, reason: str
) -> None:
    kube = FakeKube()
    if etcd is not None:
        kube.add(ETCDS, etcd)
    kube.add(
        STATEFULSETS,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "main", "namespace": "ns"},
            "spec": {"replicas": 3},
        },
    )
    kube.add(ETCD_OPS_TASKS, recovery_task(**config))
    await reconciler(kube).reconcile(ObjectKey("ns", "rec"), kube.object(ETCD_OPS_TASKS, "rec", "ns"))
    status = kube.object(ETCD_OPS_TASKS, "rec", "ns")["status"]
    assert status["state"] == "Rejected", status
    assert status["lastErrors"][-1]["code"] == code and reason in status["lastOperation"]["description"]
    assert {path.split("/")[-2] for _, path in kube.writes() if "etcdopstasks" not in path} == set()


async def test_a_second_task_for_the_same_etcd_is_rejected_without_writes() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd_obj())
    other = recovery_task("snap")
    other["spec"]["config"] = {"onDemandSnapshot": {"type": "full"}}
    other["status"] = {"state": "InProgress"}
    kube.add(ETCD_OPS_TASKS, other)
    kube.add(ETCD_OPS_TASKS, recovery_task(force=True))
    await reconciler(kube).reconcile(ObjectKey("ns", "rec"), kube.object(ETCD_OPS_TASKS, "rec", "ns"))
    status = kube.object(ETCD_OPS_TASKS, "rec", "ns")["status"]
    assert status["state"] == "Rejected" and status["lastErrors"][-1]["code"] == h.ERR_DUPLICATE_TASK
    assert not [w for w in kube.writes() if "etcdopstasks" not in w[1]]


async def test_admission_records_the_evidence_and_the_first_poll_holds_reconciliation() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd_obj())
    kube.add(ETCD_OPS_TASKS, recovery_task(force=True))
    rec = reconciler(kube)
    action = await rec.reconcile(ObjectKey("ns", "rec"), kube.object(ETCD_OPS_TASKS, "rec", "ns"))
    status = kube.object(ETCD_OPS_TASKS, "rec", "ns")["status"]
    assert status["state"] == "InProgress"
    assert status["quorumLossRecovery"] == {"originalReplicas": 3, "dataLossWindow": {"end": "2026-12-03T19:30:00Z"}}
    assert status["steps"][0]["name"] == q.HOLD and status["steps"][0]["state"] == "InProgress"
    etcd = kube.object(ETCDS, "main", "ns")
    assert etcd["metadata"]["annotations"][c.ANNOTATION_SUSPEND_SPEC_RECONCILE] == "EtcdOpsTask/rec"
    assert action.requeue_after == q.POLL


async def test_release_removes_only_its_own_hold_and_asks_for_a_reconcile() -> None:
    kube = FakeKube()
    kube.add(ETCDS, etcd_obj(annotations={c.ANNOTATION_SUSPEND_SPEC_RECONCILE: q.hold_value("rec")}))
    steps: list[dict[str, Any]] = []
    for name in q.STEPS[: q.STEPS.index(q.RELEASE)]:
        steps = record_step(steps, name, "Succeeded", NOW)
    spec = EtcdOpsTaskSpec.model_validate(recovery_task(force=True)["spec"])
    status = {"steps": steps, "quorumLossRecovery": {"originalReplicas": 3}}
    handler = q.QuorumLossRecoveryHandler(h.HandlerDeps(kube), h.TaskRef("ns", "rec", spec, status), clock=Clock())  # type: ignore[arg-type]
    result = await handler.execute()
    annotations = kube.object(ETCDS, "main", "ns")["metadata"]["annotations"]
    assert c.ANNOTATION_SUSPEND_SPEC_RECONCILE not in annotations
    assert annotations[c.ANNOTATION_OPERATION] == c.OPERATION_RECONCILE
    assert result.requeue and result.status is not None and result.status["steps"][-1]["name"] == q.RELEASE
    # someone else's hold is left alone and the task fails
    kube.add(ETCDS, etcd_obj(annotations={c.ANNOTATION_SUSPEND_SPEC_RECONCILE: "true"}))
    result = await handler.execute()
    assert result.error is not None and "someone else's hold" in result.description
    assert kube.object(ETCDS, "main", "ns")["metadata"]["annotations"][c.ANNOTATION_SUSPEND_SPEC_RECONCILE] == "true"
