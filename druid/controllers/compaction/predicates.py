"""Which events reach the compaction controller (upstream ``register.go`` event filter).

Upstream filters every event of the controller through ``Or(snapshotRevisionChanged, compactionJobStatusChanged)``:

- a snapshot Lease (name ends with ``full-snap``/``delta-snap``): create; update when ``spec.holderIdentity``
  changed;
- the compaction Job (named ``<owner>-compactor`` with an Etcd ownerReference): update when the new status has
  ``active == 0`` and any of active/succeeded/failed/terminating/ready changed;
- deletes and generic events never.

:func:`predicates` gives the runtime's per-event-type filter for each watch (deletes and generic events never
pass).

Deviation (druid addition): Etcd events, which upstream never lets through, pass when they call for deleting the
job (reconcile step 1): an added Etcd that is being deleted or has no backup store, an update that starts deletion
or removes ``spec.backup.store``. Upstream only notices these on the next lease or job event.
"""

from __future__ import annotations

from typing import Any

from druid.api import names
from druid.controllers.compaction.status import ETCDS
from druid.runtime.controller import Predicates, never
from druid.runtime.objects import JOBS, LEASES, Obj, ResourceRef

_SNAPSHOT_LEASE_SUFFIXES = ("full-snap", "delta-snap")
_JOB_STATUS_FIELDS = ("active", "succeeded", "failed", "terminating", "ready")
_COUNTERS = ("active", "succeeded", "failed")  # int32 in Go: absent means 0 (terminating/ready are pointers)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def is_snapshot_lease(obj: Obj) -> bool:
    return _name(obj).endswith(_SNAPSHOT_LEASE_SUFFIXES)


def holder_identity(obj: Obj) -> Any:
    return (obj.get("spec") or {}).get("holderIdentity")


def is_compaction_job(obj: Obj) -> bool:
    """Named ``<etcd>-compactor`` after its (first) Etcd ownerReference."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == ETCDS.kind and ref.get("apiVersion") == ETCDS.api_version:
            return _name(obj) == names.compaction_job_name(str(ref.get("name") or ""))
    return False


def _job_status(obj: Obj) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {k: (status.get(k) or 0) if k in _COUNTERS else status.get(k) for k in _JOB_STATUS_FIELDS}


def job_status_changed(old: Obj, new: Obj) -> bool:
    before, after = _job_status(old), _job_status(new)
    return after["active"] == 0 and before != after


def _etcd_state(obj: Obj) -> tuple[bool, bool]:
    """(being deleted, has a backup store)."""
    deleting = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    store = ((obj.get("spec") or {}).get("backup") or {}).get("store")
    return deleting, store is not None


def passes_create(resource: ResourceRef, obj: Obj) -> bool:
    if resource == LEASES:
        return is_snapshot_lease(obj)
    if resource == ETCDS:
        deleting, has_store = _etcd_state(obj)
        return deleting or not has_store
    return False


def passes_update(resource: ResourceRef, old: Obj, new: Obj) -> bool:
    if resource == LEASES:
        return is_snapshot_lease(new) and holder_identity(old) != holder_identity(new)
    if resource == JOBS:
        return is_compaction_job(new) and job_status_changed(old, new)
    if resource == ETCDS:
        (was_deleting, had_store), (deleting, has_store) = _etcd_state(old), _etcd_state(new)
        return (deleting and not was_deleting) or (had_store and not has_store)
    return False


def predicates(resource: ResourceRef) -> Predicates:
    """The event filter of the watch on ``resource``: creates and updates as above, deletes and generic never."""
    return Predicates(
        create=lambda obj: passes_create(resource, obj),
        update=lambda old, new: passes_update(resource, old, new),
        delete=never,
        generic=never,
    )
