"""Spec reconcile (upstream ``reconcile_spec.go``): plan, finalizer, pre-sync, sync in waves, cleanup, record.

Before anything is written, every desired object is built (:func:`make_plan`); a spec that cannot be built
(e.g. an unsupported store provider) is recorded as lastOperation Error with the failing component's sync
code and the field at fault, and nothing is written. Secrets referenced by the Etcd are looked up in the
metadata-only Secret cache: while one is missing the StatefulSet is neither created nor changed (its pods
could not start), the other components are still synced, and lastErrors names the missing Secrets
(``ERR_SYNC_STATEFULSET``). The Secret watch re-enqueues the Etcd when a Secret appears.

Writes are recorded the upstream way — lastOperation Reconcile/Processing before the first write, then
Succeeded, or Error/Requeue when a step stops the run — except that a run with nothing to write
(everything already in sync and Succeeded) writes nothing at all.

Components are synced in sync order but in two concurrent waves (:func:`sync_waves`): all kinds before the
StatefulSet at once, then the StatefulSet. A failing component stops the later wave (the StatefulSet is
neither created nor changed) and the first failure in sync order is recorded, as upstream; unlike upstream's
one-by-one sync, the kinds of the failing component's own wave are still written. This cuts a first
reconcile from one API round trip per object to two waits (see README, Benchmarks).
"""

from __future__ import annotations

import asyncio

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


def sync_waves(kinds: tuple[str, ...] | list[str]) -> list[list[str]]:
    """The kinds to sync, in sync order, grouped into waves written concurrently: every kind before the
    StatefulSet (none of them needs another to exist), then the StatefulSet (its pods need them all)."""
    before = [k for k in kinds if k != registry.STATEFUL_SET]
    return [w for w in (before, [k for k in kinds if k == registry.STATEFUL_SET]) if w]


async def _sync_kind(ctx: SyncContext, run: Run, etcd: Etcd, plan: Plan, kind: str) -> Exception | None:
    """Sync one kind; returns the DruidError or RequeueAfter that stopped it (None: synced)."""
    try:
        if kind != registry.STATEFUL_SET:
            await sync(ctx, registry.component(kind), run.ref, plan.objects[kind])
        elif plan.missing_secrets:
            raise missing_secrets_error(etcd, plan.missing_secrets)
        else:
            await statefulset.sync_statefulset(ctx, run, etcd, plan)
    except (DruidError, RequeueAfter) as e:
        return e
    return None


async def _steps(run: Run, etcd: Etcd, plan: Plan, ctx: SyncContext) -> StepResult:
    """finalizer → pre-sync → sync in waves (a failing component stops the later waves) → cleanup."""
    after = run.deps.sync_retry_interval
    await ensure_finalizer(ctx, run)
    try:
        await statefulset.pre_sync(ctx, run, etcd)
    except RequeueAfter as e:
        log.info("waiting in pre-sync", reason=e.message)
        text = f"requeueing pre-sync of component {registry.STATEFUL_SET} to be retried after {duration_text(after)}"
        return StepResult.wait(after, text)
    for wave in sync_waves(registry.sync_kinds(etcd)):
        outcomes = await asyncio.gather(*(_sync_kind(ctx, run, etcd, plan, kind) for kind in wave))
        for kind, outcome in zip(wave, outcomes, strict=True):  # the first failure in sync order decides
            if isinstance(outcome, RequeueAfter):
                log.info("retrying sync of component later", kind=kind, reason=outcome.message)
                return StepResult.wait(after, f"retrying sync of component {kind} after {duration_text(after)}")
            if outcome is not None:
                raise outcome
    errors: list[DruidError] = []
    for kind in registry.cleanup_kinds(etcd):
        try:
            await trigger_delete(ctx, registry.component(kind), run.ref, cached=True)
        except DruidError as e:
            errors.append(e)
    return StepResult.failed(*errors) if errors else StepResult()


async def reconcile_spec(run: Run, etcd: Etcd) -> StepResult:
    """Plan, then run the steps; lastOperation/lastErrors are recorded here."""
    try:
        plan = await make_plan(run, etcd)
        ctx = run.sync_context(before_write=lambda: run.status.record_start(RECONCILE))
        result = await _steps(run, etcd, plan, ctx)
    except DruidError as e:
        log.warning("spec reconcile failed", error=str(e))
        result = StepResult.failed(e)
    except ApiError as e:
        log.warning("spec reconcile failed", error=str(e))
        result = StepResult(error=True, done=False)
    if result.done:
        run.status.hold()  # written with the status reconcile and observedGeneration (reconciler.py)
        await run.status.record_success(RECONCILE)
    else:
        await run.status.record_incomplete(RECONCILE, result)
    return result
