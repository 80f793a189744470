"""The informers druid's controllers read from, each scoped and trimmed so memory follows what druid manages.

- Etcds: all of them (the primary kind), with the ``secret-refs`` index.
- The kinds druid creates (ServiceAccount, Role, RoleBinding, Lease, PodDisruptionBudget, Service, ConfigMap,
  StatefulSet): only objects labelled ``app.kubernetes.io/managed-by=etcd-druid``, keeping the managedFields
  entries about the main resource (to tell from the cache whether an apply would change anything, and whether
  another manager owns fields druid takes over or reverts).
- Pods and PVCs: labelled managed-by as well (StatefulSet pods carry the default labels, its PVCs the
  selector labels), trimmed to metadata and the status fields the status reconcile reads.
- Secrets: all namespaces but metadata-only (PartialObjectMetadata: no data is ever transferred or cached),
  trimmed to name, UID, resourceVersion, finalizers and deletion state.

:func:`options` names each watch's informer options explicitly (the managed kinds come from the component
registry); the ``Controller`` builder (``for_``/``watches``) and :class:`CacheSource` both use them, so the
controllers sharing an informer ask for it with the same options.
"""

from __future__ import annotations

import contextlib
from typing import Any

from druid.api import constants as c
from druid.components import registry, validation
from druid.components.sync import FIELD_MANAGER
from druid.controllers.etcd.operation import ETCDS
from druid.controllers.etcd.secrets import ensure_index
from druid.runtime.controller import WatchOptions
from druid.runtime.informer import InformerFactory, SharedInformer
from druid.runtime.objects import PODS, PVCS, SECRETS, Obj, ResourceRef
from druid.runtime.store import label_index, label_index_name

MANAGED_SELECTOR = f"{c.LABEL_MANAGED_BY}={c.LABEL_MANAGED_BY_VALUE}"
_META_KEEP = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences", "deletionTimestamp")
_SECRET_META_KEEP = ("name", "namespace", "uid", "resourceVersion", "finalizers", "deletionTimestamp")


def _slim_meta(obj: Obj, keep: tuple[str, ...] = _META_KEEP) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {k: meta[k] for k in keep if k in meta}


def slim_secret(secret: Obj) -> Obj:
    """Identity, finalizers and deletion state: all druid needs of a Secret (it never caches data)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _slim_meta(secret, _SECRET_META_KEEP)}


def slim_pod(pod: Obj) -> Obj:
    """Metadata, phase, conditions and IP: enough for member status (ContainersReady), orphan detection and
    reaching a member (ordered member updates)."""
    status = pod.get("status") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _slim_meta(pod),
        "status": {k: status[k] for k in ("phase", "conditions", "podIP") if k in status},
    }


def slim_pvc(pvc: Obj) -> Obj:
    status = pvc.get("status") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _slim_meta(pvc),
        "status": {"phase": status["phase"]} if "phase" in status else {},
    }


MANAGED_KINDS = registry.managed_resources()
PART_OF_INDEXED = frozenset((*MANAGED_KINDS, PODS, PVCS))
"""Kinds whose stores index the ``app.kubernetes.io/part-of`` label (the Etcd's name), so finding one Etcd's
objects (``Store.select``) costs what it finds, not the size of the namespace."""


def options(resource: ResourceRef, namespace: str | None = None) -> WatchOptions:
    """The informer options druid uses for ``resource`` (see the module docstring)."""
    if resource == SECRETS:
        return WatchOptions(namespace, transform=slim_secret, metadata_only=True)
    if resource == PODS:
        return WatchOptions(namespace, MANAGED_SELECTOR, transform=slim_pod)
    if resource == PVCS:
        return WatchOptions(namespace, MANAGED_SELECTOR, transform=slim_pvc)
    if resource in MANAGED_KINDS:
        return WatchOptions(namespace, MANAGED_SELECTOR, keep_managed_fields=FIELD_MANAGER)
    return WatchOptions(namespace)


class CacheSource:
    """The informers druid's controllers share, created with their scope and options whoever asks first.

    ``namespace`` confines every informer to one namespace (tests run several operators side by side).
    """

    def __init__(self, factory: InformerFactory, namespace: str | None = None) -> None:
        self.factory = factory
        self.namespace = namespace

    def options(self, resource: ResourceRef) -> WatchOptions:
        return options(resource, self.namespace)

    def informer(self, resource: ResourceRef) -> SharedInformer:
        informer: SharedInformer = self.options(resource).informer(self.factory, resource)
        if resource == ETCDS:
            ensure_index(informer)
            with contextlib.suppress(ValueError):  # already there: the controllers share the informer
                informer.add_indexer(validation.CLAIM_PREFIX_INDEX, validation.claim_prefix_index)
        elif resource in PART_OF_INDEXED:
            with contextlib.suppress(ValueError):  # already there: the controllers share the informer
                informer.add_indexer(label_index_name(c.LABEL_PART_OF), label_index(c.LABEL_PART_OF))
        return informer

    def secrets(self) -> SharedInformer:
        return self.informer(SECRETS)

    def etcds(self) -> SharedInformer:
        return self.informer(ETCDS)
