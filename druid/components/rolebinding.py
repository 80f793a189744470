"""RoleBinding ``druid.gardener.cloud:etcd:<n>`` of the Role to ServiceAccount ``<n>``; found by name."""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import ROLEBINDINGS, Obj

KIND = "RoleBinding"
RESOURCE = ROLEBINDINGS
COMPONENT_LABEL = c.COMPONENT_ROLE_BINDING
ERROR_CODES = ErrorCodes("ERR_GET_ROLE_BINDING", "ERR_SYNC_ROLE_BINDING", "ERR_DELETE_ROLE_BINDING")


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    name = names.role_binding_name(etcd.name)
    # ':' is not allowed in a label value, so the name label uses '-'.
    meta = metadata(etcd, name, COMPONENT_LABEL, app_name=name.replace(":", "-"))
    return [
        obj(
            RESOURCE.api_version,
            RESOURCE.kind,
            meta,
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.role_name(etcd.name)},
            subjects=[
                {"kind": "ServiceAccount", "name": names.service_account_name(etcd.name), "namespace": etcd.namespace}
            ],
        )
    ]


COMPONENT = Component.of(globals(), object_names=lambda n: [names.role_binding_name(n)])
