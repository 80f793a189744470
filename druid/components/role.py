"""Role ``druid.gardener.cloud:etcd:<n>`` for backup-restore (leases, statefulsets, pods); found by name."""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import ROLES, Obj

KIND = "Role"
RESOURCE = ROLES
COMPONENT_LABEL = c.COMPONENT_ROLE
ERROR_CODES = ErrorCodes("ERR_GET_ROLE", "ERR_SYNC_ROLE", "ERR_DELETE_ROLE")

_READ_WRITE = ["get", "list", "patch", "update", "watch"]


def rules() -> list[Obj]:
    """The rules, in upstream's order."""
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": list(_READ_WRITE)},
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": list(_READ_WRITE)},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    name = names.role_name(etcd.name)
    # ':' is not allowed in a label value, so the name label uses '-'.
    meta = metadata(etcd, name, COMPONENT_LABEL, app_name=name.replace(":", "-"))
    return [obj(RESOURCE.api_version, RESOURCE.kind, meta, rules=rules())]


COMPONENT = Component.of(globals(), object_names=lambda n: [names.role_name(n)])
