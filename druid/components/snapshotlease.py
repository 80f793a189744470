"""Leases ``<n>-delta-snap`` and ``<n>-full-snap``, only while ``spec.backup.store`` is set.

backup-restore writes their spec (holderIdentity = last snapshot revision, renewTime). Without a store,
Sync deletes them by ``selector(etcd)`` (default labels + component); TriggerDelete does the same.
Upstream finds existing names by getting both ``lease_names(etcd)`` one by one (older leases may lack the
labels), keeping those controlled by the Etcd.
"""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, metadata, obj
from druid.components.registry import SNAPSHOT_LEASE, ErrorCodes
from druid.runtime.objects import LEASES, Obj

KIND = SNAPSHOT_LEASE
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


def selector(etcd: Etcd) -> str:
    """Label selector of both snapshot leases of ``etcd`` (delete-collection)."""
    return names.selector_string({**names.default_labels(etcd.name), c.LABEL_COMPONENT: COMPONENT_LABEL})
