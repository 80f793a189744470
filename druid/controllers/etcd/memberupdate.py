"""Druid-ordered, quorum-aware member updates: the I/O shell around :mod:`updateorder` (``OrderedMemberUpdate``).

Runs on every reconcile of an Etcd whose StatefulSet is ``OnDelete`` (the gate puts it there), after the status
reconcile and whatever the spec reconcile did (a spec reconcile waiting for a TLS roll-out needs the roll to go
on). Not while spec reconciliation is suspended by annotation, the Etcd is being deleted, or runtime
components are disabled. One step per reconcile, never a sleep: the reconcile is requeued after
:data:`ROLL_POLL` (or the status sync period, if shorter) while a roll is under way.

1. Observe (informer caches): the StatefulSet's ``updateRevision`` (nothing is decided until its status has
   observed its generation), every member pod (``controller-revision-hash`` label, Ready condition,
   termination), member health (pod Ready and member lease renewed within the unknown threshold, as
   ``status.members`` says ``Ready``), and the leader: asked of a healthy member through etcd's JSON gateway
   (:mod:`druid.etcdgateway`) when the gateway is on, else the role in the member leases.
2. Decide (:func:`updateorder.decide`).
3. Act: delete the pod (precondition: its UID; druid remembers it and treats the member as absent until the
   cache no longer shows that pod), move leadership (``transfer-leadership`` on the leader), or take the
   pre-roll full snapshot (``GET /snapshot/full`` on backup-restore, as compaction does; remembered per update
   revision, so a restarted druid takes one more, which is harmless).
4. Report: condition ``MemberUpdate`` on the Etcd (status ``True`` while a roll is under way or waiting,
   ``False`` with reason ``UpToDate`` when every member runs the update revision; reason = the step,
   message = progress ``k/N updated`` and the step's detail, naming members) and an Event per action (Normal
   ``MemberReplaced``, ``LeadershipTransferred``, ``SnapshotTaken``; Warning ``SnapshotFailed``,
   ``LeadershipTransferFailed``, and ``WaitingForQuorum`` when the condition turns to that reason).
   The condition is written only when its status, reason or message changes. With the gate off, a stale
   ``MemberUpdate`` condition is removed.

Without the gateway (``spec.etcd.enableGRPCGateway: false``) leadership cannot be moved: the leader is still
replaced last, and etcd itself hands leadership over when it stops gracefully.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog
from pydantic import ValidationError

from druid import etcdgateway as gateway
from druid.api import constants as c
from druid.api import facts, names
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by, uid
from druid.backuprestore import BackupRestoreError
from druid.components import configmap
from druid.config import features
from druid.controllers.compaction.fullsnapshot import take_full_snapshot
from druid.controllers.etcd import conditions as cond
from druid.controllers.etcd import updateorder as order
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.members import member_statuses
from druid.etcdgateway import GatewayError
from druid.runtime.client import ApiError
from druid.runtime.objects import LEASES, PODS, STATEFULSETS, Obj, ObjectKey, pod_ready

log = structlog.get_logger(__name__)

CONDITION_MEMBER_UPDATE = c.CONDITION_MEMBER_UPDATE
REVISION_LABEL = "controller-revision-hash"
ROLL_POLL = 3.0
REASON_SNAPSHOT_FAILED = "SnapshotFailed"
REASON_TRANSFER_FAILED = "LeadershipTransferFailed"
EVENT_REPLACED = "MemberReplaced"
EVENT_TRANSFERRED = "LeadershipTransferred"
EVENT_SNAPSHOT = "SnapshotTaken"


def _live_condition(etcd: Obj) -> dict[str, Any] | None:
    found = [x for x in (etcd.get("status") or {}).get("conditions") or () if x.get("type") == CONDITION_MEMBER_UPDATE]
    return found[0] if found else None


async def _report(run: Run, status: str, reason: str, message: str, *, replicas: int) -> bool:
    """Write the MemberUpdate condition if it changed; True when it did."""
    live = _live_condition(run.etcd)
    if live is not None and (live.get("status"), live.get("reason"), live.get("message")) == (status, reason, message):
        return False
    result = cond.Result(CONDITION_MEMBER_UPDATE, status, reason, message)
    built = cond.build_conditions([live] if live else [], [result], replicas, run.deps.now())
    mine = [x for x in built if x["type"] == CONDITION_MEMBER_UPDATE]
    await run.status.patch_status({"conditions": mine}, owned=(CONDITION_MEMBER_UPDATE,))
    return True


async def _event(run: Run, kind: str, reason: str, message: str) -> None:
    await run.deps.events.event(run.etcd, kind, reason, message)


def _applies(run: Run) -> bool:
    if run.etcd["metadata"].get("deletionTimestamp") or facts.spec_reconcile_suspended(run.etcd):
        return False
    return facts.runtime_components_enabled(run.etcd)


async def reconcile_member_update(run: Run) -> float | None:
    """One step of an ordered roll; the requeue interval while one is under way, else None."""
    deps = run.deps
    if not deps.build_options.feature(features.ORDERED_MEMBER_UPDATE):
        if _live_condition(run.etcd) is not None:
            await run.status.patch_status({"conditions": []}, owned=(CONDITION_MEMBER_UPDATE,))
        return None
    if not _applies(run):
        return None
    meta = run.etcd["metadata"]
    namespace, etcd_name, etcd_uid = meta["namespace"], meta["name"], uid(run.etcd) or ""
    sts = deps.caches[STATEFULSETS].get(ObjectKey(namespace, names.statefulset_name(etcd_name)))
    if sts is None or not controlled_by(sts, etcd_uid):
        return None
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type") != "OnDelete":
        return None
    replicas = int(spec.get("replicas") or 0)
    revision = status.get("updateRevision")
    if replicas == 0 or not revision:
        return None
    if int(status.get("observedGeneration") or 0) < int(sts["metadata"].get("generation") or 0):
        return min(ROLL_POLL, deps.status_sync_period)
    try:
        etcd = Etcd.model_validate(run.etcd)
    except ValidationError:
        return None
    view, pods, ids = _observe(run, etcd, replicas, revision)
    memory = deps.rolls
    poll = min(ROLL_POLL, deps.status_sync_period)
    if any(not m.updated for m in view.members) and configmap.grpc_gateway_enabled(etcd, deps.build_options):
        view = await _with_leader(run, etcd, view, pods, ids)
    step = order.decide(view)
    updated = sum(m.updated for m in view.members)
    progress = f"{updated}/{replicas} members updated to revision {revision}"

    if isinstance(step, order.Done):
        memory.forget(etcd_uid)
        await _report(run, c.CONDITION_FALSE, step.reason, f"{progress}", replicas=replicas)
        return None
    if isinstance(step, order.Wait):
        changed = await _report(run, c.CONDITION_TRUE, step.reason, f"{progress}; {step.message}", replicas=replicas)
        if changed and step.reason == order.REASON_WAITING_FOR_QUORUM:
            await _event(run, "Warning", step.reason, f"not replacing any member: {step.message}")
        return poll
    if isinstance(step, order.Snapshot):
        await _report(
            run,
            c.CONDITION_TRUE,
            step.reason,
            f"{progress}; full snapshot before the first replacement",
            replicas=replicas,
        )
        try:
            await take_full_snapshot(deps.kube, etcd, deps.backup_restore)
        except BackupRestoreError as e:
            await _report(run, c.CONDITION_TRUE, REASON_SNAPSHOT_FAILED, f"{progress}; {e.message}", replicas=replicas)
            await _event(run, "Warning", REASON_SNAPSHOT_FAILED, f"full snapshot before replacing members: {e.message}")
            return poll
        memory.snapshots[etcd_uid] = revision
        await _event(run, "Normal", EVENT_SNAPSHOT, f"full snapshot taken before replacing members ({progress})")
        return 0.5
    if isinstance(step, order.TransferLeadership):
        message = f"moving leadership from {step.leader.name} to updated {step.target.name} before replacing it"
        await _report(run, c.CONDITION_TRUE, step.reason, f"{progress}; {message}", replicas=replicas)
        try:
            await _move_leader(run, etcd, pods[step.leader.name], ids[step.target.name])
        except (BackupRestoreError, GatewayError, ApiError, ValueError) as e:
            text = f"moving leadership from {step.leader.name} to {step.target.name}: {e}"
            await _report(run, c.CONDITION_TRUE, REASON_TRANSFER_FAILED, f"{progress}; {text}", replicas=replicas)
            await _event(run, "Warning", REASON_TRANSFER_FAILED, text)
            return poll
        await _event(
            run, "Normal", EVENT_TRANSFERRED, f"moved leadership from {step.leader.name} to {step.target.name}"
        )
        return 1.0
    assert isinstance(step, order.Delete)
    pod = pods[step.member.name]
    what = "unhealthy member" if step.reason == order.REASON_REPLACING_UNHEALTHY else "follower"
    message = f"replacing {what} {step.member.name} (pod revision {_labels(pod).get(REVISION_LABEL)} -> {revision})"
    await _report(run, c.CONDITION_TRUE, step.reason, f"{progress}; {message}", replicas=replicas)
    try:
        await deps.kube.delete(PODS, step.member.name, namespace, uid=uid(pod))
    except ApiError as e:
        if not (e.not_found or e.status == 409):
            raise
    memory.deleted.setdefault(etcd_uid, set()).add(uid(pod) or "")
    log.info("replaced member", pod=step.member.name, step=step.reason, revision=revision)
    await _event(run, "Normal", EVENT_REPLACED, message)
    return poll


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _observe(
    run: Run, etcd: Etcd, replicas: int, revision: str
) -> tuple[order.RollView, dict[str, Obj], dict[str, str]]:
    """The roll as the caches show it: the view, the member pods by name, member IDs (hex) by pod name."""
    deps, namespace = run.deps, etcd.namespace
    labels = names.default_labels(etcd.name)
    pods = {
        p["metadata"]["name"]: p
        for p in deps.caches[PODS].list(namespace)
        if all(_labels(p).get(k) == v for k, v in labels.items())
    }
    etcd_uid = uid(run.etcd) or ""
    pending = deps.rolls.deleted.get(etcd_uid, set()) & {uid(p) for p in pods.values()}
    deps.rolls.deleted[etcd_uid] = pending  # a deleted pod the cache no longer shows has been replaced
    leases = {x["metadata"]["name"]: x for x in deps.caches[LEASES].list(namespace)}
    wire = dict(run.etcd)
    wire["spec"] = {**(run.etcd.get("spec") or {}), "replicas": replicas}
    statuses = {
        m["name"]: m
        for m in member_statuses(wire, leases, pods, deps.now(), deps.thresholds.unknown, deps.thresholds.not_ready)
    }
    views, ids = [], {}
    for ordinal, pod_name in enumerate(names.pod_names(etcd.name, replicas)):
        pod = pods.get(pod_name)
        member = statuses.get(names.member_name(etcd.spec.member_name_prefix, pod_name)) or {}
        if member.get("id"):
            ids[pod_name] = str(member["id"])
        present = pod is not None and not pod["metadata"].get("deletionTimestamp") and uid(pod) not in pending
        views.append(
            order.MemberView(
                name=pod_name,
                ordinal=ordinal,
                present=present,
                updated=pod is not None and _labels(pod).get(REVISION_LABEL) == revision,
                healthy=present and pod_ready(pod) and member.get("status") == c.MEMBER_READY,
                leader=member.get("role") == c.ROLE_LEADER,
            )
        )
    backup = etcd.backup_store_enabled
    view = order.RollView(tuple(views), backup=backup, snapshot_taken=deps.rolls.snapshots.get(etcd_uid) == revision)
    return view, {k: v for k, v in pods.items()}, ids


def _address(etcd: Etcd, pod: Obj) -> gateway.MemberAddress:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise ValueError(f"pod {pod['metadata']['name']} has no IP")
    return gateway.member_address(etcd, pod["metadata"]["name"], ip)


async def _with_leader(
    run: Run, etcd: Etcd, view: order.RollView, pods: dict[str, Obj], ids: dict[str, str]
) -> order.RollView:
    """``view`` with the leader as a healthy member reports it (the lease roles lag a renewal behind); unchanged
    when no healthy member answers."""
    for member in view.members:
        if not member.healthy:
            continue
        try:
            tls = await gateway.tls_context(run.deps.kube, etcd)
            leader = await gateway.leader_id(run.deps.backup_restore, _address(etcd, pods[member.name]), tls)
        except (BackupRestoreError, GatewayError, ApiError, ValueError) as e:
            log.info("could not ask a member for the leader", member=member.name, error=str(e))
            continue
        if leader == 0:
            continue
        leaders = {name for name, hex_id in ids.items() if _id(hex_id) == leader}
        members = tuple(replace(m, leader=m.name in leaders) for m in view.members)
        return replace(view, members=members)
    return view


def _id(hex_id: str) -> int | None:
    try:
        return int(hex_id, 16)
    except ValueError:
        return None


async def _move_leader(run: Run, etcd: Etcd, leader_pod: Obj, target_hex_id: str) -> None:
    target = _id(target_hex_id)
    if target is None:
        raise ValueError(f"member ID {target_hex_id!r} is not hexadecimal")
    tls = await gateway.tls_context(run.deps.kube, etcd)
    await gateway.move_leader(run.deps.backup_restore, _address(etcd, leader_pod), target, tls)
