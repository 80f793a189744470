"""PodDisruptionBudget ``<n>`` over the etcd pods; found and deleted by name."""

from __future__ import annotations

from typing import Any

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import PDBS, Obj

KIND = "PodDisruptionBudget"
RESOURCE = PDBS
COMPONENT_LABEL = c.COMPONENT_PDB
ERROR_CODES = ErrorCodes(
    "ERR_GET_POD_DISRUPTION_BUDGET", "ERR_SYNC_POD_DISRUPTION_BUDGET", "ERR_DELETE_POD_DISRUPTION_BUDGET"
)


def min_available(replicas: int) -> int:
    """0 for a single-member (or empty) cluster, else a quorum: replicas // 2 + 1."""
    return 0 if replicas <= 1 else replicas // 2 + 1


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    spec: dict[str, Any] = {
        "minAvailable": min_available(etcd.spec.replicas),
        "selector": {"matchLabels": names.default_labels(etcd.name)},
    }
    if c.ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION in (etcd.metadata.annotations or {}):
        spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    name = names.pod_disruption_budget_name(etcd.name)
    return [obj(RESOURCE.api_version, RESOURCE.kind, metadata(etcd, name, COMPONENT_LABEL), spec=spec)]


COMPONENT = Component.of(
    globals(),
    object_names=lambda n: [names.pod_disruption_budget_name(n)],
    stale_spec_fields=("unhealthyPodEvictionPolicy",),
)
