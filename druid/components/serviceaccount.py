"""ServiceAccount ``<n>`` the etcd pods run as; found and deleted by name."""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import SERVICEACCOUNTS, Obj

KIND = "ServiceAccount"
RESOURCE = SERVICEACCOUNTS
COMPONENT_LABEL = c.COMPONENT_SERVICE_ACCOUNT
ERROR_CODES = ErrorCodes("ERR_GET_SERVICE_ACCOUNT", "ERR_SYNC_SERVICE_ACCOUNT", "ERR_DELETE_SERVICE_ACCOUNT")


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    name = names.service_account_name(etcd.name)
    return [
        obj(
            RESOURCE.api_version,
            RESOURCE.kind,
            metadata(etcd, name, COMPONENT_LABEL),
            automountServiceAccountToken=not opts.disable_etcd_service_account_automount,
        )
    ]


COMPONENT = Component.of(globals(), object_names=lambda n: [names.service_account_name(n)])
