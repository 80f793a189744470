"""Headless Service ``<n>-peer`` (the StatefulSet's serviceName) for member-to-member traffic; found by name."""

from __future__ import annotations

from druid.api import constants as c
from druid.api import defaults, names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.components.clientservice import pod_selector, port
from druid.runtime.objects import SERVICES, Obj

KIND = "PeerService"
RESOURCE = SERVICES
COMPONENT_LABEL = c.COMPONENT_PEER_SERVICE
ERROR_CODES = ErrorCodes("ERR_GET_PEER_SERVICE", "ERR_SYNC_PEER_SERVICE", "ERR_DELETE_PEER_SERVICE")


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    spec = {
        "type": "ClusterIP",
        "clusterIP": "None",
        "sessionAffinity": "None",
        "selector": pod_selector(etcd),
        "publishNotReadyAddresses": True,
        "ports": [port("peer", defaults.server_port(etcd.spec.etcd))],
    }
    meta = metadata(etcd, names.peer_service_name(etcd.name), COMPONENT_LABEL)
    return [obj(RESOURCE.api_version, RESOURCE.kind, meta, spec=spec)]


COMPONENT = Component.of(globals(), object_names=lambda n: [names.peer_service_name(n)])
