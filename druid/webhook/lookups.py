"""The webhook's reads, all from druid's informer caches (never a live GET or LIST per review): the Etcds
(all of them) and the StatefulSets druid manages (the Etcd controller's filtered cache), both shared with
the controllers through :class:`~druid.controllers.etcd.caches.CacheSource`."""

from __future__ import annotations

from druid.controllers.etcd.caches import CacheSource
from druid.runtime.informer import InformerFactory, SharedInformer
from druid.runtime.objects import STATEFULSETS, Obj, ObjectKey


class CacheLookups:
    """:class:`druid.webhook.protection.Lookups` over two informers (synced once both are)."""

    def __init__(self, etcds: SharedInformer, statefulsets: SharedInformer) -> None:
        self.etcds = etcds
        self.statefulsets = statefulsets

    @classmethod
    def of(cls, informers: InformerFactory, namespace: str | None = None) -> CacheLookups:
        """The informers druid's controllers use (created if they do not exist yet; ``namespace`` confines them)."""
        source = CacheSource(informers, namespace)
        return cls(source.etcds(), source.informer(STATEFULSETS))

    def synced(self) -> bool:
        return self.etcds.has_synced() and self.statefulsets.has_synced()

    def etcd(self, namespace: str, name: str) -> Obj | None:
        return self.etcds.store.get(ObjectKey(namespace, name))

    def statefulset(self, namespace: str, name: str) -> Obj | None:
        return self.statefulsets.store.get(ObjectKey(namespace, name))
