"""Scheduled verified restores (druid extension): the ``druid.gardener.cloud/verified-restore-schedule`` annotation.

An Etcd annotated with a cron expression (5 fields, UTC, as ``spec.backup.fullSnapshotSchedule``) gets a
``verifiedRestore`` EtcdOpsTask at every tick of it; without the annotation nothing happens (the default).

Contract (``verifiedrestore-schedule-controller``, primary kind Etcd; create events, generation or annotation
changes; otherwise it wakes itself at the next tick):

- **Last run**: the latest of the ``BackupRestoreVerified`` condition's ``lastUpdateTime`` (every finished
  verification moves it) and the creation of the newest scheduled task of the Etcd (label
  :data:`LABEL_SCHEDULED`); an Etcd never verified counts from its creation. The next run is the first tick
  of the schedule after the last run (:func:`next_run`): a druid that was down runs one overdue verification,
  not one per missed tick.
- **When due**, a task ``<etcd>-verify-<YYYYmmddHHMM of the tick>`` is created (deterministic: a second
  reconcile of the same tick finds it, AlreadyExists is fine) unless another task for the Etcd is unfinished
  (it would be rejected as a duplicate; looked at again after :data:`BUSY_RETRY`), the Etcd is not Ready or has
  no backup store (looked at again after :data:`NOT_READY_RETRY`). Its TTL is the default.
- An invalid schedule is logged and ignored until the annotation changes.
- A ``BackupRestoreVerified`` condition that is True sets ``druid_verified_restore_last_success_timestamp_seconds``
  from its ``lastUpdateTime``, so the metric survives a restart of druid for scheduled Etcds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from croniter import croniter

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.controllers.opstask import status as st
from druid.controllers.opstask.verifiedrestore import CONDITION_TYPE, verified_restore_metrics
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock, parse_time
from druid.runtime.controller import Controller, Predicates, annotations_changed, generation_changed
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.objects import Obj, ObjectKey
from druid.runtime.reconcile import Action

log = structlog.get_logger(__name__)

ANNOTATION_SCHEDULE = c.ANNOTATION_VERIFIED_RESTORE_SCHEDULE
LABEL_SCHEDULED = "druid.gardener.cloud/verified-restore-schedule-of"
CONTROLLER_NAME = "verifiedrestore-schedule-controller"
BUSY_RETRY = 30.0
NOT_READY_RETRY = 60.0


def valid(schedule: str) -> bool:
    return len(schedule.split()) == 5 and croniter.is_valid(schedule)


def last_run(etcd: Obj, tasks: Iterable[Obj]) -> dt.datetime:
    """When the Etcd was last verified or a verification was last scheduled (else its creation)."""
    moments: list[dt.datetime] = []
    for cond in (etcd.get("status") or {}).get("conditions") or ():
        if cond.get("type") == CONDITION_TYPE and cond.get("lastUpdateTime"):
            moments.append(parse_time(cond["lastUpdateTime"]))
    for task in tasks:
        created = task["metadata"].get("creationTimestamp")
        if created:
            moments.append(parse_time(created))
    if not moments:
        created = etcd["metadata"].get("creationTimestamp")
        return parse_time(created) if created else dt.datetime.fromtimestamp(0, dt.UTC)
    return max(moments)


def next_run(schedule: str, last: dt.datetime) -> dt.datetime:
    """The first tick of ``schedule`` (UTC) after ``last``."""
    out: dt.datetime = croniter(schedule, last.astimezone(dt.UTC)).get_next(dt.datetime)
    return out.astimezone(dt.UTC)


def task_name(etcd_name: str, tick: dt.datetime) -> str:
    return f"{etcd_name}-verify-{tick.astimezone(dt.UTC):%Y%m%d%H%M}"


def scheduled_task(etcd: Etcd, tick: dt.datetime) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {
            "name": task_name(etcd.name, tick),
            "namespace": etcd.namespace,
            "labels": {LABEL_SCHEDULED: etcd.name},
        },
        "spec": {"etcdName": etcd.name, "config": {"verifiedRestore": {}}},
    }


def _for_etcd(tasks: Iterable[Mapping[str, Any]], etcd_name: str) -> list[Obj]:
    return [dict(t) for t in tasks if (t.get("spec") or {}).get("etcdName") == etcd_name]


class RestoreScheduleReconciler:
    def __init__(self, kube: Kube, clock: Clock | None = None) -> None:
        self.kube = kube
        self.clock = clock or SystemClock()
        self.metrics = verified_restore_metrics()

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return Action.done()
        schedule = ((obj["metadata"].get("annotations") or {}).get(ANNOTATION_SCHEDULE) or "").strip()
        if not schedule:
            return Action.done()
        if not valid(schedule):
            log.warning("invalid verified-restore schedule, ignored", schedule=schedule)
            return Action.done()
        etcd = Etcd.model_validate(obj)
        self._restore_metric(etcd, obj)
        now = self.clock.now()
        tasks = _for_etcd((await self.kube.list(ETCD_OPS_TASKS, etcd.namespace))["items"], etcd.name)
        scheduled = [t for t in tasks if (t["metadata"].get("labels") or {}).get(LABEL_SCHEDULED) == etcd.name]
        tick = next_run(schedule, last_run(obj, scheduled))
        if tick > now:
            return Action.requeue((tick - now).total_seconds())
        if any(not st.completed(t.get("status")) for t in tasks):
            return Action.requeue(BUSY_RETRY)
        if not etcd.backup_store_enabled or not etcd.ready:
            return Action.requeue(NOT_READY_RETRY)
        try:
            await self.kube.create(ETCD_OPS_TASKS, scheduled_task(etcd, tick))
            log.info("verified restore scheduled", task=task_name(etcd.name, tick))
        except ApiError as e:
            if e.status != 409:
                raise
        return Action.requeue(BUSY_RETRY)

    def _restore_metric(self, etcd: Etcd, obj: Obj) -> None:
        for cond in (obj.get("status") or {}).get("conditions") or ():
            if cond.get("type") == CONDITION_TYPE and cond.get("status") == c.CONDITION_TRUE:
                if cond.get("lastUpdateTime"):
                    at = parse_time(cond["lastUpdateTime"]).timestamp()
                    self.metrics.last_success.labels(etcd.namespace, etcd.name).set(at)


def make_restore_schedule_controller(
    kube: Kube, informers: InformerFactory, *, namespace: str | None = None, clock: Clock | None = None
) -> Controller:
    controller = Controller(CONTROLLER_NAME, RestoreScheduleReconciler(kube, clock), informers, workers=1)
    changed = annotations_changed(ANNOTATION_SCHEDULE)
    predicate = Predicates(update=lambda old, new: generation_changed(old, new) or changed(old, new))
    controller.for_(ETCDS, namespace=namespace, predicate=predicate)
    return controller


def add_restore_schedule_controller(manager: Manager) -> Controller:
    controller = make_restore_schedule_controller(manager.kube, manager.informers)
    manager.add(controller)
    return controller
