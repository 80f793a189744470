"""A reader that answers from an informer cache and asks the API server only on a miss.

An informer caches a scope (a namespace, a label selector); an object outside it, or one created so recently
that its add event has not arrived, is a miss, and a miss is read from the API server (``None`` when it
does not exist there either). Hits cost nothing; a cached object may lag behind the API server (see
``expectations``).
"""

from __future__ import annotations

from typing import Protocol

from druid.runtime.client import Kube
from druid.runtime.objects import Obj, ObjectKey, ResourceRef


class _Store(Protocol):
    def get(self, key: ObjectKey) -> Obj | None: ...


class CachedReader:
    def __init__(self, kube: Kube, resource: ResourceRef, store: _Store) -> None:
        self.kube = kube
        self.resource = resource
        self.store = store
        self.misses = 0

    def cached(self, key: ObjectKey) -> Obj | None:
        return self.store.get(key)

    async def get(self, key: ObjectKey) -> Obj | None:
        """The cached object, else the API server's (None when it does not exist)."""
        obj = self.store.get(key)
        if obj is not None:
            return obj
        self.misses += 1
        return await self.kube.get_or_none(self.resource, key.name, key.namespace)
