"""Spec reconcile (upstream ``reconcile_spec.go``): plan, finalizer, pre-sync, sync, cleanup, record.

Before anything is written, every desired object is built (:func:`make_plan`); a spec that cannot be built
(e.g. an unsupported store provider) is recorded as lastOperation Error with the failing component's sync
code and the field at fault, and nothing is written. Secrets referenced by the Etcd are looked up in the
metadata-only Secret cache: while one is missing the StatefulSet is neither created nor changed (its pods
could not start), the other components are still synced, and lastErrors names the missing Secrets
(``ERR_SYNC_STATEFULSET``). The Secret watch re-enqueues the Etcd when a Secret appears.

Writes are recorded the upstream way — lastOperation Reconcile/Processing before the first write, then
Succeeded, or Error/Requeue when a step stops the run — except that a run with nothing to write
(everything already in sync and Succeeded) writes nothing at all.

Components are synced one by one in sync order; a failing component stops the later ones (the StatefulSet
is neither created nor changed), as upstream, and lastOperation's description names the failed step.
"""

from __future__ import annotations

import structlog

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.api.resources import ETCDS
from druid.components import registry
from druid.components.errors import DruidError, RequeueAfter
from druid.components.sync import SyncContext, sync, trigger_delete
from druid.controllers.etcd import statefulset
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.operation import StepResult, duration_text
from druid.controllers.etcd.plan import Plan, make_plan, missing_secrets_error
from druid.runtime import finalizers
from druid.runtime.client import ApiError

log = structlog.get_logger(__name__)
RECONCILE = c.OPERATION_TYPE_RECONCILE


async def ensure_finalizer(ctx: SyncContext, run: Run) -> None:
    if run.has_finalizer():
        return
    await ctx.writing(f"add finalizer {c.FINALIZER_ETCD}")
    # after the write hook: the freshest copy
    run.status.wrote(await finalizers.ensure_finalizer(run.deps.kube, ETCDS, run.etcd, c.FINALIZER_ETCD))


async def _steps(run: Run, etcd: Etcd, plan: Plan, ctx: SyncContext) -> StepResult:
    """finalizer → pre-sync → sync in order (a failing component stops the rest) → cleanup.

    A failure is returned with the step it happened in (lastOperation's description names it)."""
    after = run.deps.sync_retry_interval
    step = f"Adding finalizer {c.FINALIZER_ETCD}"
    try:
        await ensure_finalizer(ctx, run)
        step = f"Pre-sync of component {registry.STATEFUL_SET}"
        try:
            await statefulset.pre_sync(ctx, run, etcd)
        except RequeueAfter as e:
            log.info("waiting in pre-sync", reason=e.message)
            text = f"requeueing pre-sync of component {registry.STATEFUL_SET} to be retried after"
            return StepResult.wait(after, f"{text} {duration_text(after)}")
        for kind in registry.sync_kinds(etcd):
            step = f"Sync of component {kind}"
            try:
                if kind != registry.STATEFUL_SET:
                    await sync(ctx, registry.component(kind), run.ref, plan.objects[kind])
                elif plan.missing_secrets:
                    raise missing_secrets_error(etcd, plan.missing_secrets)
                else:
                    await statefulset.sync_statefulset(ctx, run, etcd, plan)
            except RequeueAfter as e:
                log.info("retrying sync of component later", kind=kind, reason=e.message)
                return StepResult.wait(after, f"retrying sync of component {kind} after {duration_text(after)}")
    except (DruidError, ApiError) as e:
        log.warning("spec reconcile failed", step=step, error=str(e))
        return StepResult.failed_with(e, step)
    errors: list[DruidError] = []
    failed: list[str] = []
    for kind in registry.cleanup_kinds(etcd):
        try:
            await trigger_delete(ctx, registry.component(kind), run.ref, cached=True)
        except DruidError as e:
            errors.append(e)
            failed.append(kind)
    if errors:
        return StepResult.failed(*errors, step=f"Deletion of components {', '.join(failed)}")
    return StepResult()


async def reconcile_spec(run: Run, etcd: Etcd) -> StepResult:
    """Plan, then run the steps; lastOperation/lastErrors are recorded here."""
    try:
        plan = await make_plan(run, etcd)
    except (DruidError, ApiError) as e:
        log.warning("spec reconcile failed", step="plan", error=str(e))
        result = StepResult.failed_with(e, "Checking the spec (nothing was written)")
    else:
        ctx = run.sync_context(before_write=lambda: run.status.record_start(RECONCILE))
        result = await _steps(run, etcd, plan, ctx)
    if result.done:
        run.status.hold()  # written with the status reconcile and observedGeneration (reconciler.py)
        await run.status.record_success(RECONCILE)
    else:
        await run.status.record_incomplete(RECONCILE, result)
    return result
