"""StatefulSet sync specifics (upstream ``internal/component/statefulset/statefulset.go``; items D34–D36 of
docs/compatibility.md).

- No StatefulSet and the Etcd never reconciled (no ``observedGeneration``): create it.
- No StatefulSet but reconciled before (it was orphan-deleted): if pods with the default labels exist,
  re-create it with ``len(status.members)`` replicas so it adopts them, and wait; else create it normally.
- StatefulSet exists (and ``spec.replicas > 0``): TLS changes. When the TLS volume mounts differ from the
  desired ones: if peer TLS is not yet reflected and a multi-member StatefulSet has some but not all replicas
  ready, wait without touching it; else patch it keeping its current replicas (and its immutable fields) and
  wait. When they match: wait until the member leases (the first ``sts.spec.replicas`` of them) all carry
  ``member.etcd.gardener.cloud/tls-enabled=true`` (peer TLS on) or none does (off).
- A StatefulSet whose selector differs from the default labels is deleted with propagation ``Orphan``, and
  re-created on a later run.
- Otherwise apply the desired StatefulSet (with ``spec.replicas``).

A StatefulSet named like the Etcd that the Etcd does not control is left alone and reported
(``components.sync.writable``), as every component's objects are.

Waits raise :class:`RequeueAfter` (lastOperation state Requeue, retried after the sync retry interval).
Druid deviation, forced by server-side apply: for the TLS patch the immutable fields are copied from the live
StatefulSet instead of being left out, since leaving out fields druid owns would make the apply remove them.

Pre-sync: with a backup store and a running StatefulSet, scaling to 0 (hibernation) — or, with the
``UpgradeEtcdVersion`` gate, an etcd image change — first takes a full snapshot through an EtcdOpsTask
``presync-snapshot-hibernation-<i>`` / ``presync-snapshot-upgrade-<i>`` (at most 3 attempts).
"""

from __future__ import annotations

import copy
from typing import Any

import structlog

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by
from druid.api.resources import ETCD_OPS_TASKS
from druid.components import memberlease, registry
from druid.components import statefulset as sts_component
from druid.components.errors import OPERATION_PRE_SYNC, OPERATION_SYNC, DruidError, RequeueAfter
from druid.components.sync import NotControlled, SyncContext, writable
from druid.config import features, images
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.plan import Plan
from druid.runtime.client import ApiError
from druid.runtime.objects import LEASES, PODS, STATEFULSETS, Obj

PRESYNC_HIBERNATION = "presync-snapshot-hibernation-"
PRESYNC_UPGRADE = "presync-snapshot-upgrade-"
MAX_PRESYNC_ATTEMPTS = 3
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")

log = structlog.get_logger(__name__)


def _spec(obj: Obj) -> dict[str, Any]:
    return obj.get("spec") or {}


def _sync_error(message: str, cause: BaseException | None = None) -> DruidError:
    return DruidError(sts_component.ERR_SYNC_STATEFULSET, OPERATION_SYNC, message, cause)


def _keep_immutable(desired: Obj, existing: Obj, *, only_absent: bool = False) -> Obj:
    """``desired`` with the live values of the StatefulSet's immutable fields (all of them, or with ``only_absent``
    those ``desired`` leaves out, e.g. ``serviceName`` once runtime components are disabled). Upstream's patch
    leaves these fields alone; an apply without them would try to remove them."""
    live = _spec(existing)
    names_ = [n for n in sts_component.IMMUTABLE_SPEC_FIELDS if not (only_absent and n in desired["spec"])]
    if not any(n in live or n in desired["spec"] for n in names_):
        return desired
    out = copy.deepcopy(desired)
    for name in names_:
        if name in live:
            value = copy.deepcopy(live[name])
            if name == "volumeClaimTemplates":
                value = [{k: v for k, v in t.items() if k != "status"} for t in value]
            out["spec"][name] = value
        else:
            out["spec"].pop(name, None)
    return out


def peer_tls_in_sync(ctx: SyncContext, run: Run, etcd: Etcd, replicas: int) -> bool:
    """All (peer TLS on) or none (off) of the first ``replicas`` member leases say ``tls-enabled=true``."""
    ref = run.ref
    found = (ctx.cached(LEASES, ref.namespace, name) for name in sorted(set(memberlease.lease_names(etcd))))
    leases = [x for x in found if x is not None and controlled_by(x, ref.uid)][:replicas]
    flags = []
    for lease in leases:
        value = (lease["metadata"].get("annotations") or {}).get(c.ANNOTATION_LEASE_PEER_TLS_ENABLED)
        if value is not None and value not in _TRUE + _FALSE:
            raise _sync_error(f"tls-enabled value {value!r} of lease {lease['metadata']['name']} is not a boolean")
        flags.append(value in _TRUE)
    if etcd.spec.etcd.peer_url_tls is not None:
        return len(flags) >= replicas and all(flags)
    return not any(flags)


async def _handle_tls_changes(ctx: SyncContext, run: Run, etcd: Etcd, existing: Obj, desired: Obj) -> None:
    key = f"{etcd.namespace}/{etcd.name}"
    current = int(_spec(existing).get("replicas") or 0)
    if not sts_component.tls_config_in_sync(etcd, existing):
        if not sts_component.peer_tls_reflected(etcd, existing) and sts_component.must_wait_for_ready_members(existing):
            ready = (existing.get("status") or {}).get("readyReplicas") or 0
            raise RequeueAfter(
                OPERATION_SYNC,
                "Not all etcd cluster members are ready. It is not safe to patch STS for Peer URL TLS changes. "
                f"Replicas: {current}, ReadyReplicas: {ready}",
            )
        patch = sts_component.variant(etcd, desired, replicas=current, existing=existing)
        try:
            await ctx.apply(STATEFULSETS, _keep_immutable(patch, existing), existing)
        except ApiError as e:
            raise _sync_error(f"Error creating or patching StatefulSet with TLS changes for etcd: {key}", e) from e
        raise RequeueAfter(OPERATION_SYNC, f"Updated TLS config for etcd: {key}, requeuing reconcile request")
    if not peer_tls_in_sync(ctx, run, etcd, current):
        raise RequeueAfter(
            OPERATION_SYNC,
            f"Peer URL TLS not enabled for #{current} members for etcd: {key}, requeuing reconcile request",
        )


async def _create(ctx: SyncContext, run: Run, etcd: Etcd, desired: Obj, key: str) -> None:
    """Create the StatefulSet (create-only: 409 when one of that name exists). When the Etcd was reconciled
    before and pods of it still run (the StatefulSet was deleted with orphan propagation), it is re-created with
    the replicas of the last status, to adopt those pods, and the reconcile requeued."""
    observed = etcd.status.observed_generation if etcd.status else None
    if observed is not None:
        pods = ctx.caches[PODS].select(etcd.namespace, names.default_labels(etcd.name))
        if pods:
            members = len((etcd.status.members if etcd.status else None) or ())
            log.info("re-creating StatefulSet to adopt orphan pods", pods=len(pods), replicas=members)
            orphans = sts_component.variant(etcd, desired, replicas=members)
            await ctx.apply(STATEFULSETS, orphans, None, create=True)
            raise RequeueAfter(
                OPERATION_SYNC,
                "StatefulSet has not yet been created or is not ready with previous replicas for etcd: "
                f"{key}, requeuing reconcile request",
            )
    await ctx.apply(STATEFULSETS, desired, None, create=True)


async def _writable(ctx: SyncContext, run: Run, etcd: Etcd, name: str, *, lookup: bool) -> Obj | None:
    key = f"{etcd.namespace}/{etcd.name}"
    try:
        return await writable(ctx, STATEFULSETS, etcd.namespace, name, run.ref, lookup=lookup)
    except NotControlled as e:
        raise _sync_error(e.message) from e
    except ApiError as e:
        raise _sync_error(f"Error getting StatefulSet {key} for etcd: {key}", e) from e


async def sync_statefulset(ctx: SyncContext, run: Run, etcd: Etcd, plan: Plan) -> None:
    key = f"{etcd.namespace}/{etcd.name}"
    name = names.statefulset_name(etcd.name)
    [desired] = plan.objects[registry.STATEFUL_SET]
    existing = await _writable(ctx, run, etcd, name, lookup=False)
    try:
        if existing is None:
            try:
                await _create(ctx, run, etcd, desired, key)
                return
            except ApiError as e:
                if not e.conflict:
                    raise
            # A StatefulSet of that name exists that the cache does not hold yet: read it and go on as usual.
            existing = await _writable(ctx, run, etcd, name, lookup=True)
            if existing is None:  # gone again in between
                await _create(ctx, run, etcd, desired, key)
                return
        if etcd.spec.replicas != 0:
            await _handle_tls_changes(ctx, run, etcd, existing, desired)
        selector = (_spec(existing).get("selector") or {}).get("matchLabels") or {}
        if selector != names.default_labels(etcd.name):
            meta = existing["metadata"]
            log.info("orphan-deleting StatefulSet: its selector differs", selector=selector)
            await ctx.writing(f"orphan-delete StatefulSet {key}")
            await ctx.kube.delete(STATEFULSETS, name, etcd.namespace, propagation="Orphan", uid=meta.get("uid"))
            raise RequeueAfter(
                OPERATION_SYNC,
                f"StatefulSet has not been orphan deleted: {key} for etcd: {key}, requeuing reconcile request",
            )
        # The selector matches here, so the planned StatefulSet needs no labels of the old template.
        await ctx.apply(STATEFULSETS, _keep_immutable(desired, existing, only_absent=True), existing)
    except ApiError as e:
        raise _sync_error(
            f"Error creating or patching [StatefulSet: {key}, Replicas: {etcd.spec.replicas}] for etcd: {key}", e
        ) from e


# ---------------------------------------------------------------------------------------------- pre-sync


def _presync_prefix(run: Run, etcd: Etcd, existing: Obj) -> str | None:
    if etcd.spec.replicas == 0:
        return PRESYNC_HIBERNATION
    opts = run.deps.build_options
    if not opts.feature(features.UPGRADE_ETCD_VERSION):
        return None
    containers = ((_spec(existing).get("template") or {}).get("spec") or {}).get("containers") or ()
    current = next((x.get("image") for x in containers if x.get("name") == sts_component.CONTAINER_ETCD), None)
    return PRESYNC_UPGRADE if current and current != images.etcd_image(etcd, opts.images) else None


async def pre_sync(ctx: SyncContext, run: Run, etcd: Etcd) -> None:
    """Ensure the pre-sync full snapshot; raises :class:`RequeueAfter` while waiting for it."""
    if not etcd.backup_store_enabled:
        return
    existing = ctx.cached(STATEFULSETS, etcd.namespace, names.statefulset_name(etcd.name))
    if existing is None or not controlled_by(existing, run.ref.uid) or not _spec(existing).get("replicas"):
        return  # (a StatefulSet of someone else is reported by the sync, which leaves it alone)
    prefix = _presync_prefix(run, etcd, existing)
    if prefix is None:
        return
    try:
        tasks = (await ctx.kube.list(ETCD_OPS_TASKS, etcd.namespace)).get("items") or []
    except ApiError as e:
        message = f"Error listing EtcdOpsTasks for etcd: {etcd.namespace}/{etcd.name}"
        raise DruidError(sts_component.ERR_GET_ETCDOPSTASK, OPERATION_PRE_SYNC, message, e) from e
    latest: tuple[int, Obj] | None = None
    for task in tasks:
        suffix = task["metadata"]["name"].removeprefix(prefix)
        if suffix != task["metadata"]["name"] and suffix.isdigit() and (latest is None or int(suffix) > latest[0]):
            latest = (int(suffix), task)
    if latest is None:
        await _create_task(ctx, run, etcd, f"{prefix}0")
        return
    index, task = latest
    name, state = task["metadata"]["name"], (task.get("status") or {}).get("state")
    if state is None:
        raise RequeueAfter(OPERATION_PRE_SYNC, f"Pre-sync snapshot task {name} is initializing")
    if state == c.TASK_SUCCEEDED:
        return
    if state in (c.TASK_FAILED, c.TASK_REJECTED):
        if index >= MAX_PRESYNC_ATTEMPTS - 1:
            log.error("pre-sync snapshot failed after max attempts; proceeding", task=name, state=state)
            return
        await _create_task(ctx, run, etcd, f"{prefix}{index + 1}")
    raise RequeueAfter(OPERATION_PRE_SYNC, f"Pre-sync snapshot task {name} is {state}")


async def _create_task(ctx: SyncContext, run: Run, etcd: Etcd, name: str) -> None:
    task = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {
            "name": name,
            "namespace": etcd.namespace,
            "ownerReferences": [names.owner_reference(etcd.name, etcd.metadata.uid or "")],
        },
        "spec": {"etcdName": etcd.name, "config": {"onDemandSnapshot": {"type": c.SNAPSHOT_FULL}}},
    }
    await ctx.writing(f"create EtcdOpsTask {etcd.namespace}/{name}")
    try:
        await ctx.kube.create(ETCD_OPS_TASKS, task)
    except ApiError as e:
        raise DruidError(
            sts_component.ERR_CREATE_ETCDOPSTASK,
            OPERATION_PRE_SYNC,
            f"Failed to create pre-sync snapshot EtcdOpsTask {name} for etcd: {etcd.namespace}/{etcd.name}",
            e,
        ) from e
    raise RequeueAfter(OPERATION_PRE_SYNC, f"Waiting for pre-sync snapshot task {name} to complete")
