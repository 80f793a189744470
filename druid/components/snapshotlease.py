"""Leases ``<n>-delta-snap`` and ``<n>-full-snap``, only while ``spec.backup.store`` is set.

backup-restore writes their spec (holderIdentity = last snapshot revision, renewTime); druid applies only
labels and ownerReferences, to both leases concurrently. Without a store, Sync deletes the existing ones
instead. Existing objects are found by both names (older leases may lack the labels) and by label selector
(default labels + component), keeping those controlled by the Etcd.
"""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import LEASES, Obj

KIND = "SnapshotLease"
RESOURCE = LEASES
COMPONENT_LABEL = c.COMPONENT_SNAPSHOT_LEASE
ERROR_CODES = ErrorCodes("ERR_GET_SNAPSHOT_LEASE", "ERR_SYNC_SNAPSHOT_LEASE", "ERR_DELETE_SNAPSHOT_LEASE")


def lease_names(etcd: Etcd) -> list[str]:
    """Delta then full, whether or not backups are enabled."""
    return [names.delta_snapshot_lease_name(etcd.name), names.full_snapshot_lease_name(etcd.name)]


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    if not etcd.backup_store_enabled:
        return []
    return [
        obj(RESOURCE.api_version, RESOURCE.kind, metadata(etcd, name, COMPONENT_LABEL), spec={})
        for name in lease_names(etcd)
    ]


COMPONENT = Component.of(
    globals(),
    object_names=lambda n: [names.delta_snapshot_lease_name(n), names.full_snapshot_lease_name(n)],
    concurrent=True,
    found_by_labels=True,
    delete_when_not_desired=True,
    not_applied=("spec",),
)
