"""Spec reconcile (upstream ``reconcile_spec.go``): plan, finalizer, pre-sync, sync in order, cleanup, record.

Before anything is written, every desired object is built (:func:`make_plan`); a spec that cannot be built
(e.g. an unsupported store provider) is recorded as lastOperation Error with the failing component's sync
code and the field at fault, and nothing is written. Secrets referenced by the Etcd are looked up in the
metadata-only Secret cache: while one is missing the StatefulSet is neither created nor changed (its pods
could not start), the other components are still synced, and lastErrors names the missing Secrets
(``ERR_SYNC_STATEFULSET``). The Secret watch re-enqueues the Etcd when a Secret appears.

Writes are recorded the upstream way — lastOperation Reconcile/Processing before the first write, then
Succeeded, or Error/Requeue when a step stops the run (a failing component stops the later ones) — except
that a run with nothing to write (everything already in sync and Succeeded) writes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from druid.api import constants as c
from druid.api import store as store_api
from druid.api.etcd import Etcd
from druid.components import configmap, registry
from druid.components import statefulset as sts_component
from druid.components import statefulset_volumes as vol
from druid.components.errors import OPERATION_SYNC, DruidError, RequeueAfter
from druid.components.sync import SyncContext, sync, trigger_delete
from druid.controllers.etcd import statefulset
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.operation import StepResult, duration_text
from druid.controllers.etcd.secrets import referenced_secrets
from druid.runtime.client import ApiError
from druid.runtime.objects import SECRETS, Obj, ObjectKey

log = structlog.get_logger(__name__)
RECONCILE = c.OPERATION_TYPE_RECONCILE


@dataclass
class Plan:
    """Every desired object of a spec reconcile, built before anything is written."""

    objects: dict[str, list[Obj]] = field(default_factory=dict)  # kind -> desired objects
    configmap_checksum: str | None = None
    backup_host_path: str | None = None
    missing_secrets: list[str] = field(default_factory=list)


def _field_of(message: str) -> str:
    if "storage provider" in message:
        return "spec.backup.store.provider"
    if "secretRef" in message:
        return "spec.backup.store.secretRef"
    return "spec"


def _invalid(kind: str, error: Exception) -> DruidError:
    code = registry.component(kind).ERROR_CODES.sync
    return DruidError(code, OPERATION_SYNC, f"Invalid spec for {kind}: {_field_of(str(error))}: {error}")


async def make_plan(run: Run, etcd: Etcd) -> Plan:
    """Build all desired objects; raises :class:`DruidError` when the spec cannot be built."""
    deps, opts = run.deps, run.deps.build_options
    plan = Plan()
    plan.missing_secrets = [
        name for name in referenced_secrets(run.etcd) if deps.secrets.get(ObjectKey(etcd.namespace, name)) is None
    ]
    kinds = registry.sync_kinds(etcd)
    for kind in kinds:
        if kind == registry.STATEFUL_SET:
            continue
        try:
            plan.objects[kind] = registry.component(kind).build(etcd, opts)
        except ValueError as e:
            raise _invalid(kind, e) from e
    if registry.CONFIG_MAP in plan.objects:
        plan.configmap_checksum = configmap.checksum(plan.objects[registry.CONFIG_MAP][0])
    if registry.STATEFUL_SET in kinds:
        try:
            provider = vol.provider(etcd)
            plan.objects[registry.STATEFUL_SET] = sts_component.build(
                etcd, opts, configmap_checksum=plan.configmap_checksum
            )
        except ValueError as e:
            raise _invalid(registry.STATEFUL_SET, e) from e
        store = etcd.spec.backup.store
        if provider == store_api.LOCAL and store is not None and store.secret_ref and store.secret_ref.name:
            if store.secret_ref.name not in plan.missing_secrets:
                try:
                    secret = await deps.kube.get_or_none(SECRETS, store.secret_ref.name, etcd.namespace)
                except ApiError as e:
                    raise DruidError(
                        sts_component.ERR_SYNC_STATEFULSET,
                        OPERATION_SYNC,
                        f"Error getting backup store secret {etcd.namespace}/{store.secret_ref.name}",
                        e,
                    ) from e
                if secret is None:
                    plan.missing_secrets.append(store.secret_ref.name)
                else:
                    plan.backup_host_path = vol.local_host_path(secret)
    return plan


def missing_secrets_error(etcd: Etcd, missing: list[str]) -> DruidError:
    return DruidError(
        sts_component.ERR_SYNC_STATEFULSET,
        OPERATION_SYNC,
        f"Secrets referenced by etcd {etcd.namespace}/{etcd.name} not found: {', '.join(missing)}; "
        "the StatefulSet is not created or updated until they exist",
    )


async def ensure_finalizer(ctx: SyncContext, run: Run) -> None:
    if run.has_finalizer():
        return
    await ctx.writing(f"add finalizer {c.FINALIZER_ETCD}")
    meta = run.etcd["metadata"]  # after the write hook: the freshest copy
    finalizers = [*(meta.get("finalizers") or ()), c.FINALIZER_ETCD]
    await run.status.patch_metadata({"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]})


async def reconcile_spec(run: Run, etcd: Etcd) -> StepResult:
    """Run the spec reconcile steps; lastOperation/lastErrors are recorded here."""
    deps = run.deps
    ref = run.ref
    interval = duration_text(deps.sync_retry_interval)
    kind = ""
    try:
        plan = await make_plan(run, etcd)
        ctx = run.sync_context(before_write=lambda: run.status.record_start(RECONCILE))
        await ensure_finalizer(ctx, run)
        kind = registry.STATEFUL_SET
        try:
            await statefulset.pre_sync(ctx, run, etcd)
        except RequeueAfter as e:
            log.info("waiting in pre-sync", reason=e.message)
            result = StepResult.wait(
                deps.sync_retry_interval, f"requeueing pre-sync of component {kind} to be retried after {interval}"
            )
            await run.status.record_incomplete(RECONCILE, result)
            return result
        for kind in registry.sync_kinds(etcd):
            if kind != registry.STATEFUL_SET:
                await sync(ctx, registry.component(kind), ref, plan.objects[kind])
            elif plan.missing_secrets:
                raise missing_secrets_error(etcd, plan.missing_secrets)
            else:
                await statefulset.sync_statefulset(ctx, run, etcd, plan.configmap_checksum, plan.backup_host_path)
        errors: list[DruidError] = []
        for kind in registry.cleanup_kinds(etcd):
            try:
                await trigger_delete(ctx, registry.component(kind), ref, cached=True)
            except DruidError as e:
                errors.append(e)
        if errors:
            result = StepResult.failed(*errors)
            await run.status.record_incomplete(RECONCILE, result)
            return result
    except RequeueAfter as e:
        log.info("retrying sync of component later", kind=kind, reason=e.message, after=interval)
        result = StepResult.wait(deps.sync_retry_interval, f"retrying sync of component {kind} after {interval}")
    except DruidError as e:
        log.warning("spec reconcile failed", error=str(e))
        result = StepResult.failed(e)
    except ApiError as e:
        log.warning("spec reconcile failed", error=str(e))
        result = StepResult(error=True, done=False)
    else:
        await run.status.record_success(RECONCILE)
        return StepResult()
    await run.status.record_incomplete(RECONCILE, result)
    return result
