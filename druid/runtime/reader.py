"""A reader that answers from an informer cache and asks the API server only on a miss.

An informer caches a scope (a namespace, a label selector); an object outside it, or one created so recently
that its add event has not arrived, is a miss, and a miss is read from the API server (``None`` when it
does not exist there either). Hits cost nothing; a cached object may lag behind the API server (see
``expectations``).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from druid.runtime.client import Kube
from druid.runtime.objects import Obj, ObjectKey, ResourceRef

V = TypeVar("V")


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


class VersionMemo(Generic[V]):
    """Values derived from objects a cache holds by metadata only (a metadata-only watch of Secrets), kept per
    ``resourceVersion``.

    Contract: ``lookup(key, rv)`` answers the value remembered for ``key`` only while the cache still shows the
    ``resourceVersion`` it was derived from; any other version (an update, a recreation, a cache that has not
    seen the object) is a miss, and the caller reads the object and ``remember``\\ s what it derived. Only the
    derived value is kept, never the object (a Secret's data does not stay in memory). An object's content
    cannot change without its ``resourceVersion`` changing, so a hit is as fresh as the cache.
    """

    def __init__(self) -> None:
        self._values: dict[ObjectKey, tuple[str, V]] = {}

    def lookup(self, key: ObjectKey, resource_version: str | None) -> tuple[bool, V | None]:
        """``(True, value)`` when ``value`` was derived from this very version, else ``(False, None)``."""
        hit = self._values.get(key)
        if resource_version is None:
            self._values.pop(key, None)  # gone from the cache: nothing to keep
            return False, None
        if hit is None or hit[0] != resource_version:
            return False, None
        return True, hit[1]

    def remember(self, key: ObjectKey, resource_version: str | None, value: V) -> None:
        if resource_version:
            self._values[key] = (resource_version, value)

    def __len__(self) -> int:
        return len(self._values)
