"""Reconcile an EtcdOpsTask (upstream ``etcdopstask/reconcile_task.go``, ``reconcile_delete.go``).

Task flow (not completed, not deleting): add the finalizer ``druid.gardener.cloud/etcd-ops-task`` → no state
yet ⇒ Pending → while Pending, Admit: lastOperation Admit/InProgress, reject a second unfinished task for the
same Etcd (``ERR_DUPLICATE_TASK``; ``ERR_INSUFFICIENT_PERMISSIONS`` when tasks cannot be listed), then the
handler's admit → InProgress (startedAt) → Execution: lastOperation Execution/InProgress, the handler's execute.
Results are mapped by :func:`status.outcome`: requeue after ``requeueInterval`` (or with backoff when an error
came with it), Rejected/Failed/Succeeded then requeue when the TTL expires.

Deletion flow (completed or deleting): a completed task waits until ``lastTransitionTime + ttlSecondsAfterFinished``
unless it is being deleted; then lastOperation Cleanup/InProgress, the handler's cleanup (skipped for Rejected
tasks: Cleanup/Completed), finalizer removed, the task deleted.

Every status change goes through the runtime's status writer: a merge patch of ``/status`` guarded by the
resourceVersion read (a conflict fails the reconcile, which starts again from a fresh copy). The informer
may lag behind druid's own writes; the runtime's expectations tracker replaces a cached object whose
resourceVersion druid has already superseded by the object druid wrote last, so the next step does not
start from stale state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog

from druid.api import constants as c
from druid.api.defaults import DEFAULT_TTL_SECONDS_AFTER_FINISHED
from druid.api.opstask import EtcdOpsTaskSpec
from druid.api.resources import ETCD_OPS_TASKS as OPS_TASKS
from druid.components.errors import DruidError
from druid.controllers.opstask import handlers as h
from druid.controllers.opstask import status as st
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock
from druid.runtime.expectations import Expectations
from druid.runtime.finalizers import ensure_finalizer, remove_finalizer
from druid.runtime.objects import Obj, ObjectKey
from druid.runtime.reconcile import Action
from druid.runtime.statuswriter import update_status

log = structlog.get_logger(__name__)


MIN_REQUEUE = 0.05  # upstream's RequeueAfter(0) would never come back; druid looks again shortly
ADMIT, EXECUTION, CLEANUP = c.OPERATION_TYPE_ADMIT, c.OPERATION_TYPE_EXECUTION, c.OPERATION_TYPE_CLEANUP
IN_PROGRESS = c.OPERATION_STATE_IN_PROGRESS


def _run_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("reconcile_id", ""))


class _Task:
    """The task as last read or written during one reconcile."""

    def __init__(self, key: ObjectKey, obj: Obj) -> None:
        self.key = key
        self.obj = obj
        self.spec = EtcdOpsTaskSpec.model_validate(obj.get("spec") or {})

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.obj.get("status") or {})

    @property
    def ttl(self) -> int:
        return self.spec.ttl_seconds_after_finished or DEFAULT_TTL_SECONDS_AFTER_FINISHED


class OpsTaskReconciler:
    def __init__(
        self,
        kube: Kube,
        deps: h.HandlerDeps,
        registry: h.HandlerRegistry,
        *,
        requeue_interval: float,
        clock: Clock | None = None,
    ) -> None:
        self.kube = kube
        self.deps = deps
        self.registry = registry
        self.requeue_interval = requeue_interval
        self.clock = clock or SystemClock()
        self._expectations: Expectations[ObjectKey] = Expectations(clock=self.clock)

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            self._expectations.forget(key)
            return Action.done()
        task = _Task(key, self._expectations.freshest(key, obj))
        uid = str(task.obj["metadata"].get("uid") or "")
        ref = h.TaskRef(key.namespace or "", key.name, task.spec, task.status, uid)
        handler = self.registry.handler(self.deps, ref)
        try:
            if st.completed(task.status) or task.obj["metadata"].get("deletionTimestamp"):
                return await self._deletion_flow(task, handler)
            return await self._task_flow(task, handler)
        except ApiError as e:
            if e.not_found:  # the task is gone
                return Action.done()
            raise

    # ------------------------------------------------------------------ task flow

    async def _task_flow(self, task: _Task, handler: h.Handler) -> Action:
        await self._set_finalizer(task, add=True)
        if not task.status.get("state"):
            await self._write(task, st.Update(state=c.TASK_PENDING))
        if task.status.get("state") == c.TASK_PENDING:
            action = await self._admit(task, handler)
            if action is not None:
                return action
            await self._write(task, st.Update(state=c.TASK_IN_PROGRESS))
        last = task.status.get("lastOperation") or {}
        if (last.get("type"), last.get("state")) != (EXECUTION, IN_PROGRESS):  # a running task polls without it
            running = st.Operation(EXECUTION, IN_PROGRESS, "Task Execution phase is in Progress")
            await self._write(task, st.Update(running))
        return await self._handle(task, EXECUTION, await handler.execute()) or Action.done()

    async def _admit(self, task: _Task, handler: h.Handler) -> Action | None:
        await self._write(task, st.Update(st.Operation(ADMIT, IN_PROGRESS, "Task Admit phase is in progress")))
        namespace, etcd_name = task.key.namespace, task.spec.etcd_name
        try:
            tasks = (await self.kube.list(OPS_TASKS, namespace)).get("items") or []
        except ApiError as e:
            if e.status not in (401, 403):
                raise
            message = "insufficient permissions to list EtcdOpsTasks"
            error = DruidError(h.ERR_INSUFFICIENT_PERMISSIONS, ADMIT, message, RuntimeError(e.message))
            return await self._reject(task, "Insufficient permissions to list EtcdOpsTasks", error)
        for other in tasks:
            other_name = other["metadata"]["name"]
            other_etcd = (other.get("spec") or {}).get("etcdName")
            if other_etcd is None or etcd_name is None or other_etcd != etcd_name or other_name == task.key.name:
                continue
            if not st.completed(other.get("status")):
                cause = RuntimeError(
                    f"an EtcdOpsTask for etcd {namespace}/{etcd_name} is already present (task: {other_name})"
                )
                error = DruidError(h.ERR_DUPLICATE_TASK, ADMIT, "duplicate task found", cause)
                return await self._reject(task, "EtcdOpsTask for the same etcd is already in progress", error)
        return await self._handle(task, ADMIT, await handler.admit())

    async def _reject(self, task: _Task, description: str, error: DruidError) -> Action:
        op = st.Operation(ADMIT, c.OPERATION_STATE_FAILED, description)
        await self._write(task, st.Update(op, c.TASK_REJECTED, error))
        log.info("task rejected", code=error.code)
        return self._after_ttl(task)

    async def _handle(self, task: _Task, phase: str, result: st.Result) -> Action | None:
        """Record ``result`` of ``phase``; None when the flow goes on, else what the controller does next."""
        update, next_step = st.outcome(phase, result)
        await self._write(task, update)
        if next_step == "continue":
            return None
        if next_step == "requeue":
            return Action.requeue(result.requeue_after if result.requeue_after is not None else self.requeue_interval)
        if next_step == "ttl":
            log.info("task finished", phase=phase, state=task.status.get("state"), description=result.description)
            return self._after_ttl(task)
        log.warning("task phase will be retried", phase=phase, error=str(result.error), description=result.description)
        return Action.retry()

    def _after_ttl(self, task: _Task) -> Action:
        remaining = st.time_to_expiry(task.status, task.ttl, self.clock.now())
        return Action.requeue(max(remaining, MIN_REQUEUE))

    # ------------------------------------------------------------------ deletion flow

    async def _deletion_flow(self, task: _Task, handler: h.Handler) -> Action:
        if not task.obj["metadata"].get("deletionTimestamp"):
            remaining = st.time_to_expiry(task.status, task.ttl, self.clock.now())
            if remaining > 0:
                return Action.requeue(remaining)
        await self._write(task, st.Update(st.Operation(CLEANUP, IN_PROGRESS, "Task Cleanup phase is in Progress")))
        if task.status.get("state") == c.TASK_REJECTED:
            op = st.Operation(CLEANUP, c.OPERATION_STATE_COMPLETED, "Cleanup skipped for rejected task")
            await self._write(task, st.Update(op))
        else:
            action = await self._handle(task, CLEANUP, await handler.cleanup())
            if action is not None:
                return action
        await self._set_finalizer(task, add=False)
        try:
            await self.kube.delete(OPS_TASKS, task.key.name, task.key.namespace)
        except ApiError as e:
            error = DruidError(h.ERR_DELETE_ETCD_OPS_TASK, CLEANUP, "failed to delete EtcdOpsTask resource", e)
            await self._write(
                task, st.Update(st.Operation(CLEANUP, IN_PROGRESS, "Task Cleanup phase is in progress"), error=error)
            )
            raise
        log.info("task deleted")
        return Action.done()

    # ------------------------------------------------------------------ writes

    async def _write(self, task: _Task, update: st.Update) -> None:
        now: dt.datetime = self.clock.now()
        status = st.apply(task.obj.get("status"), update, task_name=task.key.name, run_id=_run_id(), now=now)
        written = await update_status(self.kube, OPS_TASKS, task.obj, lambda _: status, retries=1)
        self._remember(task, written)

    async def _set_finalizer(self, task: _Task, *, add: bool) -> None:
        written: Obj | None
        if add:
            written = await ensure_finalizer(self.kube, OPS_TASKS, task.obj, c.FINALIZER_ETCD_OPS_TASK)
        else:
            written = await remove_finalizer(self.kube, OPS_TASKS, task.obj, c.FINALIZER_ETCD_OPS_TASK)
        if written is not None:
            self._remember(task, written)

    def _remember(self, task: _Task, written: Obj) -> None:
        if written is not task.obj:
            self._expectations.wrote(task.key, task.obj, written)
            task.obj = written
