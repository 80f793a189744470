"""The seven Etcd conditions druid manages (upstream ``internal/health/condition``), and how they are merged.

Deviations from upstream, each because upstream reports a wrong or needlessly changing status:

* ``lastUpdateTime`` moves only when ``status``, ``reason`` or ``message`` change (upstream: every sync, which
  forces a status write every sync period for every Etcd); ``lastTransitionTime`` moves only when the
  *written* status changes (upstream also moves it while scaled to 0, when the status is kept but differs
  from the freshly computed one).
* BackupReady compares with the *BackupReady* condition only (upstream's lookup falls back to the last
  condition in the list, i.e. ``Ready``, when BackupReady is absent); without ``deltaSnapshotPeriod``
  it uses backup-restore's default 20s (upstream dereferences nil and panics); the allowed age of a full
  snapshot is the length of the cron window the snapshot fell in (upstream: the gap between the next two
  runs after now — the same for evenly spaced schedules, wrong for e.g. ``0 0 * * 1,3``).
* DataVolumesReady lists events with absolute times (upstream writes "5m ago", which is stale as soon as
  it is stored) and sorts them by time correctly (upstream sorts by the wrong slice).
* ClusterIDMismatch ignores leases whose ``holderIdentity`` is still nil (members not started yet);
  upstream turns the whole condition Unknown then, hiding a real split exactly during scale-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from druid.api import constants as c
from druid.controllers.etcd.members import parse_holder_identity
from druid.gocompat import duration
from druid.runtime.clock import parse_time, rfc3339

MANAGED_TYPES = frozenset(
    {
        c.CONDITION_READY,
        c.CONDITION_ALL_MEMBERS_READY,
        c.CONDITION_ALL_MEMBERS_UPDATED,
        c.CONDITION_BACKUP_READY,
        c.CONDITION_DATA_VOLUMES_READY,
        c.CONDITION_CLUSTER_ID_MISMATCH,
        c.CONDITION_BOOTSTRAPPED_WITH_EXISTING_CLUSTER,
    }
)
REASON_NOT_CHECKED = "NotChecked"
MESSAGE_SCALED_DOWN = "etcd cluster has been scaled down"
DEFAULT_FULL_SNAPSHOT_INTERVAL = 24 * 3600.0
DEFAULT_DELTA_SNAPSHOT_PERIOD = 20.0  # backup-restore's default when --delta-snapshot-period is not passed
_NO_MEMBERS = "Cannot determine readiness since status has no members"
_T, _F, _U = c.CONDITION_TRUE, c.CONDITION_FALSE, c.CONDITION_UNKNOWN


@dataclass(frozen=True)
class Result:
    type: str
    status: str
    reason: str
    message: str


def check_ready(members: Sequence[Mapping[str, Any]], pods_ready: Container[str]) -> Result:
    """Quorate when a majority of members is not NotReady by its lease AND has a Ready pod (``pods_ready``: the
    member names whose pod's containers are ready). Deliberate deviation: upstream looks at leases only, so an
    Etcd whose sidecars renew leases while etcd itself never gets Ready showed Ready=True with no Ready pod."""
    t = c.CONDITION_READY
    if not members:
        return Result(t, _U, "NoMembersInStatus", _NO_MEMBERS)
    ready = sum(1 for m in members if m.get("status") != c.MEMBER_NOT_READY and m.get("name") in pods_ready)
    if ready < len(members) // 2 + 1:
        return Result(t, _F, "QuorumLost", "The majority of ETCD members is not ready")
    return Result(t, _T, "Quorate", "The majority of ETCD members is ready")


def check_all_members_ready(members: Sequence[Mapping[str, Any]], replicas: int, pods_ready: Container[str]) -> Result:
    """All members Ready by lease, each with a Ready pod (same deviation as :func:`check_ready`)."""
    t = c.CONDITION_ALL_MEMBERS_READY
    if not members:
        return Result(t, _U, "NoMembersInStatus", _NO_MEMBERS)
    if len(members) < replicas or any(
        m.get("status") != c.MEMBER_READY or m.get("name") not in pods_ready for m in members
    ):
        return Result(t, _F, "NotAllMembersReady", "At least one member is not ready")
    return Result(t, _T, "AllMembersReady", "All members are ready")


def _statefulset_not_found(t: str, etcd_name: str) -> Result:
    return Result(t, _U, "StatefulSetNotFound", f"StatefulSet {etcd_name} not found for etcd")


def check_all_members_updated(etcd_name: str, sts: Mapping[str, Any] | None) -> Result:
    t = c.CONDITION_ALL_MEMBERS_UPDATED
    if sts is None:
        return _statefulset_not_found(t, etcd_name)
    status, spec = sts.get("status") or {}, sts.get("spec") or {}
    if (
        status.get("observedGeneration", 0) == (sts.get("metadata") or {}).get("generation", 0)
        and status.get("updatedReplicas", 0) == spec.get("replicas", 1)
        and status.get("updateRevision", "") == status.get("currentRevision", "")
    ):
        return Result(t, _T, "AllMembersUpdated", "All members reflect latest desired spec")
    return Result(t, _F, "NotAllMembersUpdated", "At least one member is not yet updated")


def check_data_volumes_ready(
    etcd_name: str,
    sts: Mapping[str, Any] | None,
    pvc_warnings: Mapping[str, Sequence[Mapping[str, Any]]] | None,
) -> Result:
    t = c.CONDITION_DATA_VOLUMES_READY
    if sts is None:
        return _statefulset_not_found(t, etcd_name)
    meta = sts.get("metadata") or {}
    namespace, key = meta.get("namespace", ""), f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    if pvc_warnings is None:
        reason = "UnableToFetchWarningEventsForDataVolumes"
        return Result(t, _U, reason, f"Unable to fetch warning events for PVCs used by StatefulSet {key}")
    parts = []
    for pvc in sorted(pvc_warnings):
        text = _events_message(pvc_warnings[pvc])
        if text:
            parts.append(f"Warning for PVC {namespace}/{pvc}: {text}")
    if parts:
        return Result(t, _F, "FoundWarningsForDataVolumes", "; ".join(parts).strip())
    return Result(t, _T, "NoWarningsFoundForDataVolumes", f"No warning events found for PVCs used by StatefulSet {key}")


def _stamp(text: str | None) -> str:
    return rfc3339(parse_time(text)) if text else "<unknown>"


def _events_message(events: Iterable[Mapping[str, Any]], limit: int = 2) -> str:
    """The latest ``limit`` Warning events, oldest first, like upstream's ``fetchEventMessages``."""
    warnings = [e for e in events if e.get("type") == "Warning"]
    if not warnings:
        return ""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)

    def when(e: Mapping[str, Any]) -> dt.datetime:
        text = e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp")
        return parse_time(text) if text else epoch

    lines = ["-> Events:"]
    for e in sorted(warnings, key=when)[-limit:]:
        count, first = e.get("count") or 0, e.get("firstTimestamp")
        if count > 1:
            interval = f"at {_stamp(e.get('lastTimestamp'))} (x{count} since {_stamp(first)})"
        else:
            interval = f"at {_stamp(first or e.get('eventTime'))}"
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        lines.append(f"* {source} reported {interval}: {e.get('message', '')}")
    return "\n".join(lines)


def check_cluster_id_mismatch(
    lease_names: Sequence[str], leases: Mapping[str, Mapping[str, Any]], members: Sequence[Mapping[str, Any]]
) -> Result:
    t = c.CONDITION_CLUSTER_ID_MISMATCH
    cluster_ids: dict[str, str] = {}
    for name in lease_names:
        lease = leases.get(name)
        holder_identity = (lease.get("spec") or {}).get("holderIdentity") if lease is not None else None
        if holder_identity is None:
            continue  # lease not created yet, or member not started yet
        holder = parse_holder_identity(holder_identity)
        if holder is None:
            message = f"Unable to parse Lease {name} holder identity: unexpected lease holder identity format: "
            return Result(t, _U, "UnableToParseLeaseHolderIdentity", message + holder_identity)
        if holder.cluster_id is not None:
            cluster_ids[name] = holder.cluster_id
    unique: list[str] = []
    for m in members:
        cid = cluster_ids.get(m.get("name", ""))
        if m.get("status") != c.MEMBER_UNKNOWN and cid is not None and cid not in unique:
            unique.append(cid)
    if not unique:
        return Result(t, _U, "NoClusterIDDetected", "No cluster ID could be detected from known ETCD members")
    if len(unique) == 1:
        return Result(t, _F, "NoClusterIDMismatchDetected", "No cluster ID mismatch detected among ETCD members")
    return Result(t, _T, "MultipleClusterIDsDetected", "Multiple cluster IDs detected among ETCD members")


def check_bootstrap(etcd: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> Result | None:
    t = c.CONDITION_BOOTSTRAPPED_WITH_EXISTING_CLUSTER
    done = "All members have successfully joined the existing cluster"
    if (etcd.get("status") or {}).get("bootstrapWithExistingCluster"):
        return Result(t, _T, "BootstrapSucceeded", done)  # sticky once recorded
    spec = etcd.get("spec") or {}
    if not ((spec.get("etcd") or {}).get("bootstrapWithExistingCluster") or {}).get("members"):
        return None
    if len(members) < int(spec.get("replicas") or 0):
        return Result(t, _F, "BootstrapInProgress", "Not all members have joined the cluster yet")
    if any(m.get("status") != c.MEMBER_READY for m in members):
        return Result(t, _F, "BootstrapInProgress", "Not all members are ready")
    return Result(t, _T, "BootstrapSucceeded", done)


def full_snapshot_window(schedule: str | None, at: dt.datetime) -> float:
    """Seconds between the cron runs around ``at`` (24h without a schedule); ``ValueError`` if unparseable."""
    if schedule is None:
        return DEFAULT_FULL_SNAPSHOT_INTERVAL
    following = croniter(schedule, at).get_next(dt.datetime)
    return (following - croniter(schedule, following).get_prev(dt.datetime)).total_seconds()


def check_backup_ready(
    etcd: Mapping[str, Any], snapshot_leases: Mapping[str, Mapping[str, Any]], now: dt.datetime
) -> Result | None:
    backup = (etcd.get("spec") or {}).get("backup") or {}
    if not (backup.get("store") or {}).get("provider"):
        return None
    t = c.CONDITION_BACKUP_READY
    unknown = Result(t, _U, c.REASON_UNKNOWN, "Cannot determine etcd backup status")
    full, delta = snapshot_leases.get(c.SNAPSHOT_FULL), snapshot_leases.get(c.SNAPSHOT_DELTA)
    if full is None or delta is None:
        return unknown

    def renewed(lease: Mapping[str, Any]) -> dt.datetime | None:
        text = (lease.get("spec") or {}).get("renewTime")
        return parse_time(text) if text else None

    full_renew, delta_renew = renewed(full), renewed(delta)
    period = backup.get("deltaSnapshotPeriod")
    delta_period = duration.seconds(period) if period is not None else DEFAULT_DELTA_SNAPSHOT_PERIOD

    def age(moment: dt.datetime) -> float:
        return (now - moment).total_seconds()

    def full_fresh(moment: dt.datetime) -> bool:
        try:
            return age(moment) < full_snapshot_window(backup.get("fullSnapshotSchedule"), moment)
        except ValueError:  # a schedule the CRD pattern lets through but cron cannot run: never fresh
            return False

    if full_renew is None and delta_renew is not None:
        created_text = (full.get("metadata") or {}).get("creationTimestamp")
        if age(delta_renew) < 2 * delta_period and created_text and full_fresh(parse_time(created_text)):
            return Result(t, _T, "BackupSucceeded", "Delta snapshot backup succeeded")
    elif full_renew is not None and delta_renew is None:
        if age(full_renew) > 5 * delta_period:
            return Result(t, _U, c.REASON_UNKNOWN, "Periodic delta snapshots not started yet")
    elif full_renew is not None and delta_renew is not None:
        if age(delta_renew) < 2 * delta_period and full_fresh(full_renew):
            return Result(t, _T, "BackupSucceeded", "Snapshot backup succeeded")
    else:
        return unknown
    previous = next((x for x in (etcd.get("status") or {}).get("conditions") or () if x.get("type") == t), None)
    if (
        previous is not None
        and previous.get("status") in (_U, _F)
        and delta_renew is not None
        and age(delta_renew) > 3 * delta_period
    ):
        return Result(t, _F, "BackupFailed", "Stale snapshot leases. Not renewed in a long time")
    return unknown


def build_conditions(
    old: Iterable[Mapping[str, Any]], results: Iterable[Result], replicas: int, now: dt.datetime
) -> list[dict[str, Any]]:
    """Merge results into the old conditions: sorted by type; managed types without a result are dropped,
    other types kept verbatim; with ``replicas == 0`` the status is kept (Unknown if new) as NotChecked."""
    stamp = rfc3339(now)
    previous = {cond.get("type"): cond for cond in old}
    conditions: list[dict[str, Any]] = []
    for res in results:
        prev = previous.pop(res.type, None) or {}
        if replicas == 0:
            status, reason, message = prev.get("status") or _U, REASON_NOT_CHECKED, MESSAGE_SCALED_DOWN
        else:
            status, reason, message = res.status, res.reason, res.message
        status_changed = prev.get("status") != status
        changed = status_changed or prev.get("reason") != reason or prev.get("message") != message
        conditions.append(
            {
                "type": res.type,
                "status": status,
                "lastTransitionTime": stamp if status_changed else prev.get("lastTransitionTime") or stamp,
                "lastUpdateTime": stamp if changed else prev.get("lastUpdateTime") or stamp,
                "reason": reason,
                "message": message,
            }
        )
    conditions += [dict(cond) for ctype, cond in previous.items() if ctype not in MANAGED_TYPES]
    conditions.sort(key=lambda cond: str(cond.get("type")))
    return conditions
