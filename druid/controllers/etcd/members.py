"""``status.members`` from member leases (upstream ``internal/health/etcdmember``).

backup-restore renews one Lease per member with ``holderIdentity`` ``<memberID>:<role>`` (backup-restore
<= v0.39) or ``<memberID>:<clusterID>:<role>`` and ``renewTime``. A member is listed only once its lease has
a parseable holder identity and a renew time (before that it is still bootstrapping).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.api import names
from druid.runtime.clock import parse_time, rfc3339

REASON_LEASE_SUCCEEDED = "LeaseSucceeded"
REASON_LEASE_EXPIRED = "LeaseExpired"
REASON_CONTAINERS_NOT_READY = "ContainersNotReady"
REASON_UNKNOWN_GRACE_PERIOD_EXCEEDED = "UnknownGracePeriodExceeded"


@dataclass(frozen=True)
class HolderIdentity:
    member_id: str
    cluster_id: str | None  # only in the three-part format
    role: str | None  # Leader, Member, or None for anything else


def parse_holder_identity(holder_identity: str | None) -> HolderIdentity | None:
    """Parse ``<id>:<role>`` or ``<id>:<clusterID>:<role>``; ``None`` for nil or any other shape."""
    if holder_identity is None:
        return None
    parts = holder_identity.split(":")
    if len(parts) == 2:
        return HolderIdentity(parts[0], None, _role(parts[1]))
    if len(parts) == 3:
        return HolderIdentity(parts[0], parts[1], _role(parts[2]))
    return None


def _role(text: str) -> str | None:
    return text if text in (c.ROLE_LEADER, c.ROLE_MEMBER) else None


def expected_lease_names(etcd: Mapping[str, Any]) -> list[str]:
    """Member lease names for ordinals ``0..spec.replicas-1``."""
    spec = etcd.get("spec") or {}
    name = (etcd.get("metadata") or {}).get("name") or ""
    return names.member_lease_names(name, int(spec.get("replicas") or 0), spec.get("memberNamePrefix"))


def pod_name_for_lease(lease_name: str, member_name_prefix: str | None) -> str:
    """The lease name without ``<memberNamePrefix>-``."""
    prefix = f"{member_name_prefix}-" if member_name_prefix else ""
    return lease_name[len(prefix) :] if prefix and lease_name.startswith(prefix) else lease_name


def containers_ready(pod: Mapping[str, Any] | None) -> bool:
    """The pod exists and its ``ContainersReady`` condition is ``True``."""
    if pod is None:
        return False
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "ContainersReady":
            return bool(cond.get("status") == "True")
    return False


def member_statuses(
    etcd: Mapping[str, Any],
    leases: Mapping[str, Mapping[str, Any]],
    pods: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
    unknown_threshold: float,
    not_ready_threshold: float,
) -> list[dict[str, Any]]:
    """The new ``status.members``: sorted by name, ``lastTransitionTime`` kept while ``status`` is unchanged.

    Members whose lease is missing, unparseable or never renewed are dropped.
    """
    old = {m.get("name"): m for m in ((etcd.get("status") or {}).get("members") or ())}
    prefix = (etcd.get("spec") or {}).get("memberNamePrefix")
    members: list[dict[str, Any]] = []
    for lease_name in expected_lease_names(etcd):
        lease = leases.get(lease_name)
        if lease is None:
            continue
        lease_spec = lease.get("spec") or {}
        holder = parse_holder_identity(lease_spec.get("holderIdentity"))
        renew_text = lease_spec.get("renewTime")
        if holder is None or not renew_text:
            continue
        age = (now - parse_time(renew_text)).total_seconds()
        if age > unknown_threshold + not_ready_threshold:
            status, reason = c.MEMBER_NOT_READY, REASON_UNKNOWN_GRACE_PERIOD_EXCEEDED
        elif age > unknown_threshold:
            if containers_ready(pods.get(pod_name_for_lease(lease_name, prefix))):
                status, reason = c.MEMBER_UNKNOWN, REASON_LEASE_EXPIRED
            else:
                status, reason = c.MEMBER_NOT_READY, REASON_CONTAINERS_NOT_READY
        else:
            status, reason = c.MEMBER_READY, REASON_LEASE_SUCCEEDED
        member: dict[str, Any] = {"name": lease_name, "id": holder.member_id}
        if holder.role is not None:
            member["role"] = holder.role
        previous = old.get(lease_name)
        transition = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
        member.update(status=status, reason=reason, lastTransitionTime=transition or rfc3339(now))
        members.append(member)
    members.sort(key=lambda m: m["name"])
    return members
