"""Service ``<n>-client`` in front of the etcd pods: client, server (peer) and backup-restore ports.

``spec.etcd.clientService`` adds labels, sets the annotations and ``trafficDistribution``. druid's own labels
(managed-by, part-of, component, name) always win over a ``clientService`` label with the same key (etcd-druid
lets the user's label win, which takes the Service out of druid's cache and protection). Upstream replaces the
annotations wholesale on every sync, so the built object always carries ``metadata.annotations`` (``{}`` when
none are configured). Found by name.
"""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.api import defaults, names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import SERVICES, Obj

KIND = "ClientService"
RESOURCE = SERVICES
COMPONENT_LABEL = c.COMPONENT_CLIENT_SERVICE
ERROR_CODES = ErrorCodes("ERR_GET_CLIENT_SERVICE", "ERR_SYNC_CLIENT_SERVICE", "ERR_DELETE_CLIENT_SERVICE")


def pod_selector(etcd: Etcd) -> dict[str, str]:
    """The StatefulSet's pods only (default labels alone would also match e.g. compaction job pods)."""
    return {**names.default_labels(etcd.name), c.LABEL_COMPONENT: c.COMPONENT_STATEFULSET}


def port(name: str, number: int) -> dict[str, Any]:
    return {"name": name, "protocol": "TCP", "port": number, "targetPort": number}


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    config = etcd.spec.etcd
    settings = config.client_service
    meta = metadata(etcd, names.client_service_name(etcd.name), COMPONENT_LABEL)
    meta["labels"] = {**((settings.labels if settings else None) or {}), **meta["labels"]}
    meta["annotations"] = dict((settings.annotations if settings else None) or {})
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "selector": pod_selector(etcd),
        "ports": [
            port("client", defaults.client_port(config)),
            port("server", defaults.server_port(config)),  # upstream: "to be removed in a future release"
            port("backuprestore", defaults.backup_port(etcd.spec.backup)),
        ],
    }
    if settings and settings.traffic_distribution:
        spec["trafficDistribution"] = settings.traffic_distribution
    return [obj(RESOURCE.api_version, RESOURCE.kind, meta, spec=spec)]


COMPONENT = Component.of(
    globals(), object_names=lambda n: [names.client_service_name(n)], stale_spec_fields=("trafficDistribution",)
)
