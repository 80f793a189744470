"""Deletion flow (upstream ``reconcile_delete.go``; docs/compatibility.md, items F47–F48).

lastOperation Delete/Processing → trigger-delete every component concurrently (only objects controlled by
the Etcd) → if any of them still exists, lastOperation Delete/Requeue "Cleanup of all resources has not yet
been completed. Skipping removal of Finalizer Operation will be retried." and look again after 5 s → remove
the finalizer. PVCs are not deleted. The suspend annotation does not stop a deletion. Errors are recorded as
Delete/Error with lastErrors and retried with backoff.

Existence is checked against the API server (not the caches), as upstream does, so objects missing the
managed-by label are found too.
"""

from __future__ import annotations

import asyncio

import structlog

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.components import registry
from druid.components.errors import DruidError
from druid.components.sync import existing_names, trigger_delete
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.operation import StepResult
from druid.runtime import finalizers
from druid.runtime.client import ApiError
from druid.runtime.reconcile import Action

DELETE = c.OPERATION_TYPE_DELETE
WAITING = "Cleanup of all resources has not yet been completed. Skipping removal of Finalizer"

log = structlog.get_logger(__name__)


async def remove_finalizer(run: Run) -> None:
    removed = await finalizers.remove_finalizer(run.deps.kube, ETCDS, run.etcd, c.FINALIZER_ETCD)
    if removed is not None:
        run.status.wrote(removed)


async def reconcile_delete(run: Run) -> Action:
    ref = run.ref
    ctx = run.sync_context()
    components = registry.components()
    try:
        await run.status.record_start(DELETE)
        results = await asyncio.gather(*(trigger_delete(ctx, comp, ref) for comp in components), return_exceptions=True)
        errors = [r for r in results if isinstance(r, DruidError)]
        others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DruidError)]
        if others:
            raise others[0]
        if errors:
            result = StepResult.failed(*errors, step="Deletion of the components")
        else:
            remaining = [n for comp in components for n in await existing_names(ctx, comp, ref)]
            if remaining:
                log.info("waiting for cleanup", remaining=remaining)
                result = StepResult.wait(run.deps.delete_retry_interval, WAITING)
            else:
                if run.has_finalizer():
                    await remove_finalizer(run)
                log.info("etcd cleaned up; finalizer removed")
                return Action.done()
    except (DruidError, ApiError) as e:
        log.warning("deletion failed", error=str(e))
        result = StepResult.failed_with(e, "Deletion of the components or removal of the finalizer")
    try:
        await run.status.record_incomplete(DELETE, result)
    except ApiError as e:
        if not e.not_found:
            raise
    if result.requeue_after is not None and not result.error:
        return Action.requeue(result.requeue_after)
    return Action.retry()
