"""The runtime's toolkit without an API server: finalizers, status writer, expectations, cached reader,
per-event-type predicates, error policy, event recorder."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from druid.runtime.client import ApiError
from druid.runtime.controller import Controller, Predicates, api_errors_expected, never
from druid.runtime.events import EventRecorder
from druid.runtime.expectations import Expectations
from druid.runtime.finalizers import ensure_finalizer, finalizers_patch, has_finalizer, remove_finalizer
from druid.runtime.objects import CONFIGMAPS, Obj, ObjectKey, Tombstone
from druid.runtime.patch import apply_merge_patch, merge_patch_diff
from druid.runtime.reader import CachedReader
from druid.runtime.reconcile import Action
from druid.runtime.statuswriter import merge_conditions, update_status

F = "example.com/f"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Kube:
    """One object kind in memory: resourceVersion preconditions, merge patches, a scripted rival writer."""

    def __init__(self, *objs: Obj) -> None:
        self.objs = {o["metadata"]["name"]: copy.deepcopy(o) for o in objs}
        self.rv = 10
        self.patches: list[Obj] = []
        self.gets = 0
        self.before_patch: list[Any] = []  # callables run before the next patches (a concurrent writer)

    def bump(self, name: str) -> Obj:
        self.rv += 1
        self.objs[name]["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.objs[name])

    async def get(self, res: Any, name: str, namespace: str | None = None) -> Obj:
        self.gets += 1
        return copy.deepcopy(self.objs[name])

    async def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> Obj | None:
        return await self.get(res, name) if name in self.objs else None

    async def merge_patch(
        self, res: Any, name: str, body: Obj, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        if self.before_patch:
            self.before_patch.pop(0)(self)
        if name not in self.objs:
            raise ApiError(404, "NotFound", name)
        self.patches.append(body)
        cur = self.objs[name]
        rv = body.get("metadata", {}).get("resourceVersion")
        if rv is not None and rv != cur["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "modified")
        body = {k: v for k, v in body.items() if k != "metadata" or subresource is None}
        meta_patch = {k: v for k, v in (body.get("metadata") or {}).items() if k != "resourceVersion"}
        if meta_patch:
            cur["metadata"] = apply_merge_patch(cur["metadata"], meta_patch)
        if "status" in body:
            cur["status"] = apply_merge_patch(cur.get("status") or {}, body["status"])
        return self.bump(name)


def obj(name: str = "o", **extra: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1", **extra}}


# ---------------------------------------------------------------------------------------------- finalizers


async def test_finalizer_added_once_with_resource_version_and_removed() -> None:
    kube = Kube(obj(finalizers=["other"]))
    added = await ensure_finalizer(kube, CONFIGMAPS, obj(finalizers=["other"]), F)  # type: ignore[arg-type]
    assert added["metadata"]["finalizers"] == ["other", F]
    assert kube.patches[-1]["metadata"]["resourceVersion"] == "1", "the patch is locked to the version read"
    assert await ensure_finalizer(kube, CONFIGMAPS, added, F) is added  # type: ignore[arg-type]
    assert len(kube.patches) == 1, "nothing written when the finalizer is there already"
    removed = await remove_finalizer(kube, CONFIGMAPS, added, F)  # type: ignore[arg-type]
    assert removed is not None and removed["metadata"]["finalizers"] == ["other"]
    assert not has_finalizer(removed, F)


async def test_finalizer_patch_from_a_stale_copy_conflicts_and_gone_object_counts_as_removed() -> None:
    kube = Kube(obj(finalizers=[F]))
    kube.bump("o")  # somebody else wrote meanwhile
    with pytest.raises(ApiError) as e:
        await ensure_finalizer(kube, CONFIGMAPS, obj(), F)  # type: ignore[arg-type]
    assert e.value.conflict
    assert await remove_finalizer(Kube(), CONFIGMAPS, obj(finalizers=[F]), F) is None  # type: ignore[arg-type]
    assert finalizers_patch(obj(finalizers=[F]), F, present=False) == {
        "metadata": {"finalizers": None, "resourceVersion": "1"}
    }


# ---------------------------------------------------------------------------------------------- status writer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=2), json_values.filter(lambda v: v is not None), max_size=4)


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(json_objects, json_objects)
def test_merge_patch_diff_applied_gives_the_new_object(old: dict[str, Any], new: dict[str, Any]) -> None:
    old, new = _no_nulls(old), _no_nulls(new)  # merge patch cannot express a null value inside an object
    assert apply_merge_patch(old, merge_patch_diff(old, new)) == new


def test_merge_conditions_replaces_only_owned_types() -> None:
    live = [{"type": "B", "status": "x"}, {"type": "Theirs", "status": "keep"}, {"type": "A", "status": "old"}]
    mine = [{"type": "A", "status": "new"}, {"type": "C", "status": "added"}, {"type": "Theirs", "status": "no"}]
    merged = merge_conditions(live, {"A", "B", "C"}, mine)
    assert merged == [
        {"type": "Theirs", "status": "keep"},
        {"type": "A", "status": "new"},
        {"type": "C", "status": "added"},
    ]
    assert [c["type"] for c in merge_conditions(live, {"A", "B", "C"}, mine, sort=True)] == ["A", "C", "Theirs"]


async def test_update_status_retries_a_conflict_on_the_live_object_and_keeps_the_rivals_condition() -> None:
    start = {**obj(), "status": {"conditions": [{"type": "Mine", "status": "False"}]}}
    kube = Kube(start)

    def rival(k: Kube) -> None:  # another controller adds its condition between our read and our write
        k.objs["o"]["status"]["conditions"].append({"type": "Theirs", "status": "True"})
        k.bump("o")

    kube.before_patch.append(rival)

    def mine(live: Obj) -> dict[str, Any]:
        status = live.get("status") or {}
        conds = merge_conditions(status.get("conditions"), {"Mine"}, [{"type": "Mine", "status": "True"}])
        return {**status, "conditions": conds}

    written = await update_status(kube, CONFIGMAPS, start, mine)  # type: ignore[arg-type]
    assert [(c["type"], c["status"]) for c in written["status"]["conditions"]] == [("Mine", "True"), ("Theirs", "True")]
    assert kube.gets == 1 and len(kube.patches) == 2
    assert await update_status(kube, CONFIGMAPS, written, mine) is written, "no write when nothing changes"  # type: ignore[arg-type]
    kube.before_patch.append(rival)
    with pytest.raises(ApiError):
        await update_status(kube, CONFIGMAPS, written, lambda o: {"x": 1}, retries=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- expectations


def test_expectations_superseded_versions_freshest_and_expiry() -> None:
    clock = Clock()
    e: Expectations[str] = Expectations(ttl=30, clock=clock)
    v1, v2, v3 = ({"metadata": {"resourceVersion": rv}} for rv in ("1", "2", "3"))
    assert not e.stale("k", v1) and e.freshest("k", v1) is v1
    e.wrote("k", v1, v2)
    assert e.stale("k", v1) and e.freshest("k", v1) is v2
    assert e.freshest("k", v3) is v3 and len(e) == 0, "a cache that moved on clears the expectation"
    e.wrote("k", v1, v2)
    clock.t = 31
    assert not e.stale("k", v1), "an expectation the cache never meets expires"
    e.expect("k", lambda o: o is None)
    assert e.stale("k", v1) and not e.stale("k", None)


# ---------------------------------------------------------------------------------------------- reader


async def test_cached_reader_reads_the_api_only_on_a_miss() -> None:
    kube = Kube(obj("cached"), obj("uncached"))
    store = {ObjectKey("ns", "cached"): obj("cached")}
    reader = CachedReader(kube, CONFIGMAPS, store)  # type: ignore[arg-type]
    assert (await reader.get(ObjectKey("ns", "cached"))) == obj("cached") and kube.gets == 0
    assert (await reader.get(ObjectKey("ns", "uncached"))) is not None and kube.gets == 1
    assert await reader.get(ObjectKey("ns", "missing")) is None and reader.misses == 2


# ---------------------------------------------------------------------------------------------- controller


class Informer:
    def __init__(self) -> None:
        self.handlers: list[Any] = []
        self.store: dict[ObjectKey, Obj] = {}

    def add_handler(self, handler: Any) -> None:
        self.handlers.append(handler)


class Source:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.informers: dict[Any, Informer] = {}

    def get(self, resource: Any, *args: Any, **kwargs: Any) -> Informer:
        self.calls.append((resource, *args, *sorted(kwargs.items())))
        return self.informers.setdefault(resource, Informer())


class Boom(Exception):
    pass


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        raise self.error


def test_predicates_per_event_type_and_watch_options_reach_the_informer() -> None:
    source = Source()
    c = Controller("c", Failing(Boom()), source, registry=CollectorRegistry())  # type: ignore[arg-type]
    only_named = Predicates(create=lambda o: o["metadata"]["name"] == "yes", delete=never, generic=never)
    c.for_(CONFIGMAPS, predicate=only_named, namespace="ns", label_selector="a=b", metadata_only=True)
    assert source.calls == [
        (
            CONFIGMAPS,
            "ns",
            "a=b",
            None,
            None,
            ("accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
            ("keep_managed_fields", None),
        )
    ]
    (handler,) = source.informers[CONFIGMAPS].handlers
    handler.on_add(obj("no"))
    handler.on_delete(Tombstone(ObjectKey("ns", "yes"), obj("yes")))
    handler.on_generic(obj("yes"))
    assert len(c.queue) == 0
    handler.on_add(obj("yes"))
    handler.on_update(obj("no"), obj("no"))  # no update predicate: every update passes
    assert len(c.queue) == 2


@pytest.mark.parametrize(("error", "panics"), [(ApiError(409, "Conflict", "x"), 0), (Boom("bug"), 1)])
async def test_error_policy_decides_what_counts_as_a_panic(error: Exception, panics: int) -> None:
    for policy, expected in ((api_errors_expected, panics), (lambda e: True, 0)):
        registry = CollectorRegistry()
        c = Controller("c", Failing(error), Source(), registry=registry, error_policy=policy)  # type: ignore[arg-type]
        c.for_(CONFIGMAPS)
        await c.process(ObjectKey("ns", "o"))
        assert registry.get_sample_value("controller_runtime_reconcile_panics_total", {"controller": "c"}) == expected
        assert registry.get_sample_value("controller_runtime_reconcile_errors_total", {"controller": "c"}) == 1
        c.queue.shutdown()


# ---------------------------------------------------------------------------------------------- events


class EventKube:
    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.patched: list[Obj] = []

    async def create(self, res: Any, event: Obj) -> Obj:
        self.created.append(event)
        return event

    async def merge_patch(self, res: Any, name: str, body: Obj, namespace: str | None = None) -> Obj:
        self.patched.append(body)
        return body


async def test_event_recorder_aggregates_repeats_within_ten_minutes_and_limits_spam() -> None:
    kube, clock = EventKube(), Clock()
    rec = EventRecorder(kube, "me", clock=clock)  # type: ignore[arg-type]
    target = {"apiVersion": "v1", "kind": "ConfigMap", **obj(uid="u")}
    await rec.warning(target, "Why", "msg")
    clock.t = 60
    await rec.warning(target, "Why", "msg")
    assert len(kube.created) == 1 and kube.patched[-1]["count"] == 2
    assert kube.created[0]["source"] == {"component": "me"} and kube.created[0]["type"] == "Warning"
    clock.t = 60 + 601
    await rec.warning(target, "Why", "msg")
    assert len(kube.created) == 2, "outside the aggregation window a new Event is created"
    other = {"apiVersion": "v1", "kind": "ConfigMap", **obj("p", uid="u2")}
    before = len(kube.created) + len(kube.patched)
    for _ in range(40):
        await rec.warning(other, "Why", "other")
    assert len(kube.created) + len(kube.patched) - before == 25, "burst 25 per object"
    clock.t += 300
    await rec.warning(other, "Why", "other")
    assert len(kube.created) + len(kube.patched) - before == 26, "one more token per 5 minutes"
