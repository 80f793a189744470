"""The compaction reconcile (upstream ``internal/controller/compaction/reconciler.go``).

1. Etcd gone ⇒ done. Being deleted or without ``spec.backup.store`` ⇒ foreground-delete ``<etcd>-compactor``
   (unless already deleting); done.
2. Job present: deleting ⇒ requeue after 10 s; ``status.active > 0`` ⇒ jobs_current = 1, done; finished ⇒
   jobs_current = 0, condition ``LastSnapshotCompactionSucceeded`` from its outcome (``outcome.py``), metrics,
   foreground-delete the job, requeue after 10 s. A job's outcome is written and counted once: when its
   deletion fails (and the reconcile is retried), the next pass only deletes it again.

Read-your-writes: after writing the condition (and after deleting the job) the runtime's expectations tracker
remembers what the caches must show; a reconcile that finds the Etcd cache not yet showing the condition, or
the job cache still showing the deleted job, requeues after ``poll_interval`` instead of acting on old state
(no worker waits for the cache). An expectation the cache does not meet within ``poll_timeout`` is dropped.
3. No job: diff = delta − full snapshot lease revision (``spec.holderIdentity``); num_delta_events = diff.
4. Last condition False with DeadlineExceeded/ErrorTriggeringFullSnapshot, or diff ≥ triggerFullSnapshotThreshold
   ⇒ full snapshot through backup-restore (``fullsnapshot.py``) and condition True/FullSnapshotTakenSuccessfully
   or False/ErrorTriggeringFullSnapshot (then the reconcile fails and is retried with backoff).
5. Else diff ≥ eventsThreshold ⇒ create the job (``job.py``); jobs_current = 1.

Thresholds: ``spec.backup.snapshotCompaction`` overrides the operator configuration.

Deviations (druid):
- a job with ``active == 0`` but no finishing condition yet (its pod not created yet, or the job controller still
  counting) is not taken as failed (upstream: False/Unknown) but looked at again with the rate limiter's backoff;
- missing snapshot leases or unset/invalid revisions end the reconcile quietly (any holderIdentity change enqueues
  the Etcd again) instead of failing it;
- creating a job that already exists (the job cache lags) is not an error;
- an Etcd spec that cannot produce a job (unknown provider, missing secretRef) is a terminal error until the next
  event instead of a backoff loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from druid.api import admission, names, store
from druid.api.admission import AdmissionPolicy
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by
from druid.backuprestore import BackupRestoreClient
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildOptions
from druid.config.operator import CompactionControllerConfiguration
from druid.controllers.compaction import job as jobs
from druid.controllers.compaction import outcome, status
from druid.controllers.compaction.fullsnapshot import BackupRestoreError, take_full_snapshot
from druid.controllers.compaction.metrics import CompactionMetrics
from druid.gocompat import strconv
from druid.runtime.client import ApiError, Kube
from druid.runtime.expectations import Expectations
from druid.runtime.objects import JOBS, PODS, SECRETS, Obj, ObjectKey
from druid.runtime.reconcile import Action, TerminalError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Timings:
    poll_interval: float = 1.0  # requeue delay while the caches lag behind the status write / the job deletion
    poll_timeout: float = 30.0  # then the caches are trusted anyway
    requeue_after: float = 10.0  # after deleting a finished job, while a job is being deleted


@dataclass
class Deps:
    kube: Kube
    config: CompactionControllerConfiguration
    build_options: BuildOptions
    jobs: Any  # informer stores: get(ObjectKey) -> Obj | None
    leases: Any
    metrics: CompactionMetrics
    backup_restore: BackupRestoreClient = field(default_factory=BackupRestoreClient)
    timings: Timings = Timings()
    admission: AdmissionPolicy = field(default_factory=AdmissionPolicy)  # the Job runs the Etcd's image, store
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


def thresholds(etcd: Etcd, config: CompactionControllerConfiguration) -> tuple[int, int]:
    """(eventsThreshold, triggerFullSnapshotThreshold), per-Etcd values first."""
    events, full = config.events_threshold, config.trigger_full_snapshot_threshold
    spec = etcd.spec.backup.snapshot_compaction
    if spec is not None:
        events = events if spec.events_threshold is None else spec.events_threshold
        full = full if spec.trigger_full_snapshot_threshold is None else spec.trigger_full_snapshot_threshold
    return events, full


def _gone_or_deleting(job: Obj | None, uid: str | None) -> bool:
    if job is None:
        return True
    return bool(job["metadata"].get("deletionTimestamp")) or job["metadata"].get("uid") != uid


def expected_error(error: Exception) -> bool:
    """The controller's error policy: API errors and failed backup-restore calls are normal operation."""
    return isinstance(error, (ApiError, BackupRestoreError))


class CompactionReconciler:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        ttl = deps.timings.poll_timeout
        self._etcds: Expectations[ObjectKey] = Expectations(ttl)
        self._jobs: Expectations[ObjectKey] = Expectations(ttl)
        self._recorded: dict[ObjectKey, str] = {}  # job → uid whose outcome is written and counted

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            self._etcds.forget(key)
            return Action.done()
        try:
            etcd = Etcd.model_validate(obj)
        except ValidationError as e:
            raise TerminalError(f"invalid Etcd: {e}") from e
        if etcd.metadata.deletion_timestamp or not etcd.backup_store_enabled:
            await self._delete_job(etcd)
            return Action.done()
        if self._etcds.stale(key, obj):
            log.info("the Etcd cache does not show the compaction condition yet; looking again shortly")
            return Action.requeue(self.d.timings.poll_interval)
        job_key = ObjectKey(etcd.namespace, jobs.job_name(etcd))
        job = self._job(etcd)
        if self._jobs.stale(job_key, job):
            log.info("the job cache still shows the deleted compaction job; looking again shortly")
            return Action.requeue(self.d.timings.poll_interval)
        if job is not None:
            return await self._existing_job(etcd, job, obj)
        self._recorded.pop(job_key, None)
        diff = self._revision_diff(etcd)
        if diff is None:
            return Action.done()
        log.info("delta revisions since last full snapshot", diff=diff)
        self.d.metrics.num_delta_events.labels(etcd.namespace).set(diff)
        events, full = thresholds(etcd, self.d.config)
        if status.full_snapshot_required(obj) or diff >= full:
            await self._full_snapshot(etcd, diff, full)
        elif diff >= events:
            await self._create_job(etcd, obj)
            self.d.metrics.jobs_current.labels(etcd.namespace).set(1)
        return Action.done()

    # ------------------------------------------------------------------ steps

    def _job(self, etcd: Etcd) -> Obj | None:
        """The Etcd's compaction job from the cache; a job of that name the Etcd does not control is not its own
        and is never changed or deleted (its creation then fails as AlreadyExists)."""
        job = self.d.jobs.get(ObjectKey(etcd.namespace, jobs.job_name(etcd)))
        if job is not None and not controlled_by(job, etcd.metadata.uid):
            log.warning("a job with the compaction job's name is not controlled by the Etcd; leaving it alone")
            return None
        return job

    async def _delete_job(self, etcd: Etcd) -> None:
        job = self._job(etcd)
        if job is not None and not job["metadata"].get("deletionTimestamp"):
            log.info("deleting compaction job", job=job["metadata"]["name"])
            await self.d.kube.delete(JOBS, job["metadata"]["name"], etcd.namespace, propagation="Foreground")

    async def _existing_job(self, etcd: Etcd, job: Obj, cached: Obj) -> Action:
        meta, ns = job["metadata"], etcd.namespace
        if meta.get("deletionTimestamp"):
            log.info("compaction job is being deleted; waiting", job=meta["name"])
            return Action.requeue(self.d.timings.requeue_after)
        if outcome.active(job) > 0:
            self.d.metrics.jobs_current.labels(ns).set(1)
            return Action.done()
        if outcome.finished(job) is None:
            log.info("compaction job neither active nor finished yet; looking again with backoff", job=meta["name"])
            return Action.retry()
        self.d.metrics.jobs_current.labels(ns).set(0)
        key = ObjectKey(ns, meta["name"])
        if self._recorded.get(key) == meta.get("uid"):
            # Outcome already written and counted; only its deletion failed (e.g. timed out under load): retry that.
            await self._delete_finished(job)
            return Action.requeue(self.d.timings.requeue_after)
        pod = await self._first_pod(job) if outcome.needs_pod(job) else None
        result = outcome.outcome(job, pod, self.d.now())
        cond = status.job_condition(job, result)
        log.info("compaction job finished", job=meta["name"], reason=cond["reason"], job_reason=result.job_reason)
        await status.write(self.d.kube, ns, etcd.name, cond, etcd=cached)
        self._etcds.expect(ObjectKey(ns, etcd.name), lambda o: status.shows(o, cond))
        self.d.metrics.job_finished(ns, result)
        self._recorded[key] = meta.get("uid") or ""
        await self._delete_finished(job)
        return Action.requeue(self.d.timings.requeue_after)

    async def _delete_finished(self, job: Obj) -> None:
        meta = job["metadata"]
        try:
            await self.d.kube.delete(
                JOBS, meta["name"], meta["namespace"], propagation="Foreground", uid=meta.get("uid")
            )
        except ApiError as e:
            if not (e.not_found or e.conflict):  # gone, or replaced by another job of that name: nothing to do
                raise
        key = ObjectKey(meta["namespace"], meta["name"])
        self._jobs.expect(key, lambda cached: _gone_or_deleting(cached, meta.get("uid")))

    async def _first_pod(self, job: Obj) -> Obj | None:
        meta = job["metadata"]
        selector = f"{outcome.JOB_NAME_LABEL}={meta['name']}"
        pods = await self.d.kube.list(PODS, meta["namespace"], label_selector=selector)
        items = pods.get("items") or []
        return items[0] if items else None

    def _revision_diff(self, etcd: Etcd) -> int | None:
        revisions = []
        for name in (names.full_snapshot_lease_name(etcd.name), names.delta_snapshot_lease_name(etcd.name)):
            lease = self.d.leases.get(ObjectKey(etcd.namespace, name))
            holder = (lease.get("spec") or {}).get("holderIdentity") if lease is not None else None
            revision = strconv.parse_int64(holder)
            if revision is None:
                why = "missing" if lease is None else "holderIdentity unset" if holder is None else "not an int64"
                log.info("snapshot lease revision unavailable; waiting for the next lease change", lease=name, why=why)
                return None
            revisions.append(revision)
        return revisions[1] - revisions[0]

    async def _full_snapshot(self, etcd: Etcd, diff: int, threshold: int) -> None:
        ns, name = etcd.namespace, etcd.name
        log.info("taking full snapshot", accumulated_revisions=diff, trigger_full_snapshot_threshold=threshold)
        error: BackupRestoreError | None = None
        try:
            await take_full_snapshot(self.d.kube, etcd, self.d.backup_restore)
        except BackupRestoreError as e:
            error = e
        self.d.metrics.full_snapshot_triggered(ns, error is None)
        cond = status.full_snapshot_condition(ns, name, None if error is None else error.message)
        try:
            await status.write(self.d.kube, ns, name, cond)
        except ApiError as e:
            log.warning("could not update the compaction condition after a full snapshot", error=str(e))
            raise error or e from None
        self._etcds.expect(ObjectKey(ns, name), lambda o: status.shows(o, cond))
        if error is not None:
            raise error
        log.info("full snapshot taken")

    async def _create_job(self, etcd: Etcd, obj: Obj) -> None:
        where = f"error while creating compaction job in {etcd.namespace} for {etcd.name} : "
        host_path = await self._host_path(etcd)
        if forbidden := admission.violations(self.d.admission, obj, host_path):  # images, root, host directory
            raise TerminalError(where + "druid's admission policy forbids: " + "; ".join(forbidden))
        try:
            body = jobs.build(etcd, self.d.build_options, self.d.config, host_path=host_path)
        except ValueError as e:  # JobSpecError, or an unknown provider
            raise TerminalError(where + str(e)) from e
        try:
            await self.d.kube.create(JOBS, body)
        except ApiError as e:
            if e.conflict:  # AlreadyExists: the job cache lags behind
                log.info("compaction job exists already", job=body["metadata"]["name"])
                return
            raise
        log.info("compaction job created", job=body["metadata"]["name"])

    async def _host_path(self, etcd: Etcd) -> str | None:
        """A Local store's host directory from its secret (``hostPath`` key); None ⇒ the default."""
        backup_store = etcd.spec.backup.store
        if backup_store is None or backup_store.secret_ref is None or vol.provider(etcd) != store.LOCAL:
            return None
        secret = await self.d.kube.get(SECRETS, backup_store.secret_ref.name or "", etcd.namespace)
        return vol.local_host_path(secret)
