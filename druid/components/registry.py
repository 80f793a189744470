"""The managed kinds: one component module per kind, listed once, in etcd-druid's sync order.

Everything that depends on which kinds druid manages is derived from :data:`COMPONENTS`: the objects an
Etcd gets (:func:`desired_objects`, used by the controller's plan and by ``druid render``), what a spec
reconcile syncs and what it deletes (:func:`sync_kinds`, :func:`cleanup_kinds`), the informer caches
(:func:`managed_resources`), the component-protection webhook's kinds and rules and druid's ClusterRole.
Adding a kind is a new module defining ``COMPONENT`` (see ``base.py``) plus its line in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import cast

from druid.api.etcd import Etcd
from druid.components.base import BuildInputs, BuildOptions, Component, ErrorCodes
from druid.runtime.objects import Obj, ResourceRef

__all__ = ["BuildInputs", "Component", "ErrorCodes"]

_MODULES = (
    "druid.components.serviceaccount",
    "druid.components.role",
    "druid.components.rolebinding",
    "druid.components.memberlease",
    "druid.components.snapshotlease",
    "druid.components.pdb",
    "druid.components.clientservice",
    "druid.components.peerservice",
    "druid.components.configmap",
    "druid.components.statefulset",
)

COMPONENTS: tuple[Component, ...] = tuple(cast(Component, importlib.import_module(m).COMPONENT) for m in _MODULES)
"""Every component, in sync order."""

_BY_KIND: dict[str, Component] = {comp.kind: comp for comp in COMPONENTS}

# Kind names of the components the controller refers to one by one.
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

SYNC_ORDER: tuple[str, ...] = tuple(comp.kind for comp in COMPONENTS)
RUNTIME_KINDS: tuple[str, ...] = tuple(comp.kind for comp in COMPONENTS if comp.runtime)
"""Synced only while runtime component creation is enabled; deleted while it is disabled."""
ALWAYS_KINDS: tuple[str, ...] = tuple(comp.kind for comp in COMPONENTS if not comp.runtime)


class InvalidSpec(ValueError):
    """A component could not build its objects from the Etcd's spec (``kind``, the builder's ``ValueError``)."""

    def __init__(self, kind: str, error: ValueError) -> None:
        super().__init__(str(error))
        self.kind, self.error = kind, error


def component(kind: str) -> Component:
    """The component of ``kind`` (``KeyError`` for an unknown kind)."""
    return _BY_KIND[kind]


def components(kinds: Iterable[str] = SYNC_ORDER) -> list[Component]:
    return [component(kind) for kind in kinds]


def runtime_components() -> list[Component]:
    """The runtime components (see ``Component.runtime``), in sync order."""
    return [comp for comp in COMPONENTS if comp.runtime]


def _unique(resources: Iterable[ResourceRef]) -> tuple[ResourceRef, ...]:
    return tuple(dict.fromkeys(resources))


def managed_resources() -> tuple[ResourceRef, ...]:
    """The API resources of every component (each once, in sync order of first use)."""
    return _unique(comp.resource for comp in COMPONENTS)


def runtime_resources() -> tuple[ResourceRef, ...]:
    """The API resources of the runtime components (each once, in sync order of first use)."""
    return _unique(comp.resource for comp in runtime_components())


def sync_kinds(etcd: Etcd) -> tuple[str, ...]:
    """Kinds to sync, in order: all of them, or only the non-runtime ones when runtime components are off."""
    return SYNC_ORDER if etcd.runtime_component_creation_enabled else ALWAYS_KINDS


def cleanup_kinds(etcd: Etcd) -> tuple[str, ...]:
    """Kinds to delete during a spec reconcile: the runtime components when their creation is disabled."""
    return () if etcd.runtime_component_creation_enabled else RUNTIME_KINDS


def desired_objects(etcd: Etcd, opts: BuildOptions, *, backup_host_path: str | None = None) -> dict[str, list[Obj]]:
    """Every object druid wants for ``etcd``: kind -> objects, for the kinds of :func:`sync_kinds`, in sync order.

    Each component sees the objects built before it (the StatefulSet carries the ConfigMap's checksum).
    ``backup_host_path`` is the Local store provider's bucket directory. Raises :class:`InvalidSpec`.
    """
    built: dict[str, list[Obj]] = {}
    for kind in sync_kinds(etcd):
        try:
            built[kind] = component(kind).build(etcd, opts, BuildInputs(built, backup_host_path))
        except ValueError as e:
            raise InvalidSpec(kind, e) from e
    return built
