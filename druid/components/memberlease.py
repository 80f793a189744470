"""One Lease per etcd member, named like the member; backup-restore fills in the spec.

Sync creates or patches the leases for members 0..replicas-1, concurrently, applying only labels and
ownerReferences (the spec and the ``member.etcd.gardener.cloud/tls-enabled`` annotation belong to
backup-restore); leases beyond replicas are left alone. Existing names and deletion go by label selector
(default labels + component), keeping only leases controlled by the Etcd.
"""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import LEASES, Obj

KIND = "MemberLease"
RESOURCE = LEASES
COMPONENT_LABEL = c.COMPONENT_MEMBER_LEASE
ERROR_CODES = ErrorCodes("ERR_LIST_MEMBER_LEASE", "ERR_SYNC_MEMBER_LEASE", "ERR_DELETE_MEMBER_LEASE")


def lease_names(etcd: Etcd) -> list[str]:
    return names.member_lease_names(etcd.name, etcd.spec.replicas, etcd.spec.member_name_prefix)


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    return [
        obj(RESOURCE.api_version, RESOURCE.kind, metadata(etcd, name, COMPONENT_LABEL), spec={})
        for name in lease_names(etcd)
    ]


COMPONENT = Component.of(globals(), concurrent=True, found_by_labels=True, not_applied=("spec",))
