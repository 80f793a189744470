"""Pure computation of the Etcd status fields druid owns (upstream ``reconcile_status.go`` + ``internal/health``).

``compute_status`` takes everything it needs in ``Observed`` (including ``now``) and returns the complete
desired value of the owned fields in wire form; an owned field missing from the result must be absent from
``/status`` (``merge_patch`` turns that into ``null``). Fields druid does not own here (``observedGeneration``,
``lastOperation``, ``lastErrors``, ...) are never touched.

Zero-write steady state: the controller patches ``/status`` only when ``status_changed`` says so. Upstream
bumps every condition's ``lastUpdateTime`` on each sync, which means one status write per Etcd every sync
period even when nothing changed. Here ``lastUpdateTime`` changes only when the condition's status, reason
or message changes (it is then "when the content of this condition last changed"), so unchanged inputs give
an identical result however much later ``now`` is. Nothing else time-dependent is written except at a real
change (member/condition ``lastTransitionTime``, ``bootstrapWithExistingCluster.joinedAt``); see
``conditions`` for message texts that avoid relative times.

Other deliberate deviations (the rest are in ``conditions``):

* When the StatefulSet is missing (or not controlled by this Etcd), upstream zeroes ``currentReplicas`` and
  ``readyReplicas`` but leaves ``replicas`` (the scale subresource's status) at its old value; it is
  dropped here as well, since no replicas exist.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from druid.api import constants as c
from druid.api import names
from druid.api.facts import MemberThresholds, controlled_by, uid
from druid.controllers.etcd import conditions as cond
from druid.controllers.etcd.members import (
    containers_ready,
    expected_lease_names,
    member_statuses,
    pod_name_for_lease,
)
from druid.runtime.clock import rfc3339
from druid.runtime.patch import merge_patch_diff

__all__ = ["OWNED_FIELDS", "MemberThresholds", "Observed", "compute_status", "merge_patch", "status_changed"]

# Top-level /status fields compute_status decides; a field absent from its result is to be removed.
OWNED_FIELDS = (
    "members",
    "conditions",
    "etcd",
    "currentReplicas",
    "readyReplicas",
    "replicas",
    "ready",
    "selector",
    "bootstrapWithExistingCluster",
)


@dataclass(frozen=True)
class Observed:
    etcd: dict[str, Any]  # the Etcd as cached (raw dict, incl. current status)
    statefulset: dict[str, Any] | None  # the StatefulSet <name> if it exists (raw), else None
    member_leases: dict[str, dict[str, Any]] = field(default_factory=dict)  # lease name -> Lease
    snapshot_leases: dict[str, dict[str, Any]] = field(default_factory=dict)  # "full"/"delta" -> Lease
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # pod name -> Pod
    # PVC name -> Warning Events for unbound data PVCs; None = the events could not be read
    pvc_warnings: dict[str, list[dict[str, Any]]] | None = None
    _: KW_ONLY
    now: dt.datetime  # aware UTC


def statefulset_ready(sts: dict[str, Any], expected_replicas: int) -> bool:
    """Upstream ``IsStatefulSetReady``."""
    status = sts.get("status") or {}
    return (
        status.get("observedGeneration", 0) >= (sts.get("metadata") or {}).get("generation", 0)
        and status.get("readyReplicas", 0) >= expected_replicas
        and status.get("currentRevision", "") == status.get("updateRevision", "")
        and status.get("currentReplicas", 0) == status.get("updatedReplicas", 0)
    )


def _statefulset_fields(etcd: dict[str, Any], sts: dict[str, Any] | None) -> dict[str, Any]:
    old = etcd.get("status") or {}
    if sts is None:
        # No StatefulSet: nothing runs. The reference is kept, as upstream does.
        return {"ready": False} | ({"etcd": copy.deepcopy(old["etcd"])} if old.get("etcd") else {})
    status = sts.get("status") or {}
    expected = int((etcd.get("spec") or {}).get("replicas") or 0)
    if old.get("observedGeneration") != (etcd.get("metadata") or {}).get("generation"):
        expected = int((sts.get("spec") or {}).get("replicas", 1))  # spec not reconciled yet
    out: dict[str, Any] = {
        "etcd": {
            "apiVersion": sts.get("apiVersion") or "apps/v1",
            "kind": sts.get("kind") or "StatefulSet",
            "name": (sts.get("metadata") or {}).get("name", ""),
        },
        "ready": statefulset_ready(sts, expected),
    }
    current, ready_replicas = status.get("currentReplicas", 0), status.get("readyReplicas", 0)
    if current:  # int32 omitempty
        out["currentReplicas"] = out["replicas"] = current
    if ready_replicas:
        out["readyReplicas"] = ready_replicas
    return out


def compute_status(observed: Observed, thresholds: MemberThresholds) -> dict[str, Any]:
    """The status fields druid owns, as a JSON-ready dict in wire form (camelCase), to merge-patch into /status."""
    etcd, now = observed.etcd, observed.now
    old = etcd.get("status") or {}
    spec = etcd.get("spec") or {}
    name = (etcd.get("metadata") or {}).get("name", "")
    replicas = int(spec.get("replicas") or 0)
    sts = observed.statefulset if controlled_by(observed.statefulset, uid(etcd)) else None

    members = member_statuses(
        etcd, observed.member_leases, observed.pods, now, thresholds.unknown, thresholds.not_ready
    )
    prefix = spec.get("memberNamePrefix")
    pods_ready = {
        m["name"] for m in members if containers_ready(observed.pods.get(pod_name_for_lease(m["name"], prefix)))
    }
    results = [
        cond.check_ready(members, pods_ready),
        cond.check_all_members_ready(members, replicas, pods_ready),
        cond.check_all_members_updated(name, sts),
        cond.check_backup_ready(etcd, observed.snapshot_leases, now),
        cond.check_data_volumes_ready(name, sts, observed.pvc_warnings),
        cond.check_cluster_id_mismatch(expected_lease_names(etcd), observed.member_leases, members),
        cond.check_bootstrap(etcd, members),
    ]
    conditions = cond.build_conditions(old.get("conditions") or (), [r for r in results if r], replicas, now)

    out: dict[str, Any] = {}
    if members:
        out["members"] = members
    if conditions:
        out["conditions"] = conditions
    out.update(_statefulset_fields(etcd, sts))
    out["selector"] = names.selector_string(names.default_labels(name))

    bootstrap = ((spec.get("etcd") or {}).get("bootstrapWithExistingCluster") or {}).get("members")
    if old.get("bootstrapWithExistingCluster"):
        out["bootstrapWithExistingCluster"] = copy.deepcopy(old["bootstrapWithExistingCluster"])  # write-once
    elif bootstrap and any(
        x.get("type") == c.CONDITION_BOOTSTRAPPED_WITH_EXISTING_CLUSTER and x.get("status") == c.CONDITION_TRUE
        for x in conditions
    ):
        out["bootstrapWithExistingCluster"] = {
            "joinedAt": rfc3339(now),
            "members": [{"name": m["name"], "peerUrls": list(m.get("peerUrls") or [])} for m in bootstrap],
        }
    return out


def merge_patch(old_status: dict[str, Any] | None, new_fields: dict[str, Any]) -> dict[str, Any]:
    """The minimal merge-patch body for /status: changed fields, ``null`` for owned fields to remove.

    Lists (members, conditions) are replaced whole, as merge patch does. ``{}`` means nothing to write.
    """
    old = old_status or {}
    patch: dict[str, Any] = {}
    for key in dict.fromkeys((*OWNED_FIELDS, *new_fields)):
        if key in new_fields:
            if key not in old or old[key] != new_fields[key]:
                patch[key] = merge_patch_diff(old.get(key), new_fields[key])
        elif old.get(key) is not None:
            patch[key] = None
    return patch


def status_changed(old_status: dict[str, Any] | None, new_fields: dict[str, Any]) -> bool:
    """Whether writing ``new_fields`` would change /status."""
    return bool(merge_patch(old_status, new_fields))
