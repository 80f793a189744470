"""Writing components to the cluster: sync (server-side apply), existing names, trigger delete.

``sync`` applies each desired object with field manager ``etcd-druid`` (``force=True``) only when the
live object in the informer cache differs in the fields druid owns (``diff.needs_apply``), so a steady
state makes no API writes at all. What differs between kinds is declared by each component (``base.py``):
what of a desired object is applied and compared (``applied``), whether its objects are applied
concurrently, whether its existing objects are deleted when it builds none, and the optional spec fields
removed when no longer desired even if another field manager set them (an apply removes only fields druid
itself owned).

Never adopt: an object with a desired object's name that is not controlled by the Etcd (controller
ownerReference with its UID) is never written: ``writable`` raises :class:`NotControlled` naming it and its
controller (or "no controller"), which ``sync`` reports with the component's sync code. The informer caches
hold only objects labelled ``managed-by=etcd-druid``, so a name the cache does not know may still exist: druid
creates it with a *create-only apply* — the apply carries a ``resourceVersion`` precondition no stored object
can have (the largest 64-bit revision), which the API server ignores when it creates the object and answers
with 409 Conflict when an object of that name exists. Only then is the object read and judged like a cached
one; so creating a child costs one request, and an existing object is never touched by the create. The one
exception is ownership the way very old etcd-druid releases recorded it, by annotations naming this Etcd
(``api.facts.legacy_owned_by``): such an object is taken over, as etcd-druid did.

``existing`` / ``existing_names`` / ``trigger_delete`` find objects by the component's names and label
selector, and only ever consider objects *controlled* by the Etcd, so neither a spec reconcile nor the
deletion of an Etcd ever deletes an object of someone else.
Deletions carry the object's UID as a precondition, so an object replaced in between is never deleted by
mistake; NotFound is success. Errors are raised as :class:`DruidError` with the component's get/sync/delete
code.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from druid.api import names
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by, controller_of, legacy_owned_by
from druid.components import diff
from druid.components.base import Component
from druid.components.errors import (
    OPERATION_GET_EXISTING_RESOURCE_NAMES,
    OPERATION_SYNC,
    OPERATION_TRIGGER_DELETE,
    DruidError,
)
from druid.runtime import jsonc
from druid.runtime import managedfields as mf
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import rfc3339
from druid.runtime.objects import Obj, ObjectKey, ResourceRef

FIELD_MANAGER = "etcd-druid"
CREATE_ONLY_RESOURCE_VERSION = str(2**64 - 1)
"""A resourceVersion precondition no stored object has: an apply carrying it creates or fails with 409."""
TAKE_OVER_ATTEMPTS = 3  # managedFields rewrites tried (each on a fresh read) while the object keeps changing
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

    def by_index(self, name: str, value: str) -> builtins.list[Obj]: ...


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
        self._surveyed: dict[tuple[str, str, str], tuple[Any, Any]] = {}

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
        self._surveyed.pop((str(res), namespace, name), None)

    def surveyed(
        self, res: ResourceRef, namespace: str, name: str, version: tuple[Any, Any] | None = None
    ) -> tuple[Any, Any] | None:
        """The (uid, resourceVersion) at which the object's ownership needed no change; records ``version``."""
        key = (str(res), namespace, name)
        if version is not None:
            self._surveyed[key] = version
        return self._surveyed.get(key)


DriftReport = Callable[[ResourceRef, str, dict[str, list[str]]], Awaitable[None]]
"""Told (resource, object name, {field: managers}) about fields of other managers druid is about to revert."""


@dataclass
class SyncContext:
    """Per-reconcile access to the cluster: the client, the informer caches of managed kinds, the apply memo.

    ``take_over``: field managers whose Update ownership druid takes over (see :meth:`take_ownership`);
    ``on_drift``: told about foreign fields about to be reverted.
    """

    kube: Kube
    caches: Mapping[ResourceRef, ObjectCache] = field(default_factory=dict)
    memo: ApplyMemo = field(default_factory=ApplyMemo)
    field_manager: str = FIELD_MANAGER
    before_write: Callable[[], Awaitable[None]] | None = None  # awaited once, before the first write
    writes: list[str] = field(default_factory=list)  # what was written through this context
    take_over: tuple[str, ...] = (FIELD_MANAGER,)
    on_drift: DriftReport | None = None

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

    async def take_ownership(self, res: ResourceRef, desired: Obj, live: Obj, keep: Collection[str] = ()) -> Obj:
        """Move into druid's apply entry what it should own of ``live`` before applying ``desired``; the object after.

        Decided from ``live`` (the cache keeps every main-resource managedFields entry), so nothing is read or
        written unless another manager owns fields druid sends or does not send (:mod:`druid.runtime.managedfields`):
        then the object is read, the fields druid does not send are removed in a dry-run to tell server defaults
        from content, and one JSON patch guarded by the resourceVersion rewrites managedFields (read and tried again
        when the object changed in between, e.g. its status). Fields that were content are then owned by druid, so
        the apply that follows removes them. Values of druid's that another manager changed are only reported
        (with the rest, through ``on_drift``): the apply sets them back. ``keep``: top-level fields other writers own.
        """
        survey = mf.survey(live, desired, self.field_manager, takeover=self.take_over, keep=keep)
        meta = live["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        # druid's values another manager changed: reported with the rest; the apply sets them back
        stolen = {mf.readable(p): sorted(who) for p, who in survey.stolen.items()}
        if survey.empty or self.memo.surveyed(res, ns, name) == (meta.get("uid"), meta.get("resourceVersion")):
            await self._report(res, name, stolen)  # (a version looked at already has only defaults of others)
            return live
        for attempt in range(TAKE_OVER_ATTEMPTS):
            fresh = await self.kube.get(res, name, ns or None)  # all managedFields entries, subresources' too
            survey = mf.survey(fresh, desired, self.field_manager, takeover=self.take_over, keep=keep)
            rv = fresh["metadata"]["resourceVersion"]
            changed, unresolved = await self._content(res, fresh, survey) if survey.candidates else ({}, False)
            managed = mf.rewrite(
                fresh["metadata"].get("managedFields") or [],
                survey,
                changed,
                api_version=str(fresh.get("apiVersion", "")),
                now=rfc3339(dt.datetime.now(dt.UTC)),
                keep=keep,
            )
            if managed is None:
                if not unresolved:
                    self.memo.surveyed(res, ns, name, (fresh["metadata"].get("uid"), rv))
                await self._report(res, name, stolen)
                return fresh
            takeover = sorted({str(fresh["metadata"]["managedFields"][i].get("manager")) for i in survey.takeover})
            outer = [p for p in changed if not any(q != p and mf.under(p, q) for q in changed)]
            drift = {mf.readable(p): sorted(changed[p]) for p in outer if changed[p] - set(self.take_over)}
            await self.writing(f"take over fields of {res.kind} {ns}/{name}")
            try:
                result: Obj = await self.kube.json_patch(res, name, mf.migration_patch(rv, managed), ns or None)
            except ApiError as e:
                if not (e.invalid or e.conflict) or attempt == TAKE_OVER_ATTEMPTS - 1:
                    raise
                log.info("object changed while taking over, reading it again", kind=res.kind, object=f"{ns}/{name}")
                continue
            await self._report(res, name, {**stolen, **drift})
            log.info(
                "took over field ownership",
                kind=res.kind,
                object=f"{ns}/{name}",
                from_managers=takeover,
                removing={mf.readable(p): sorted(changed[p]) for p in outer},
            )
            return result
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _report(self, res: ResourceRef, name: str, fields: dict[str, list[str]]) -> None:
        if fields and self.on_drift is not None:
            await self.on_drift(res, name, fields)

    async def _content(self, res: ResourceRef, live: Obj, survey: mf.Survey) -> tuple[dict[mf.Path, set[str]], bool]:
        """The candidates whose removal changes ``live`` (a dry-run of removing them all, else one by one), and
        whether some could not be judged (their removal was refused). The dry-run is guarded by the generation
        (the spec is unchanged; status updates do not matter) where the kind has one."""
        meta = live["metadata"]
        at = (
            ("generation", meta["generation"]) if "generation" in meta else ("resourceVersion", meta["resourceVersion"])
        )
        guard = {"op": "test", "path": f"/metadata/{at[0]}", "value": at[1]}

        async def dry(paths: Collection[mf.Path]) -> Obj:
            ops = [guard, *mf.removals(live, paths)]
            return await self.kube.json_patch(res, meta["name"], ops, meta.get("namespace"), dry_run=True)

        try:
            return mf.classify(survey, live, await dry(survey.candidates))[0], False
        except ApiError as e:
            if not e.invalid:
                raise
            log.info("dry-run removal refused, trying field by field", kind=res.kind, error=str(e))
        changed: dict[mf.Path, set[str]] = {}
        unresolved = False
        for path, who in survey.candidates.items():
            one = mf.Survey(survey.manager, candidates={path: who}, nodes=survey.nodes & {path})
            try:
                changed.update(mf.classify(one, live, await dry([path]))[0])
            except ApiError as e:
                if not e.invalid:
                    raise
                unresolved = True
                log.warning("field cannot be removed, left alone", kind=res.kind, field=mf.readable(path), error=str(e))
        return changed, unresolved

    async def apply(
        self, res: ResourceRef, desired: Obj, live: Obj | None, keep: Collection[str] = (), *, create: bool = False
    ) -> Obj | None:
        """Server-side apply ``desired`` unless ``live`` already matches it; returns the result (None: no write).

        Ownership other managers hold is taken over first (:meth:`take_ownership`). ``create`` (with no ``live``):
        a create-only apply, raising :class:`ApiError` 409 when an object of that name exists."""
        if live is not None:
            live = await self.take_ownership(res, desired, live, keep)
        why = self.difference(res, desired, live)
        if why is None:
            return None
        meta = desired["metadata"]
        await self.writing(f"apply {res.kind} {meta.get('namespace')}/{meta['name']}")
        body = desired
        if create and live is None:
            body = {**desired, "metadata": {**meta, "resourceVersion": CREATE_ONLY_RESOURCE_VERSION}}
        result = await self.kube.apply(res, body, field_manager=self.field_manager, force=True)
        self.memo.remember(res, desired, result, self.field_manager)
        log.info("applied", kind=res.kind, object=f"{meta.get('namespace')}/{meta['name']}", reason=why)
        return result


# ---------------------------------------------------------------------------------------------- ownership


class NotControlled(Exception):
    """An object with the name of one of the Etcd's objects exists but is not controlled by the Etcd."""

    def __init__(self, res: ResourceRef, obj: Obj, ref: EtcdRef) -> None:
        meta = obj.get("metadata") or {}
        self.message = (
            f"{res.kind} {meta.get('namespace') or ref.namespace}/{meta.get('name')} exists and is not controlled by "
            f"etcd {ref} ({controller_of(obj)}); druid neither changes nor deletes it"
        )
        super().__init__(self.message)


async def writable(
    ctx: SyncContext, res: ResourceRef, namespace: str, name: str, ref: EtcdRef, *, lookup: bool = True
) -> Obj | None:
    """The live object druid may write to (None: there is none), else :class:`NotControlled`.

    Read from the cache; a name the cache does not know is looked up on the API server (the caches hold only
    objects labelled as druid's) unless ``lookup`` is False: the caller then creates only (create-only apply).
    """
    live = await ctx.current(res, namespace, name)
    if live is None and lookup and res in ctx.caches:
        live = await ctx.kube.get_or_none(res, name, namespace)
    if live is not None and not controlled_by(live, ref.uid) and not legacy_owned_by(live, ref.namespace, ref.name):
        raise NotControlled(res, live, ref)
    return live


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


async def _sync_one(ctx: SyncContext, component: Component, ref: EtcdRef, desired: Obj) -> None:
    res, meta = component.resource, desired["metadata"]
    config = component.applied(desired)
    namespace, name = meta.get("namespace") or "", meta["name"]
    live = await writable(ctx, res, namespace, name, ref, lookup=False)
    try:
        result = await ctx.apply(res, config, live, component.not_applied, create=live is None)
    except ApiError as e:
        if not (e.conflict and live is None):
            raise
        # An object of that name exists that the cache does not hold (not labelled as druid's, or not seen yet).
        live = await writable(ctx, res, namespace, name, ref)
        result = await ctx.apply(res, config, live, component.not_applied)
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
                await asyncio.gather(*(_sync_one(ctx, component, ref, d) for d in desired))
            else:
                for d in desired:
                    await _sync_one(ctx, component, ref, d)
        except DruidError as e:
            raise DruidError(component.error_codes.sync, OPERATION_SYNC, e.message, e.cause) from e
        except NotControlled as e:
            raise DruidError(component.error_codes.sync, OPERATION_SYNC, e.message) from e
    return ctx.writes[start:]
