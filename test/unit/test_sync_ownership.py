"""SyncContext.take_ownership: the I/O around runtime.managedfields (FakeKube: no defaulting, so every field
druid does not send counts as content)."""

from __future__ import annotations

from typing import Any

from druid.components.sync import FIELD_MANAGER, SyncContext
from druid.runtime import managedfields as mf
from druid.runtime.objects import CONFIGMAPS, Obj
from druid.testing.fakekube import FakeKube

GO_FIELDS = {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:data": {".": {}, "f:k": {}, "f:stale": {}}}
DESIRED = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "1"}}}
DESIRED["data"] = {"k": "v"}


def go_made(kube: FakeKube) -> Obj:
    entry = {"manager": "etcd-druid", "operation": "Update", "apiVersion": "v1", "fieldsV1": GO_FIELDS}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "1"}, "managedFields": [entry]},
        "data": {"k": "v", "stale": "x"},
    }
    return kube.add(CONFIGMAPS, body)


def owners(obj: Obj) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]]


async def test_take_over_rewrites_managed_fields_once_guarded_and_retries_on_a_changed_object() -> None:
    kube = FakeKube()
    live = go_made(kube)
    real_json_patch = kube.json_patch
    dry_runs = 0

    async def someone_writes_after_the_first_dry_run(*args: Any, **kwargs: Any) -> Obj:
        nonlocal dry_runs
        result = await real_json_patch(*args, **kwargs)
        if kwargs.get("dry_run"):
            dry_runs += 1
            if dry_runs == 1:  # e.g. a status update: the resourceVersion moves on, the guarded rewrite fails
                kube.add(CONFIGMAPS, kube.object(CONFIGMAPS, "c", "ns") or {})
        return result

    kube.json_patch = someone_writes_after_the_first_dry_run  # type: ignore[method-assign]
    kube.requests.clear()
    result = await SyncContext(kube).take_ownership(CONFIGMAPS, DESIRED, live)
    methods = [m for m, _ in kube.requests]
    # read, dry-run, refused rewrite; read again, dry-run, rewrite
    assert methods == ["GET", "PATCH", "PATCH", "GET", "PATCH", "PATCH"], methods
    assert owners(result) == [(FIELD_MANAGER, "Apply")]
    owned = mf.members(result["metadata"]["managedFields"][0]["fieldsV1"])
    assert ("f:data", "f:stale") in owned  # content (the fake puts nothing back): druid's apply removes it
    assert ("f:data", "f:k") in owned and ("f:metadata", "f:labels", "f:a") in owned
    last = kube.bodies[-1]
    assert [op["op"] for op in last] == ["test", "replace"]
    assert last[0]["path"] == "/metadata/resourceVersion"
    assert result["data"] == {"k": "v", "stale": "x"}, "only ownership changed; the apply removes the content"


async def test_nothing_to_take_over_costs_no_request() -> None:
    kube = FakeKube()
    own = {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:k": {}}}}
    shared = {"manager": "other", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:k": {}}}}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}}
    body["metadata"]["managedFields"] = [own, shared]
    live = kube.add(CONFIGMAPS, body)
    kube.requests.clear()
    assert await SyncContext(kube).take_ownership(CONFIGMAPS, DESIRED, live) is live
    assert kube.requests == []


async def test_a_default_only_survey_is_remembered_for_that_version() -> None:
    kube = FakeKube()
    own = {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:k": {}}}}
    other = {"manager": "other", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:d": {}}}}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    body["metadata"]["managedFields"] = [own, other]
    body["data"] = {"k": "v", "d": "default"}
    live = kube.add(CONFIGMAPS, body)
    ctx = SyncContext(kube)

    async def dry_run_puts_it_back(*args: Any, **kwargs: Any) -> Obj:  # as the server does with a default
        return live

    kube.json_patch = dry_run_puts_it_back  # type: ignore[method-assign]
    kube.requests.clear()
    assert (await ctx.take_ownership(CONFIGMAPS, DESIRED, live))["metadata"]["managedFields"] == [own, other]
    assert [m for m, _ in kube.requests] == ["GET"]
    await ctx.take_ownership(CONFIGMAPS, DESIRED, live)
    assert [m for m, _ in kube.requests] == ["GET"], "the same version is not looked at again"
