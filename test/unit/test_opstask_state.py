"""I57/I58/I60: the EtcdOpsTask state machine, pure and through the reconciler against an in-memory API."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

import pytest
from aiohttp import web

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTaskSpec
from druid.components.errors import DruidError
from druid.controllers.opstask import handlers as h
from druid.controllers.opstask import status as st
from druid.controllers.opstask.reconciler import OpsTaskReconciler
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj, ObjectKey, ResourceRef
from druid.runtime.reconcile import Action
from druid.runtime.statuswriter import apply_merge_patch

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ERR = DruidError("ERR_X", "Execution", "boom")


# ---------------------------------------------------------------------------------------------- pure


def test_i57_set_state_records_transitions_and_started_at_once() -> None:
    status: dict[str, Any] = {}
    st.set_state(status, c.TASK_PENDING, T0)
    assert status == {"state": "Pending", "lastTransitionTime": "2026-01-02T03:04:05Z"}
    st.set_state(status, c.TASK_IN_PROGRESS, T0 + dt.timedelta(seconds=1))
    assert status["startedAt"] == status["lastTransitionTime"] == "2026-01-02T03:04:06Z"
    st.set_state(status, c.TASK_IN_PROGRESS, T0 + dt.timedelta(seconds=5))  # unchanged state: no transition
    assert status["lastTransitionTime"] == "2026-01-02T03:04:06Z"
    st.set_state(status, c.TASK_SUCCEEDED, T0 + dt.timedelta(seconds=9))
    assert status["startedAt"] == "2026-01-02T03:04:06Z" and status["lastTransitionTime"] == "2026-01-02T03:04:14Z"


def test_i59_last_errors_keep_three_newest() -> None:
    status: dict[str, Any] = {}
    for i in range(5):
        st.append_error(status, DruidError(f"ERR_{i}", "Execution", f"m{i}", RuntimeError(f"c{i}")), T0)
    assert [e["code"] for e in status["lastErrors"]] == ["ERR_2", "ERR_3", "ERR_4"]
    assert status["lastErrors"][-1] == {
        "code": "ERR_4",
        "description": "[Operation: Execution, Code: ERR_4] message: m4, cause: c4",
        "observedAt": "2026-01-02T03:04:05Z",
    }


def test_i57_last_operation_and_default_description() -> None:
    out = st.apply(None, st.Update(st.Operation("Admit", "InProgress")), task_name="t", run_id="r", now=T0)
    assert out == {
        "lastOperation": {
            "type": "Admit",
            "state": "InProgress",
            "description": "Admit is in state InProgress for task t",
            "runID": "r",
            "lastUpdateTime": "2026-01-02T03:04:05Z",
        }
    }


@pytest.mark.parametrize(
    ("phase", "result", "op_state", "state", "next_step"),
    [
        ("Admit", st.Result("ok"), "Completed", None, "continue"),
        ("Admit", st.Result("no", ERR), "Failed", "Rejected", "ttl"),
        ("Admit", st.Result("later", requeue=True), "InProgress", None, "requeue"),
        ("Execution", st.Result("ok"), "Completed", "Succeeded", "ttl"),
        ("Execution", st.Result("no", ERR), "Failed", "Failed", "ttl"),
        ("Execution", st.Result("retry", ERR, requeue=True), "InProgress", None, "retry"),
        ("Cleanup", st.Result("ok"), "InProgress", None, "continue"),
        ("Cleanup", st.Result("no", ERR), "Failed", None, "fail"),
    ],
)
def test_i57_outcome(phase: str, result: st.Result, op_state: str, state: str | None, next_step: str) -> None:
    update, got = st.outcome(phase, result)
    assert got == next_step
    assert update.operation == st.Operation(phase, op_state, result.description)
    assert update.state == state
    assert update.error is result.error


def test_i60_time_to_expiry() -> None:
    status = {"lastTransitionTime": "2026-01-02T03:04:05Z"}
    assert st.time_to_expiry(status, 10, T0 + dt.timedelta(seconds=4)) == 6
    assert st.time_to_expiry(status, 10, T0 + dt.timedelta(seconds=40)) == 0
    assert st.time_to_expiry({}, 10, T0) == 0


# ---------------------------------------------------------------------------------------------- reconciler


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def monotonic(self) -> float:
        return (self.t - T0).total_seconds()

    def now(self) -> dt.datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


class FakeKube:
    """EtcdOpsTasks in memory: resourceVersion checks, finalizers, deletion."""

    def __init__(self) -> None:
        self.objs: dict[str, Obj] = {}
        self.rv = 0
        self.list_error: ApiError | None = None

    def add(self, obj: Obj) -> Obj:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"].update(resourceVersion=str(self.rv), generation=1)
        self.objs[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)

    def _bump(self, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            del self.objs[obj["metadata"]["name"]]
        return copy.deepcopy(obj)

    def _current(self, name: str, rv: str | None) -> Obj:
        if name not in self.objs:
            raise ApiError(404, "NotFound", f"{name} not found")
        obj = self.objs[name]
        if rv is not None and rv != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return obj

    async def replace(self, res: ResourceRef, obj: Obj, *, subresource: str | None = None) -> Obj:
        assert subresource == "status"
        cur = self._current(obj["metadata"]["name"], obj["metadata"]["resourceVersion"])
        cur["status"] = copy.deepcopy(obj["status"])
        return self._bump(cur)

    async def merge_patch(
        self, res: ResourceRef, name: str, body: Obj, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        cur = self._current(name, body["metadata"].get("resourceVersion"))
        if subresource == "status":
            cur["status"] = apply_merge_patch(cur.get("status") or {}, body["status"])
        else:
            cur["metadata"]["finalizers"] = body["metadata"]["finalizers"]
        return self._bump(cur)

    async def list(self, res: ResourceRef, namespace: str | None = None) -> Obj:
        if self.list_error is not None:
            raise self.list_error
        return {"items": copy.deepcopy(list(self.objs.values()))}

    async def delete(self, res: ResourceRef, name: str, namespace: str | None = None) -> bool:
        if name not in self.objs:
            return False
        obj = self.objs[name]
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-01-02T03:04:05Z"
            obj["metadata"]["generation"] += 1
            self._bump(obj)
        else:
            del self.objs[name]
        return True


class Scripted:
    """A handler whose results are queued by the test."""

    def __init__(self) -> None:
        self.admits: list[st.Result] = []
        self.executes: list[st.Result] = []
        self.calls: list[str] = []

    async def admit(self) -> st.Result:
        self.calls.append("admit")
        return self.admits.pop(0) if self.admits else st.Result("Admit check passed")

    async def execute(self) -> st.Result:
        self.calls.append("execute")
        return self.executes.pop(0) if self.executes else st.Result("Snapshot created successfully")

    async def cleanup(self) -> st.Result:
        self.calls.append("cleanup")
        return st.Result("Cleanup completed")


def task(name: str = "snap", etcd: str = "main", ttl: int = 60) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"etcdName": etcd, "ttlSecondsAfterFinished": ttl, "config": {"onDemandSnapshot": {"type": "full"}}},
    }


@pytest.fixture
def env() -> tuple[FakeKube, Scripted, FakeClock, OpsTaskReconciler]:
    kube, handler, clock = FakeKube(), Scripted(), FakeClock()
    registry = h.HandlerRegistry()
    registry.register(h.ON_DEMAND_SNAPSHOT, lambda deps, ref: handler)
    rec = OpsTaskReconciler(kube, h.HandlerDeps(kube), registry, requeue_interval=15, clock=clock)  # type: ignore[arg-type]
    return kube, handler, clock, rec


Env = tuple[FakeKube, Scripted, FakeClock, OpsTaskReconciler]


async def run(kube: FakeKube, rec: OpsTaskReconciler, name: str = "snap", obj: Obj | None = None) -> Action:
    current = obj if obj is not None else copy.deepcopy(kube.objs.get(name))
    return await rec.reconcile(ObjectKey("ns", name), current)


async def test_i57_pending_admit_in_progress_succeeded(env: Env) -> None:
    kube, handler, clock, rec = env
    kube.add(task())
    action = await run(kube, rec)
    obj = kube.objs["snap"]
    status = obj["status"]
    assert obj["metadata"]["finalizers"] == ["druid.gardener.cloud/etcd-ops-task"]
    assert status["state"] == "Succeeded" and status["startedAt"] == "2026-01-02T03:04:05Z"
    assert status["lastOperation"]["type"] == "Execution" and status["lastOperation"]["state"] == "Completed"
    assert status["lastOperation"]["description"] == "Snapshot created successfully"
    assert handler.calls == ["admit", "execute"]
    assert action == Action.requeue(60)
    # TTL not reached: wait for the rest of it; nothing written
    clock.t += dt.timedelta(seconds=20)
    before = copy.deepcopy(obj)
    assert await run(kube, rec) == Action.requeue(40)
    assert kube.objs["snap"] == before
    # TTL reached: cleanup, finalizer removed, task deleted
    clock.t += dt.timedelta(seconds=40)
    assert await run(kube, rec) == Action.done()
    assert "snap" not in kube.objs and handler.calls[-1] == "cleanup"


async def test_i57_admit_rejection_and_cleanup_skipped(env: Env) -> None:
    kube, handler, _, rec = env
    kube.add(task())
    handler.admits.append(
        st.Result("Etcd is not ready", DruidError("ERR_ETCD_NOT_READY", "Admit", "etcd is not ready"))
    )
    assert await run(kube, rec) == Action.requeue(60)
    status = kube.objs["snap"]["status"]
    assert status["state"] == "Rejected" and "startedAt" not in status
    assert status["lastOperation"]["type"] == "Admit" and status["lastOperation"]["state"] == "Failed"
    assert [e["code"] for e in status["lastErrors"]] == ["ERR_ETCD_NOT_READY"]
    assert handler.calls == ["admit"]
    # a user delete is handled at once, and cleanup is skipped for a rejected task
    await kube.delete(ResourceRef("", "", "", ""), "snap")
    deleting = copy.deepcopy(kube.objs["snap"])
    assert await run(kube, rec, obj=deleting) == Action.done()
    assert "snap" not in kube.objs and "cleanup" not in handler.calls


async def test_i57_execution_failure(env: Env) -> None:
    kube, handler, _, rec = env
    kube.add(task())
    handler.executes.append(st.Result("Failed to create snapshot", DruidError("ERR_CREATE_SNAPSHOT", "Execution", "x")))
    await run(kube, rec)
    status = kube.objs["snap"]["status"]
    assert status["state"] == "Failed" and status["startedAt"]
    assert status["lastOperation"]["state"] == "Failed"
    assert status["lastErrors"][0]["code"] == "ERR_CREATE_SNAPSHOT"


async def test_i59_requeue_with_error_stays_in_progress(env: Env) -> None:
    kube, handler, clock, rec = env
    kube.add(task())
    for _ in range(5):
        handler.executes.append(st.Result("Failed to execute HTTP request", ERR, requeue=True))
    for _ in range(5):
        assert await run(kube, rec) == Action.retry()
        clock.t += dt.timedelta(seconds=1)
    status = kube.objs["snap"]["status"]
    assert status["state"] == "InProgress" and status["startedAt"] == "2026-01-02T03:04:05Z"
    assert status["lastOperation"] == {
        "type": "Execution",
        "state": "InProgress",
        "description": "Failed to execute HTTP request",
        "runID": "",
        "lastUpdateTime": "2026-01-02T03:04:09Z",
    }
    assert len(status["lastErrors"]) == 3
    assert handler.calls == ["admit", *["execute"] * 5]
    assert await run(kube, rec) == Action.requeue(60)  # the sixth attempt succeeds
    assert kube.objs["snap"]["status"]["state"] == "Succeeded"


async def test_i57_requeue_without_error_uses_requeue_interval(env: Env) -> None:
    kube, handler, _, rec = env
    kube.add(task())
    handler.executes.append(st.Result("waiting", requeue=True))
    assert await run(kube, rec) == Action.requeue(15)
    assert "lastErrors" not in kube.objs["snap"]["status"]


async def test_i58_duplicate_and_permission_rejections(env: Env) -> None:
    kube, _, _, rec = env
    kube.add(task("first"))
    kube.objs["first"]["status"] = {"state": "InProgress"}
    kube.add(task("done"))
    kube.objs["done"]["status"] = {"state": "Succeeded"}
    kube.add(task("other-etcd", etcd="other"))
    kube.add(task("second"))
    await run(kube, rec, "second")
    status = kube.objs["second"]["status"]
    assert status["state"] == "Rejected"
    assert status["lastOperation"]["description"] == "EtcdOpsTask for the same etcd is already in progress"
    assert status["lastErrors"][0]["code"] == "ERR_DUPLICATE_TASK"
    assert "(task: first)" in status["lastErrors"][0]["description"]
    kube.add(task("third", etcd="third"))
    kube.list_error = ApiError(403, "Forbidden", "no")
    await run(kube, rec, "third")
    assert kube.objs["third"]["status"]["lastErrors"][0]["code"] == "ERR_INSUFFICIENT_PERMISSIONS"


async def test_i57_stale_cache_uses_last_written_object(env: Env) -> None:
    kube, handler, _, rec = env
    created = kube.add(task())
    handler.executes.append(st.Result("waiting", requeue=True))
    await run(kube, rec, obj=created)
    # the informer has not seen any of druid's writes yet: reconcile again from the creation-time object
    assert await run(kube, rec, obj=created) == Action.requeue(60)
    assert kube.objs["snap"]["status"]["state"] == "Succeeded"


# ------------------------------------------------------------------------------------- OnDemandSnapshot handler


def etcd_obj(*, tls: bool = False, port: int | None = None, ready: bool = True) -> Obj:
    backup: dict[str, Any] = {"store": {"provider": "Local", "container": "bucket", "prefix": "p"}}
    if port is not None:
        backup["port"] = port
    if tls:
        backup["tls"] = {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "srv"}}
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": "main", "namespace": "ns", "uid": "etcd-uid"},
        "spec": {"replicas": 1, "labels": {"a": "b"}, "etcd": {}, "backup": backup},
        "status": {
            "conditions": [
                {
                    **cond,
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                    "lastUpdateTime": "2026-01-02T03:04:05Z",
                    "reason": "r",
                    "message": "m",
                }
                for cond in status["conditions"]
            ]
        },
    }


class ReadKube:
    """Reads (Etcd, StatefulSet, Secret) from a dict keyed by plural/name."""

    def __init__(self, objs: dict[str, Obj]) -> None:
        self.objs = objs

    async def get(self, res: ResourceRef, name: str, namespace: str | None = None) -> Obj:
        obj = self.objs.get(f"{res.plural}/{name}")
        if obj is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
        return obj

    async def get_or_none(self, res: ResourceRef, name: str, namespace: str | None = None) -> Obj | None:
        return self.objs.get(f"{res.plural}/{name}")


def snapshot_handler(
    objs: dict[str, Obj], kind: str = "full", url: str = "http://127.0.0.1:1"
) -> h.OnDemandSnapshotHandler:
    spec = EtcdOpsTaskSpec.model_validate({"etcdName": "main", "config": {"onDemandSnapshot": {"type": kind}}})
    deps = h.HandlerDeps(ReadKube(objs), lambda etcd: url)  # type: ignore[arg-type]
    return h.OnDemandSnapshotHandler(deps, h.TaskRef("ns", "t", spec))


def test_i59_default_endpoint() -> None:
    assert h.default_backup_restore_endpoint(Etcd.model_validate(etcd_obj())) == "http://main-client.ns:8080"
    tls = Etcd.model_validate(etcd_obj(tls=True, port=9999))
    assert h.default_backup_restore_endpoint(tls) == "https://main-client.ns:9999"


async def test_i58_handler_admit_checks() -> None:
    assert (await snapshot_handler({}).admit()).error.code == "ERR_GET_ETCD"  # type: ignore[union-attr]
    not_ready = await snapshot_handler({"etcds/main": etcd_obj(ready=False)}).admit()
    assert not_ready.error is not None and not_ready.error.code == "ERR_ETCD_NOT_READY" and not not_ready.requeue
    no_store = etcd_obj()
    del no_store["spec"]["backup"]["store"]
    result = await snapshot_handler({"etcds/main": no_store}).admit()
    assert result.error is not None and result.error.code == "ERR_BACKUP_NOT_ENABLED"
    assert await snapshot_handler({"etcds/main": etcd_obj()}).admit() == st.Result("Admit check passed")


def sts(owner_uid: str = "etcd-uid", volume: bool = True) -> Obj:
    volumes = [{"name": "backup-restore-ca", "secret": {"secretName": "mounted"}}] if volume else []
    return {
        "metadata": {"name": "main", "ownerReferences": [{"kind": "Etcd", "uid": owner_uid, "controller": True}]},
        "spec": {"template": {"spec": {"volumes": volumes}}},
    }


def secret(**data: str) -> Obj:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.mark.parametrize(
    ("objs", "code", "requeue"),
    [
        ({}, "ERR_GET_STATEFULSET", False),
        ({"statefulsets/main": sts(owner_uid="other")}, "ERR_GET_STATEFULSET", False),
        ({"statefulsets/main": sts(volume=False)}, "ERR_GET_CA_SECRET", False),
        ({"statefulsets/main": sts()}, "ERR_GET_CA_SECRET", False),
        (
            {"statefulsets/main": sts(), "secrets/mounted": secret(**{"ca.crt": "x"})},
            "ERR_CA_DATA_KEY_NOT_FOUND",
            False,
        ),
        (
            {"statefulsets/main": sts(), "secrets/mounted": secret(**{"bundle.crt": "junk"})},
            "ERR_APPEND_CA_CERTS",
            False,
        ),
    ],
)
async def test_i59_tls_ca_resolution_errors(objs: dict[str, Obj], code: str, requeue: bool) -> None:
    result = await snapshot_handler({"etcds/main": etcd_obj(tls=True), **objs}).execute()
    assert result.error is not None and result.error.code == code and result.requeue == requeue
    assert result.error.operation == "Execution"


async def test_i59_delta_null_means_skipped() -> None:
    app = web.Application()

    async def null(request: web.Request) -> web.Response:
        return web.Response(text="null")

    app.router.add_post("/snapshot/delta", null)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        handler = snapshot_handler({"etcds/main": etcd_obj()}, "delta", f"http://127.0.0.1:{port}")
        assert await handler.execute() == st.Result("Delta snapshot was skipped by backup-restore server")
    finally:
        await runner.cleanup()


async def test_i59_connection_refused_requeues() -> None:
    result = await snapshot_handler({"etcds/main": etcd_obj()}).execute()
    assert result.requeue and result.error is not None and result.error.code == "ERR_EXECUTE_HTTP_REQUEST"
    assert 'cause: Post "http://127.0.0.1:1/snapshot/full": ' in result.error.description()


async def test_i57_add_ops_task_controller_wiring() -> None:
    from kubernetes_asyncio import client
    from prometheus_client import CollectorRegistry

    from druid.config.operator import OperatorConfiguration
    from druid.controllers.opstask.setup import add_ops_task_controller
    from druid.runtime.manager import Manager
    from druid.runtime.ratelimit import ItemExponentialFailureRateLimiter

    kube = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    manager = Manager(kube, registry=CollectorRegistry())
    try:
        config = OperatorConfiguration.model_validate({"controllers": {"etcdOpsTask": {"concurrentSyncs": 5}}})
        controller = add_ops_task_controller(manager, config, backup_restore_endpoint=lambda etcd: "http://x")
        assert manager.controllers == [controller]
        assert controller.name == "etcdopstask-controller" and controller.workers == 5
        limiter = controller.queue._limiter
        assert isinstance(limiter, ItemExponentialFailureRateLimiter)
        assert [limiter.when("k") for _ in range(3)] == [0.01, 0.02, 0.04]
        assert max(limiter.when("k") for _ in range(20)) == 15.0
        assert controller.reconciler.deps.endpoint(None) == "http://x"  # type: ignore[attr-defined]
        assert [i.name for i in manager.informers] == ["etcdopstasks.druid.gardener.cloud/v1alpha1"]
    finally:
        await kube.close()
