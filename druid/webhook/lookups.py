"""The webhook's reads: the parent Etcd (from the manager's informer cache when one covers it) and
StatefulSet metadata (``PartialObjectMetadata`` straight from the API server)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from druid.api.resources import ETCDS
from druid.runtime.client import METADATA_ONLY, Kube
from druid.runtime.informer import SharedInformer
from druid.runtime.objects import STATEFULSETS, Obj, ObjectKey


class ClusterLookups:
    """:class:`druid.webhook.protection.Lookups` against a cluster.

    ``informers`` (e.g. ``manager.informers``) is searched on every call for a synced, unfiltered Etcd
    informer whose scope includes the namespace — like controller-runtime's cached client, which the
    upstream handler reads Etcds through. Without one (not created yet, not synced, other namespace) the
    Etcd is read from the API server.
    """

    def __init__(self, kube: Kube, informers: Iterable[SharedInformer] | None = None) -> None:
        self.kube = kube
        self.informers = informers

    def etcd_informer(self, namespace: str) -> SharedInformer | None:
        for informer in self.informers or ():
            if (
                informer.resource == ETCDS
                and informer.namespace in (None, namespace)
                and informer.label_selector is None
                and informer.field_selector is None
                and informer.accept is None
                and informer.has_synced()
            ):
                return informer
        return None

    async def etcd(self, namespace: str, name: str) -> Obj | None:
        informer = self.etcd_informer(namespace)
        if informer is not None:
            return informer.store.get(ObjectKey(namespace, name))
        return await self.kube.get_or_none(ETCDS, name, namespace)

    async def statefulset(self, namespace: str, name: str) -> Obj:
        result: Obj = await self.kube.request("GET", STATEFULSETS.path(namespace, name), accept=METADATA_ONLY)
        return result

    async def statefulsets(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        found = await self.kube.list(STATEFULSETS, namespace, label_selector=selector, accept=METADATA_ONLY)
        return list(found.get("items") or [])
