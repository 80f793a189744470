"""Reconcile an EtcdCopyBackupsTask: finalizer, one worker Job, status mirrored from the Job (items H54–H56).

- Deleting: without druid's finalizer nothing to do. Else the Job ``<task>-worker`` is deleted with
  propagation ``Foreground`` (unless already deleting) and the status refreshed; once the Job is gone the
  finalizer ``druid.gardener.cloud/etcd-druid`` is removed.
- Otherwise: add the finalizer; if the Job exists only refresh the status, else build and create it. The Job
  is never updated: a changed spec does not change a created Job.
- Status (the runtime status writer: merge patch on ``/status`` locked to the resourceVersion, computed again
  from the live task on conflict): ``observedGeneration``; ``conditions``
  copied from the Job's (``Complete`` → ``Succeeded``, ``Failed`` → ``Failed``; ``lastUpdateTime`` from
  ``lastProbeTime``), removed while there is no Job; ``lastError`` = the error met, removed on success. A
  status equal to the current one is not written.

Errors (API failures, a spec no Job can be built from) are recorded in ``lastError`` and retried with backoff.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from druid.api import admission, names, store
from druid.api import constants as c
from druid.api.admission import AdmissionPolicy
from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.api.resources import ETCD_COPY_BACKUPS_TASKS as COPY_BACKUPS_TASKS
from druid.api.store import StoreSpec
from druid.components import statefulset_volumes as vol
from druid.config.images import Images
from druid.controllers.copybackups import job as builder
from druid.gocompat.fmt import error_text
from druid.runtime.client import ApiError, Kube
from druid.runtime.finalizers import ensure_finalizer, remove_finalizer
from druid.runtime.objects import JOBS, SECRETS, Obj, ObjectKey
from druid.runtime.reader import CachedReader
from druid.runtime.reconcile import Action
from druid.runtime.statuswriter import update_status

log = structlog.get_logger(__name__)


CONDITION_TYPES = {"Complete": c.CONDITION_SUCCEEDED, "Failed": c.CONDITION_FAILED}


class JobStore(Protocol):
    """Where the reconciler looks Jobs up first (the controller's Job informer store)."""

    def get(self, key: ObjectKey) -> Obj | None: ...


def mirror_conditions(job: Obj | None) -> list[dict[str, Any]] | None:
    """The task's conditions for ``job``: its Complete/Failed conditions renamed; None without a Job or any."""
    out = []
    for cond in ((job or {}).get("status") or {}).get("conditions") or ():
        kind = CONDITION_TYPES.get(cond.get("type", ""))
        if kind is None:
            continue
        transition = cond.get("lastTransitionTime")
        out.append(
            {
                "type": kind,
                "status": cond.get("status", ""),
                "lastTransitionTime": transition,
                "lastUpdateTime": cond.get("lastProbeTime") or transition,
                "reason": cond.get("reason", ""),
                "message": cond.get("message", ""),
            }
        )
    return out or None


def desired_status(task: Obj, job: Obj | None, error: str | None) -> dict[str, Any]:
    status = dict(task.get("status") or {})
    status["observedGeneration"] = task["metadata"].get("generation")
    for key, value in (("conditions", mirror_conditions(job)), ("lastError", error)):
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    return status


class CopyBackupsReconciler:
    def __init__(self, kube: Kube, jobs: JobStore, images: Images, admission: AdmissionPolicy | None = None) -> None:
        self.kube = kube
        self.jobs = CachedReader(kube, JOBS, jobs)
        self.images = images
        self.admission = admission or AdmissionPolicy()  # the Local stores' host directories

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            return Action.done()
        if obj["metadata"].get("deletionTimestamp"):
            return await self._delete(key, obj)
        task = await ensure_finalizer(self.kube, COPY_BACKUPS_TASKS, obj, c.FINALIZER_ETCD)
        job: Obj | None = None
        error: Exception | None = None
        try:
            job = await self._get_job(key)
            if job is None:
                job = await self._create_job(key, task)
        except (ApiError, builder.JobBuildError) as e:
            error = e
        await self._update_status(key, task, job, error)
        if error is not None:
            log.warning("could not reconcile copy-backups task", error=str(error))
            return Action.retry()
        return Action.done()

    async def _delete(self, key: ObjectKey, task: Obj) -> Action:
        if c.FINALIZER_ETCD not in (task["metadata"].get("finalizers") or ()):
            return Action.done()
        job: Obj | None = None
        error: Exception | None = None
        try:
            job = await self._get_job(key)
            if job is None:
                await remove_finalizer(self.kube, COPY_BACKUPS_TASKS, task, c.FINALIZER_ETCD)
                return Action.done()
            if not job["metadata"].get("deletionTimestamp"):
                log.info("deleting job", job=job["metadata"]["name"])
                await self.kube.delete(
                    JOBS, job["metadata"]["name"], key.namespace, propagation="Foreground", uid=job["metadata"]["uid"]
                )
        except ApiError as e:
            if e.not_found:
                return Action.done()  # the task vanished meanwhile
            error = e
        await self._update_status(key, task, job, error)
        return Action.retry() if error is not None else Action.done()

    # ------------------------------------------------------------------ steps

    async def _get_job(self, key: ObjectKey) -> Obj | None:
        # a miss: not (yet) cached, or not labelled by druid
        return await self.jobs.get(ObjectKey(key.namespace, names.copy_backups_job_name(key.name)))

    async def _host_path(self, key: ObjectKey, spec: StoreSpec, prefix: str) -> str | None:
        """The Local buckets directory from the store secret; for other providers check they can be built."""
        provider = builder.store_provider(spec)
        if provider != store.LOCAL:
            builder.store_volumes(spec, provider, prefix)  # upstream's order of errors: source store first
            return None
        if spec.secret_ref is None:
            return None
        secret = await self.kube.get(SECRETS, spec.secret_ref.name or "", key.namespace)
        return vol.local_host_path(secret)

    async def _create_job(self, key: ObjectKey, obj: Obj) -> Obj:
        try:
            task = EtcdCopyBackupsTask.model_validate(obj)
        except ValueError as e:
            raise builder.JobBuildError(f"invalid task: {e}") from e
        builder.store_provider(task.spec.target_store)
        source = await self._host_path(key, task.spec.source_store, builder.SOURCE_PREFIX)
        target = await self._host_path(key, task.spec.target_store, "")
        spec = obj.get("spec") or {}
        forbidden = [
            problem
            for field, path in (("spec.sourceStore", source), ("spec.targetStore", target))
            if (problem := admission.store_violation(self.admission, field, spec.get(field.split(".")[1]), path))
        ]
        if forbidden:
            raise builder.JobBuildError("druid's admission policy forbids: " + "; ".join(forbidden))
        job = builder.build_job(task, self.images, source_host_path=source, target_host_path=target)
        log.info("creating job", job=job["metadata"]["name"])
        try:
            created: Obj = await self.kube.create(JOBS, job)
        except ApiError as e:
            raise ApiError(
                e.status, e.reason, f"could not create job {key.namespace}/{job['metadata']['name']}: {e.message}"
            ) from e
        return created

    async def _update_status(self, key: ObjectKey, task: Obj, job: Obj | None, error: Exception | None) -> None:
        message = None if error is None else error_text(error)
        try:
            # One attempt: a conflict means the cached task was stale (e.g. this controller's own last write had
            # not arrived yet); the reconcile fails and is retried from the cache instead of GETting the task,
            # which druid's ClusterRole does not grant (it reads copy tasks from its cache only).
            await update_status(
                self.kube, COPY_BACKUPS_TASKS, task, lambda live: desired_status(live, job, message), retries=1
            )
        except ApiError as e:
            if not e.not_found:
                raise
