"""The informer cache: raw objects keyed by :class:`ObjectKey`, with indexes (client-go ``cache.Indexer``).

Objects are stored as the API server sent them, minus ``metadata.managedFields`` and the
``kubectl.kubernetes.io/last-applied-configuration`` annotation (and whatever an optional
``transform`` removes). A store created with ``keep_managed_fields=<manager>`` keeps the managedFields
entries about the main resource (so a controller can tell, from the cache, whether its server-side
apply as ``<manager>`` would change anything, and which fields other managers own) and strips the
subresources' entries. Cached objects are shared by
every reader and must be treated as immutable: ``copy.deepcopy`` one before changing it.

:meth:`Store.select` finds a namespace's objects carrying some labels; with a label index
(:func:`label_index`, added for a label key the selections use) it looks at only the objects with that
label value instead of the whole namespace, so a controller that looks up "the pods of this Etcd" does
work proportional to what it finds, not to the namespace.

The store is single-threaded (one event loop) and every method is synchronous, so a reader never
observes a half-applied change. :meth:`Store.replace` (a relist) builds the new contents and indexes
aside and swaps them in at once, returning the deltas against the old contents; keys that vanished
come back as deletes carrying a :class:`Tombstone`, like client-go's ``DeletedFinalStateUnknown``.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from druid.runtime.objects import Obj, ObjectKey, Tombstone, controller_owner

IndexFunc = Callable[[Obj], Iterable[str]]
Transform = Callable[[Obj], Obj]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def namespace_index(obj: Obj) -> list[str]:
    """client-go ``MetaNamespaceIndexFunc``: the namespace ("" for cluster-scoped objects)."""
    return [obj.get("metadata", {}).get("namespace") or ""]


def owner_uid_index(obj: Obj) -> list[str]:
    """The uid of the controller owner (the ownerReference with ``controller: true``), if any."""
    owner = controller_owner(obj)
    return [owner["uid"]] if owner and owner.get("uid") else []


def label_index_name(key: str) -> str:
    return f"label:{key}"


def label_index(key: str) -> IndexFunc:
    """Index by ``<namespace>/<value of label key>`` (objects without the label are not indexed)."""

    def index(obj: Obj) -> list[str]:
        meta = obj.get("metadata") or {}
        value = (meta.get("labels") or {}).get(key)
        return [] if value is None else [f"{meta.get('namespace') or ''}/{value}"]

    return index


def has_labels(obj: Obj, labels: Mapping[str, str]) -> bool:
    """``obj`` carries all of ``labels`` (a matchLabels selector)."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def _main_entries(meta: dict[str, Any], manager: str | None) -> list[Any]:
    """Every entry about the main resource (no subresource) once ``manager`` is given, else none."""
    if manager is None:
        return []
    return [e for e in meta.get("managedFields") or () if isinstance(e, dict) and not e.get("subresource")]


def strip(obj: Obj, keep_managed_fields: str | None = None) -> Obj:
    """``obj`` without managedFields and the last-applied annotation; copies only what it changes.

    With ``keep_managed_fields``, the managedFields entries about the main resource are kept (that manager's
    ``Apply`` entry and whoever else owns fields of the object; subresource entries go).
    """
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations") or {}
    if "managedFields" not in meta and LAST_APPLIED not in annotations:
        return obj
    kept = _main_entries(meta, keep_managed_fields)
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if kept:
        meta["managedFields"] = kept
    if LAST_APPLIED in annotations:
        rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        if rest:
            meta["annotations"] = rest
        else:
            del meta["annotations"]
    return {**obj, "metadata": meta}


def resource_version(obj: Obj) -> str | None:
    rv = obj.get("metadata", {}).get("resourceVersion")
    return str(rv) if rv is not None else None


class DeltaType(enum.Enum):
    ADDED = "added"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Delta:
    """One change to the store. ``obj`` is the new state (added, updated) or, for a delete, the final
    state the watch reported or a :class:`Tombstone` when the delete was only inferred by a relist.
    ``old`` is the previously cached state (updated, deleted)."""

    type: DeltaType
    key: ObjectKey
    obj: Obj | Tombstone
    old: Obj | None = None


_Index = dict[str, set[ObjectKey]]


class Store:
    def __init__(
        self,
        indexers: dict[str, IndexFunc] | None = None,
        transform: Transform | None = None,
        *,
        keep_managed_fields: str | None = None,
    ) -> None:
        self._transform = transform
        self._keep_managed_fields = keep_managed_fields
        self._items: dict[ObjectKey, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index, OWNER_UID_INDEX: owner_uid_index}
        self._indexers.update(indexers or {})
        self._indices: dict[str, _Index] = {name: {} for name in self._indexers}

    # ------------------------------------------------------------------ reads

    def get(self, key: ObjectKey) -> Obj | None:
        return self._items.get(key)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        """All cached objects, or those of one namespace (through the namespace index)."""
        if namespace is None:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def select(self, namespace: str, labels: Mapping[str, str]) -> builtins.list[Obj]:
        """Objects of ``namespace`` carrying all of ``labels``; through a label index when one covers a key."""
        for key, value in labels.items():
            index = self._indices.get(label_index_name(key))
            if index is not None:
                candidates = [self._items[k] for k in index.get(f"{namespace}/{value}", ())]
                break
        else:
            candidates = self.list(namespace)
        return [o for o in candidates if has_labels(o, labels)]

    def keys(self) -> builtins.list[ObjectKey]:
        return list(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return [self._items[k] for k in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> set[ObjectKey]:
        if name not in self._indices:
            raise KeyError(f"no indexer named {name!r}")
        return set(self._indices[name].get(value, ()))

    def index_values(self, name: str) -> builtins.list[str]:
        """The values currently present in an index (client-go ``ListIndexFuncValues``)."""
        return list(self._indices[name])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[ObjectKey]:
        return iter(list(self._items))

    # ------------------------------------------------------------------ writes

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Register an index; objects already cached are indexed at once."""
        if name in self._indexers:
            raise ValueError(f"indexer {name!r} already exists")
        index: _Index = {}
        for key, obj in self._items.items():
            _index_add(index, fn, key, obj)
        self._indexers[name] = fn
        self._indices[name] = index

    def prepare(self, obj: Obj) -> Obj:
        """What would be cached for ``obj``: stripped, then transformed."""
        obj = strip(obj, self._keep_managed_fields)
        return self._transform(obj) if self._transform is not None else obj

    def put(self, obj: Obj) -> tuple[Obj | None, Obj]:
        """Insert or replace one object; returns (previously cached, now cached)."""
        new = self.prepare(obj)
        key = ObjectKey.of(new)
        old = self._items.get(key)
        self._items[key] = new
        for name, fn in self._indexers.items():
            index = self._indices[name]
            if old is not None:
                _index_remove(index, fn, key, old)
            _index_add(index, fn, key, new)
        return old, new

    def remove(self, key: ObjectKey) -> Obj | None:
        """Drop one object; returns what was cached (None if nothing was)."""
        old = self._items.pop(key, None)
        if old is not None:
            for name, fn in self._indexers.items():
                _index_remove(self._indices[name], fn, key, old)
        return old

    def replace(self, objects: Iterable[Obj]) -> builtins.list[Delta]:
        """Swap in a complete new content (a relist) and return the deltas against the old content:
        adds for new keys, updates where the resourceVersion changed, tombstone deletes for keys gone."""
        items: dict[ObjectKey, Obj] = {}
        for raw in objects:
            obj = self.prepare(raw)
            items[ObjectKey.of(obj)] = obj
        indices: dict[str, _Index] = {name: {} for name in self._indexers}
        for name, fn in self._indexers.items():
            index = indices[name]
            for key, obj in items.items():
                _index_add(index, fn, key, obj)
        old_items = self._items
        self._items, self._indices = items, indices

        deltas: builtins.list[Delta] = []
        for key, obj in items.items():
            old = old_items.get(key)
            if old is None:
                deltas.append(Delta(DeltaType.ADDED, key, obj))
            elif resource_version(old) != resource_version(obj):
                deltas.append(Delta(DeltaType.UPDATED, key, obj, old))
        for key, old in old_items.items():
            if key not in items:
                deltas.append(Delta(DeltaType.DELETED, key, Tombstone(key, old), old))
        return deltas


def _index_add(index: _Index, fn: IndexFunc, key: ObjectKey, obj: Obj) -> None:
    for value in fn(obj):
        index.setdefault(value, set()).add(key)


def _index_remove(index: _Index, fn: IndexFunc, key: ObjectKey, obj: Obj) -> None:
    for value in fn(obj):
        keys = index.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[value]
