"""The component modules in etcd-druid's sync order, resolved lazily by kind.

Every component module exposes ``KIND``, ``RESOURCE``, ``COMPONENT_LABEL``, ``ERROR_CODES`` and
``build(etcd, opts)``; the Etcd controller walks them in ``SYNC_ORDER``. Modules are imported on first
use, so the registry can be imported (and the others used) before every module exists.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple, Protocol, cast

from druid.api.etcd import Etcd
from druid.components.base import BuildOptions
from druid.runtime.objects import Obj, ResourceRef


class ErrorCodes(NamedTuple):
    """DruidError codes of one component, per operation (``get`` is used by get-existing-names)."""

    get: str
    sync: str
    delete: str


class Component(Protocol):
    """What a component module provides (modules satisfy this protocol structurally)."""

    KIND: str
    RESOURCE: ResourceRef
    COMPONENT_LABEL: str
    ERROR_CODES: ErrorCodes

    def build(self, etcd: Etcd, opts: BuildOptions) -> list[Obj]: ...


SERVICE_ACCOUNT = "ServiceAccount"
ROLE = "Role"
ROLE_BINDING = "RoleBinding"
MEMBER_LEASE = "MemberLease"
SNAPSHOT_LEASE = "SnapshotLease"
POD_DISRUPTION_BUDGET = "PodDisruptionBudget"
CLIENT_SERVICE = "ClientService"
PEER_SERVICE = "PeerService"
CONFIG_MAP = "ConfigMap"
STATEFUL_SET = "StatefulSet"

MODULES: dict[str, str] = {
    SERVICE_ACCOUNT: "druid.components.serviceaccount",
    ROLE: "druid.components.role",
    ROLE_BINDING: "druid.components.rolebinding",
    MEMBER_LEASE: "druid.components.memberlease",
    SNAPSHOT_LEASE: "druid.components.snapshotlease",
    POD_DISRUPTION_BUDGET: "druid.components.pdb",
    CLIENT_SERVICE: "druid.components.clientservice",
    PEER_SERVICE: "druid.components.peerservice",
    CONFIG_MAP: "druid.components.configmap",
    STATEFUL_SET: "druid.components.statefulset",
}
"""Kind -> module, in sync order."""

SYNC_ORDER: tuple[str, ...] = tuple(MODULES)
RUNTIME_KINDS: tuple[str, ...] = SYNC_ORDER[:8]
"""Synced only while runtime component creation is enabled; deleted while it is disabled."""
ALWAYS_KINDS: tuple[str, ...] = (CONFIG_MAP, STATEFUL_SET)


def component(kind: str) -> Component:
    """The module of ``kind`` (imported on first use; ``KeyError`` for an unknown kind)."""
    return cast(Component, importlib.import_module(MODULES[kind]))


def components(kinds: tuple[str, ...] = SYNC_ORDER) -> list[Component]:
    return [component(kind) for kind in kinds]


def sync_kinds(etcd: Etcd) -> tuple[str, ...]:
    """Kinds to sync, in order: all of them, or only ConfigMap and StatefulSet when runtime components are off."""
    return SYNC_ORDER if etcd.runtime_component_creation_enabled else ALWAYS_KINDS


def cleanup_kinds(etcd: Etcd) -> tuple[str, ...]:
    """Kinds to delete during a spec reconcile: the runtime components when their creation is disabled."""
    return () if etcd.runtime_component_creation_enabled else RUNTIME_KINDS
