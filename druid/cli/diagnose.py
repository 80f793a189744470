"""Why an Etcd is not Ready, in one line, from the live objects (pure; used by ``druid status``).

The verdict does not trust ``Etcd.status``: members come from the member Leases (renewTime against the
operator's unknown/not-ready thresholds, like druid's member check), backups from the snapshot Leases, the
rollout from the StatefulSet, references from the Secrets that exist. So it is right when druid is not
running or its status is stale. ``status`` only contributes what exists nowhere else: lastOperation /
lastErrors, observedGeneration, DataVolumesReady, and the condition quoted next to a backup problem.

Ready means: not being deleted; every referenced Secret exists; replicas > 0 and runtime components
enabled; a StatefulSet controlled by the Etcd, rolled out, with all pods ready; every member's lease
renewed within the unknown threshold and one cluster ID; snapshot leases fresh when a store is configured
(delta < 2 x deltaSnapshotPeriod, full < the full-snapshot schedule window, as the BackupReady condition);
no data-volume warnings; the last operation not failed; the current generation reconciled.

Problems are collected in that order; the line names the first (``NOT READY: <problem>[ (+N more)]``).
While spec reconciliation is suspended, the line reads ``NOT READY: spec reconciliation suspended
(annotation ...) and <problem>``, since druid will not act on it; a suspended Etcd without problems is
Ready (the line says it is suspended).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from druid.api import constants as c
from druid.api import facts, names
from druid.api.facts import MemberThresholds, controlled_by, secret_references, uid
from druid.controllers.etcd import members as m
from druid.controllers.etcd.conditions import DEFAULT_DELTA_SNAPSHOT_PERIOD, full_snapshot_window
from druid.gocompat import duration
from druid.runtime.clock import parse_time

Lease = Mapping[str, Any]
MISSING = "Missing"  # member lease does not exist
STARTING = "Starting"  # lease exists but was never renewed with a parseable holder identity

DEFAULT_THRESHOLDS = MemberThresholds()


@dataclass(frozen=True)
class MemberView:
    name: str
    status: str  # Ready, NotReady, Unknown, Missing, Starting
    reason: str
    role: str | None = None
    member_id: str | None = None
    cluster_id: str | None = None
    renewed_age: float | None = None  # seconds since renewTime


@dataclass(frozen=True)
class SnapshotView:
    kind: str  # "full" or "delta"
    lease_name: str
    present: bool
    renewed_age: float | None  # None: never renewed
    limit: float  # oldest fresh age in seconds (0: never fresh)
    revision: str | None = None
    created_age: float | None = None

    @property
    def fresh(self) -> bool:
        return self.renewed_age is not None and self.renewed_age < self.limit


@dataclass
class Diagnosis:
    ready: bool
    line: str
    problems: list[str] = field(default_factory=list)
    members: list[MemberView] = field(default_factory=list)
    snapshots: list[SnapshotView] = field(default_factory=list)
    suspended: bool = False


def _at(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _age(now: dt.datetime, text: str | None) -> float | None:
    return (now - parse_time(text)).total_seconds() if text else None


def member_views(
    etcd: Mapping[str, Any],
    leases: Mapping[str, Lease],
    now: dt.datetime,
    pods: Mapping[str, Mapping[str, Any]] | None = None,
    thresholds: MemberThresholds = DEFAULT_THRESHOLDS,
) -> list[MemberView]:
    """One view per expected member (ordinals 0..spec.replicas-1), status as druid's member check computes it.

    Without ``pods`` (not observed), a lease past the unknown threshold reads Unknown/LeaseExpired.
    """
    prefix = (etcd.get("spec") or {}).get("memberNamePrefix")
    views = []
    for name in m.expected_lease_names(etcd):
        lease = leases.get(name)
        if lease is None:
            views.append(MemberView(name, MISSING, "LeaseNotFound"))
            continue
        spec = lease.get("spec") or {}
        holder = m.parse_holder_identity(spec.get("holderIdentity"))
        age = _age(now, spec.get("renewTime"))
        if holder is None or age is None:
            views.append(MemberView(name, STARTING, "LeaseNotRenewed", renewed_age=age))
            continue
        if age > thresholds.unknown + thresholds.not_ready:
            status, reason = c.MEMBER_NOT_READY, m.REASON_UNKNOWN_GRACE_PERIOD_EXCEEDED
        elif age > thresholds.unknown:
            if pods is None or m.containers_ready(pods.get(m.pod_name_for_lease(name, prefix))):
                status, reason = c.MEMBER_UNKNOWN, m.REASON_LEASE_EXPIRED
            else:
                status, reason = c.MEMBER_NOT_READY, m.REASON_CONTAINERS_NOT_READY
        else:
            status, reason = c.MEMBER_READY, m.REASON_LEASE_SUCCEEDED
        views.append(MemberView(name, status, reason, holder.role, holder.member_id, holder.cluster_id, age))
    return views


def snapshot_views(etcd: Mapping[str, Any], leases: Mapping[str, Lease], now: dt.datetime) -> list[SnapshotView]:
    """Full and delta snapshot lease freshness; empty when no backup store is configured."""
    backup = (etcd.get("spec") or {}).get("backup") or {}
    if not (backup.get("store") or {}).get("provider"):
        return []
    name = (etcd.get("metadata") or {}).get("name", "")
    period = backup.get("deltaSnapshotPeriod")
    delta_period = duration.seconds(period) if period else DEFAULT_DELTA_SNAPSHOT_PERIOD
    views = []
    for kind, lease_name in (
        (c.SNAPSHOT_FULL, names.full_snapshot_lease_name(name)),
        (c.SNAPSHOT_DELTA, names.delta_snapshot_lease_name(name)),
    ):
        lease = leases.get(lease_name)
        spec = (lease or {}).get("spec") or {}
        renew = spec.get("renewTime")
        created = _at(lease, "metadata", "creationTimestamp")
        if kind == c.SNAPSHOT_DELTA:
            limit = 2 * delta_period
        else:
            try:  # the cron window the last full snapshot (or the lease's creation) fell in
                moment = renew or created
                limit = full_snapshot_window(backup.get("fullSnapshotSchedule"), parse_time(moment)) if moment else 0
            except ValueError:
                limit = 0.0
        revision = spec.get("holderIdentity")
        views.append(
            SnapshotView(kind, lease_name, lease is not None, _age(now, renew), limit, revision, _age(now, created))
        )
    return views


def _condition(etcd: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    return next((x for x in (etcd.get("status") or {}).get("conditions") or () if x.get("type") == ctype), None)


def _member_problems(views: list[MemberView], replicas: int) -> list[str]:
    out = []
    for v in views:
        if v.status == MISSING:
            out.append(f"member lease {v.name} not found")
        elif v.status == STARTING:
            out.append(f"member {v.name} has not renewed its lease yet (not started)")
        elif v.status != c.MEMBER_READY:
            out.append(
                f"member {v.name} lease not renewed for {duration.human_duration(v.renewed_age or 0)} "
                f"({v.status}/{v.reason})"
            )
    up = sum(1 for v in views if v.status in (c.MEMBER_READY, c.MEMBER_UNKNOWN))
    if out and up < replicas // 2 + 1:
        ready = sum(1 for v in views if v.status == c.MEMBER_READY)
        out[0] = f"quorum lost ({ready}/{replicas} members ready): {out[0]}"
    ids: dict[str, list[str]] = {}
    for v in views:
        if v.cluster_id and v.status in (c.MEMBER_READY, c.MEMBER_NOT_READY):
            ids.setdefault(v.cluster_id, []).append(v.name)
    if len(ids) > 1:
        out.append(
            f"members report {len(ids)} cluster IDs: " + "; ".join(f"{k}: {', '.join(n)}" for k, n in ids.items())
        )
    return out


def _statefulset_problems(etcd: Mapping[str, Any], sts: Mapping[str, Any] | None, replicas: int) -> list[str]:
    meta = etcd.get("metadata") or {}
    name = f"{meta.get('namespace', '')}/{names.statefulset_name(meta.get('name', ''))}"
    if sts is None:
        return [f"StatefulSet {name} not found"]
    if not controlled_by(sts, uid(etcd)):
        return [f"StatefulSet {name} is not controlled by this Etcd"]
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    generation = (sts.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return [f"StatefulSet {name} has not observed generation {generation} yet"]
    out = []
    if spec.get("replicas", 1) != replicas:
        out.append(f"StatefulSet {name} has {spec.get('replicas', 1)} replicas, the Etcd wants {replicas}")
    if status.get("readyReplicas", 0) < replicas:
        out.append(f"StatefulSet {name}: {status.get('readyReplicas', 0)}/{replicas} pods ready")
    if status.get("updateRevision") != status.get("currentRevision") or status.get("updatedReplicas", 0) < replicas:
        out.append(
            f"StatefulSet {name} rollout in progress ({status.get('updatedReplicas', 0)}/{replicas} pods updated)"
        )
    return out


def _backup_problems(etcd: Mapping[str, Any], views: list[SnapshotView]) -> list[str]:
    if not views:
        return []
    missing = [v.lease_name for v in views if not v.present]
    if missing:
        return [f"snapshot lease {n} not found" for n in missing]
    full, delta = views
    cond = _condition(etcd, c.CONDITION_BACKUP_READY)
    quoted = f"BackupReady={cond.get('status')}/{cond.get('reason')}" if cond else "BackupReady not reported"
    if full.renewed_age is None and delta.renewed_age is None:
        return [f"no snapshot taken yet: snapshot leases never renewed ({quoted})"]
    stale = []
    if delta.renewed_age is None:
        stale.append("delta snapshots not started")
    elif not delta.fresh:
        stale.append(f"delta snapshot last renewed {duration.human_duration(delta.renewed_age)} ago")
    if full.renewed_age is not None and not full.fresh:
        stale.append(f"full snapshot last renewed {duration.human_duration(full.renewed_age)} ago")
    elif full.renewed_age is None and (full.created_age or 0) >= full.limit:
        stale.append(f"no full snapshot in {duration.human_duration(full.created_age or 0)}")
    return [f"backup snapshot leases stale: {', '.join(stale)} ({quoted})"] if stale else []


def _status_problems(etcd: Mapping[str, Any]) -> list[str]:
    status, meta = etcd.get("status") or {}, etcd.get("metadata") or {}
    out = []
    volumes = _condition(etcd, c.CONDITION_DATA_VOLUMES_READY)
    if volumes and volumes.get("status") == c.CONDITION_FALSE:
        message = (volumes.get("message") or "").strip().splitlines()
        out.append(f"data volumes not ready ({volumes.get('reason')}): {message[0] if message else ''}".rstrip(": "))
    op = status.get("lastOperation") or {}
    if op.get("state") == c.OPERATION_STATE_ERROR:
        errors = status.get("lastErrors") or []
        detail = errors[0].get("description") if errors else op.get("description")
        out.append(f"last {op.get('type', 'operation')} failed: {detail}")
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed != generation:
        out.append(f"spec generation {generation} not reconciled (observedGeneration {observed or 'none'})")
    return out


def analyse(
    etcd: Mapping[str, Any],
    leases: Mapping[str, Lease],
    secrets: Collection[str],
    statefulset: Mapping[str, Any] | None,
    now: dt.datetime,
    *,
    pods: Mapping[str, Mapping[str, Any]] | None = None,
    thresholds: MemberThresholds = DEFAULT_THRESHOLDS,
) -> Diagnosis:
    """Everything ``druid status`` shows: member and snapshot views, all problems, the verdict line."""
    meta = etcd.get("metadata") or {}
    replicas = int((etcd.get("spec") or {}).get("replicas") or 0)
    views = member_views(etcd, leases, now, pods, thresholds)
    snaps = snapshot_views(etcd, leases, now)
    problems: list[str] = []
    if meta.get("deletionTimestamp"):
        problems.append(
            f"Etcd is being deleted (since {duration.human_duration(_age(now, meta['deletionTimestamp']) or 0)} ago)"
        )
    problems += [
        f'secret "{s}" referenced by {where} is missing' for s, where in secret_references(etcd) if s not in secrets
    ]
    if not facts.runtime_components_enabled(etcd):
        problems.append(
            f"runtime component creation disabled (annotation {c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION})"
        )
    if replicas == 0:
        problems.append("scaled to zero (spec.replicas is 0)")
    else:
        problems += _statefulset_problems(etcd, statefulset, replicas)
        problems += _member_problems(views, replicas)
        problems += _backup_problems(etcd, snaps)
    problems += _status_problems(etcd)

    suspended = facts.spec_reconcile_suspended(etcd)
    suspension = f"spec reconciliation suspended (annotation {c.ANNOTATION_SUSPEND_SPEC_RECONCILE})"
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        line = f"NOT READY: {suspension + ' and ' if suspended else ''}{problems[0]}{more}"
    else:
        line = f"READY: {replicas}/{replicas} members ready, quorate" + (", backups fresh" if snaps else "")
        line += f"; {suspension}" if suspended else ""
    return Diagnosis(not problems, line, problems, views, snaps, suspended)
