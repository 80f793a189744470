"""Writing components to the cluster: sync (server-side apply), existing names, trigger delete.

``sync`` applies each desired object with field manager ``etcd-druid`` (``force=True``) only when the
live object in the informer cache differs in the fields druid owns (``diff.needs_apply``), so a steady
state makes no API writes at all. What differs between kinds is declared by each component (``base.py``):
what of a desired object is applied and compared (``applied``), whether its objects are applied
concurrently, whether its existing objects are deleted when it builds none, and the optional spec fields
removed when no longer desired even if another field manager set them (an apply removes only fields druid
itself owned).

``existing`` / ``existing_names`` / ``trigger_delete`` find objects by the component's names and label
selector, and only ever consider objects *controlled* by the Etcd (controller ownerReference with its UID).
Deletions carry the object's UID as a precondition, so an object replaced in between is never deleted by
mistake; NotFound is success. Errors are raised as :class:`DruidError` with the component's get/sync/delete
code.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from druid.api import names
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by
from druid.components import diff
from druid.components.base import Component
from druid.components.errors import (
    OPERATION_GET_EXISTING_RESOURCE_NAMES,
    OPERATION_SYNC,
    OPERATION_TRIGGER_DELETE,
    DruidError,
)
from druid.runtime import jsonc
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj, ObjectKey, ResourceRef

FIELD_MANAGER = "etcd-druid"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EtcdRef:
    """What finding and deleting an Etcd's objects needs (works even when its spec does not parse)."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, etcd: Etcd | Obj) -> EtcdRef:
        if isinstance(etcd, Etcd):
            return cls(etcd.name, etcd.namespace, etcd.metadata.uid or "")
        meta = etcd.get("metadata") or {}
        return cls(meta.get("name", ""), meta.get("namespace", ""), meta.get("uid", ""))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ObjectCache(Protocol):
    def get(self, key: ObjectKey) -> Obj | None: ...

    def list(self, namespace: str | None = None) -> list[Obj]: ...

    def select(self, namespace: str, labels: Mapping[str, str]) -> builtins.list[Obj]: ...


def _digest(obj: Obj) -> str:
    return hashlib.sha256(jsonc.dumps_sorted(obj)).hexdigest()


class ApplyMemo:
    """What each apply left unequal: values the API server normalises (``1000m`` is stored as ``1``).

    ``diff.needs_apply`` would keep reporting such a value as a change no apply can remove; after druid applied a
    desired object, these paths (with the live values the server stored) are ignored for that same desired
    object on the same object (UID), so a steady state stays free of writes.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], tuple[str, str, dict[str, Any]]] = {}

    @staticmethod
    def _key(res: ResourceRef, obj: Obj) -> tuple[str, str, str]:
        meta = obj.get("metadata") or {}
        return (str(res), meta.get("namespace") or "", meta.get("name", ""))

    def remember(self, res: ResourceRef, desired: Obj, result: Obj, manager: str) -> None:
        uid = (result.get("metadata") or {}).get("uid", "")
        self._seen[self._key(res, desired)] = (uid, _digest(desired), diff.artifacts(desired, result, manager))

    def ignore(self, res: ResourceRef, desired: Obj, live: Obj) -> dict[str, Any]:
        seen = self._seen.get(self._key(res, desired))
        if seen is None or seen[0] != (live.get("metadata") or {}).get("uid", "") or seen[1] != _digest(desired):
            return {}
        return seen[2]

    def forget(self, res: ResourceRef, namespace: str, name: str) -> None:
        self._seen.pop((str(res), namespace, name), None)


@dataclass
class SyncContext:
    """Per-reconcile access to the cluster: the client, the informer caches of managed kinds, the apply memo."""

    kube: Kube
    caches: Mapping[ResourceRef, ObjectCache] = field(default_factory=dict)
    memo: ApplyMemo = field(default_factory=ApplyMemo)
    field_manager: str = FIELD_MANAGER
    before_write: Callable[[], Awaitable[None]] | None = None  # awaited once, before the first write
    writes: list[str] = field(default_factory=list)  # what was written through this context

    _started: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    async def writing(self, what: str) -> None:
        """Note a write about to happen; every write waits for ``before_write``, which runs once, first."""
        self.writes.append(what)
        if self.before_write is not None:
            if self._started is None:
                self._started = asyncio.ensure_future(self.before_write())
            await asyncio.shield(self._started)

    def cached(self, res: ResourceRef, namespace: str, name: str) -> Obj | None:
        return self.caches[res].get(ObjectKey(namespace, name))

    async def current(self, res: ResourceRef, namespace: str, name: str) -> Obj | None:
        """From the cache when there is one for ``res``, else read from the API server."""
        if res in self.caches:
            return self.cached(res, namespace, name)
        return await self.kube.get_or_none(res, name, namespace)

    def difference(self, res: ResourceRef, desired: Obj, live: Obj | None) -> str | None:
        """Why an apply of ``desired`` would change ``live`` (a path), None when it would not."""
        if live is None:
            return "<missing>"
        return diff.difference(desired, live, self.field_manager, self.memo.ignore(res, desired, live))

    async def apply(self, res: ResourceRef, desired: Obj, live: Obj | None) -> Obj | None:
        """Server-side apply ``desired`` unless ``live`` already matches it; returns the result (None: no write)."""
        why = self.difference(res, desired, live)
        if why is None:
            return None
        meta = desired["metadata"]
        await self.writing(f"apply {res.kind} {meta.get('namespace')}/{meta['name']}")
        result = await self.kube.apply(res, desired, field_manager=self.field_manager, force=True)
        self.memo.remember(res, desired, result, self.field_manager)
        log.info("applied", kind=res.kind, object=f"{meta.get('namespace')}/{meta['name']}", reason=why)
        return result


# ---------------------------------------------------------------------------------------------- locating


async def existing(ctx: SyncContext, component: Component, ref: EtcdRef, *, cached: bool = False) -> list[Obj]:
    """Objects of ``component`` controlled by the Etcd, from the cache or (``cached=False``) the API server."""
    res = component.resource
    use_cache = cached and res in ctx.caches
    found: dict[str, Obj] = {}
    try:
        labels = component.selector(ref.name)
        if labels is not None:
            if use_cache:
                items = ctx.caches[res].select(ref.namespace, labels)
            else:
                page = await ctx.kube.list(res, ref.namespace, label_selector=names.selector_string(labels))
                items = page.get("items") or []
            found.update((o["metadata"]["name"], o) for o in items)
        for name in component.names(ref.name):
            if name in found:
                continue
            if use_cache:
                obj = ctx.cached(res, ref.namespace, name)
            else:
                obj = await ctx.kube.get_or_none(res, name, ref.namespace)
            if obj is not None:
                found[name] = obj
    except ApiError as e:
        raise DruidError(
            component.error_codes.get,
            OPERATION_GET_EXISTING_RESOURCE_NAMES,
            f"Error getting {component.kind} for etcd: {ref}",
            e,
        ) from e
    return [o for o in found.values() if controlled_by(o, ref.uid)]


async def existing_names(ctx: SyncContext, component: Component, ref: EtcdRef, *, cached: bool = False) -> list[str]:
    return sorted(o["metadata"]["name"] for o in await existing(ctx, component, ref, cached=cached))


async def _delete_all(ctx: SyncContext, component: Component, objs: list[Obj]) -> None:
    res = component.resource
    for obj in objs:
        meta = obj["metadata"]
        await ctx.writing(f"delete {res.kind} {meta.get('namespace')}/{meta['name']}")
        try:
            await ctx.kube.delete(res, meta["name"], meta.get("namespace"), uid=meta.get("uid"))
        except ApiError as e:
            if not e.conflict:  # 409: the UID precondition failed, i.e. it is already gone (and replaced)
                raise
        ctx.memo.forget(res, meta.get("namespace") or "", meta["name"])
        log.info("deleted", kind=component.kind, object=f"{meta.get('namespace')}/{meta['name']}")


@contextlib.contextmanager
def _api_errors_as(code: str, operation: str, message: str) -> Iterator[None]:
    """An :class:`ApiError` raised inside becomes a :class:`DruidError` with ``code``, ``operation`` and ``message``."""
    try:
        yield
    except ApiError as e:
        raise DruidError(code, operation, message, e) from e


async def trigger_delete(ctx: SyncContext, component: Component, ref: EtcdRef, *, cached: bool = False) -> None:
    """Delete the component's objects controlled by the Etcd (none existing is success)."""
    objs = await existing(ctx, component, ref, cached=cached)
    code, message = component.error_codes.delete, f"Failed to delete {component.kind} for etcd: {ref}"
    with _api_errors_as(code, OPERATION_TRIGGER_DELETE, message):
        await _delete_all(ctx, component, objs)


# ---------------------------------------------------------------------------------------------- sync


def stale_fields(component: Component, desired: Obj, live: Obj | None) -> list[str]:
    if live is None:
        return []
    want, have = desired.get("spec") or {}, live.get("spec") or {}
    return [f for f in component.stale_spec_fields if f not in want and f in have]


async def _sync_one(ctx: SyncContext, component: Component, desired: Obj) -> None:
    res, meta = component.resource, desired["metadata"]
    config = component.applied(desired)
    live = await ctx.current(res, meta.get("namespace") or "", meta["name"])
    result = await ctx.apply(res, config, live)
    stale = stale_fields(component, desired, result or live)
    if stale:
        await ctx.writing(f"remove {', '.join(stale)} from {res.kind} {meta.get('namespace')}/{meta['name']}")
        ops = [{"op": "remove", "path": f"/spec/{f}"} for f in stale]
        try:
            await ctx.kube.json_patch(res, meta["name"], ops, meta.get("namespace"))
        except ApiError as e:
            if not (e.invalid or e.not_found):  # 422: already removed in between
                raise


async def sync(ctx: SyncContext, component: Component, etcd: Etcd | EtcdRef, desired: list[Obj]) -> list[str]:
    """Make the cluster hold ``desired`` for ``component``; returns what was written.

    Raises :class:`DruidError` with the component's sync code.
    """
    ref = etcd if isinstance(etcd, EtcdRef) else EtcdRef.of(etcd)
    start = len(ctx.writes)
    message = f"Error during create or update of {component.kind} for etcd: {ref}"
    with _api_errors_as(component.error_codes.sync, OPERATION_SYNC, message):
        try:
            if component.delete_when_not_desired and not desired:
                await _delete_all(ctx, component, await existing(ctx, component, ref, cached=True))
            elif component.concurrent:
                await asyncio.gather(*(_sync_one(ctx, component, d) for d in desired))
            else:
                for d in desired:
                    await _sync_one(ctx, component, d)
        except DruidError as e:
            raise DruidError(component.error_codes.sync, OPERATION_SYNC, e.message, e.cause) from e
    return ctx.writes[start:]
