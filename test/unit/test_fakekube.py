"""The shared in-memory fake behind druid's client keeps the API server's rules the reconcilers rely on."""

from __future__ import annotations

import pytest

from druid.runtime.client import METADATA_ONLY, ApiError
from druid.runtime.objects import CONFIGMAPS, LEASES
from druid.testing.fakekube import FakeKube


def cm(name: str, ns: str = "ns", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}}


async def test_writes_bump_the_resource_version_and_a_stale_one_conflicts() -> None:
    kube = FakeKube()
    created = await kube.create(CONFIGMAPS, {**cm("a"), "data": {"x": "1"}})
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    rv = created["metadata"]["resourceVersion"]
    updated = await kube.replace(CONFIGMAPS, {**created, "data": {"x": "2"}})
    assert int(updated["metadata"]["resourceVersion"]) > int(rv)
    assert updated["metadata"]["generation"] == 2  # outside metadata/status changed
    with pytest.raises(ApiError) as stale:
        await kube.replace(CONFIGMAPS, {**created, "data": {"x": "3"}})
    assert stale.value.conflict
    with pytest.raises(ApiError) as stale_patch:
        await kube.merge_patch(CONFIGMAPS, "a", {"metadata": {"resourceVersion": rv}, "data": {"x": "4"}}, "ns")
    assert stale_patch.value.conflict
    assert (await kube.get(CONFIGMAPS, "a", "ns"))["data"] == {"x": "2"}
    with pytest.raises(ApiError) as exists:
        await kube.create(CONFIGMAPS, cm("a"))
    assert exists.value.status == 409 and exists.value.reason == "AlreadyExists"


async def test_merge_patch_follows_rfc7386_and_status_is_its_own_subresource() -> None:
    kube = FakeKube()
    await kube.create(LEASES, {**cm("l"), "spec": {"a": 1, "b": {"c": 2, "d": 3}, "list": [1, 2]}})
    patched = await kube.merge_patch(LEASES, "l", {"spec": {"a": None, "b": {"c": 5}, "list": [3]}}, "ns")
    assert patched["spec"] == {"b": {"c": 5, "d": 3}, "list": [3]}
    gen = patched["metadata"]["generation"]
    status = await kube.merge_patch(LEASES, "l", {"status": {"s": 1}, "spec": {"a": 9}}, "ns", subresource="status")
    assert status["status"] == {"s": 1} and "a" not in status["spec"], "a /status write changes only status"
    assert status["metadata"]["generation"] == gen
    main = await kube.merge_patch(LEASES, "l", {"status": {"s": 2}, "metadata": {"labels": {"k": "v"}}}, "ns")
    assert main["status"] == {"s": 1} and main["metadata"]["labels"] == {"k": "v"}
    assert main["metadata"]["generation"] == gen  # metadata only


async def test_json_patch_test_operation_is_a_precondition() -> None:
    kube = FakeKube()
    await kube.create(CONFIGMAPS, {**cm("a"), "data": {"x": "1"}})
    ops = [{"op": "test", "path": "/data/x", "value": "0"}, {"op": "replace", "path": "/data/x", "value": "2"}]
    with pytest.raises(ApiError) as failed:
        await kube.json_patch(CONFIGMAPS, "a", ops, "ns")
    assert failed.value.invalid
    ops[0]["value"] = "1"
    assert (await kube.json_patch(CONFIGMAPS, "a", ops, "ns"))["data"] == {"x": "2"}


async def test_finalizers_hold_deletion_until_the_last_one_goes() -> None:
    kube = FakeKube()
    created = await kube.create(CONFIGMAPS, {**cm("a"), "metadata": {**cm("a")["metadata"], "finalizers": ["f"]}})
    with pytest.raises(ApiError) as wrong_uid:
        await kube.delete(CONFIGMAPS, "a", "ns", uid="other")
    assert wrong_uid.value.conflict
    assert await kube.delete(CONFIGMAPS, "a", "ns", uid=created["metadata"]["uid"]) is True
    deleting = await kube.get(CONFIGMAPS, "a", "ns")
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 2
    await kube.merge_patch(CONFIGMAPS, "a", {"metadata": {"finalizers": None}}, "ns")
    assert await kube.get_or_none(CONFIGMAPS, "a", "ns") is None
    assert await kube.delete(CONFIGMAPS, "a", "ns") is False


async def test_lists_select_by_labels_and_fields_and_can_be_metadata_only() -> None:
    kube = FakeKube()
    for name, ns, app in (("a", "ns", "x"), ("b", "ns", "y"), ("c", "other", "x")):
        kube.add(CONFIGMAPS, cm(name, ns, app=app))
    names = [o["metadata"]["name"] for o in (await kube.list(CONFIGMAPS, label_selector="app=x"))["items"]]
    assert names == ["a", "c"]
    in_ns = await kube.list(CONFIGMAPS, "ns", label_selector="app!=x,app")
    assert [o["metadata"]["name"] for o in in_ns["items"]] == ["b"]
    by_field = await kube.list(CONFIGMAPS, field_selector="metadata.name=c")
    assert [o["metadata"]["namespace"] for o in by_field["items"]] == ["other"]
    meta = await kube.list(CONFIGMAPS, "ns", accept=METADATA_ONLY)
    assert meta["kind"] == "PartialObjectMetadataList" and set(meta["items"][0]) == {"apiVersion", "kind", "metadata"}
    await kube.delete_collection(CONFIGMAPS, "ns", label_selector="app=x")
    assert [o["metadata"]["name"] for o in kube.objects(CONFIGMAPS)] == ["b", "c"]


async def test_apply_creates_or_merges_and_injected_failures_and_requests_are_recorded() -> None:
    kube = FakeKube()
    intent = {**cm("a"), "data": {"x": "1"}}
    await kube.apply(CONFIGMAPS, intent, field_manager="druid")
    applied = await kube.apply(CONFIGMAPS, {**intent, "data": {"y": "2"}}, field_manager="druid")
    assert applied["data"] == {"x": "1", "y": "2"}  # approximation: fields left out of the intent stay
    kube.fail(ApiError(500, "InternalError", "boom"), method="GET", path="/configmaps/a")
    with pytest.raises(ApiError):
        await kube.get(CONFIGMAPS, "a", "ns")
    assert (await kube.get(CONFIGMAPS, "a", "ns"))["data"]["x"] == "1"  # only once
    assert [m for m, _ in kube.writes()] == ["PATCH", "PATCH"]
    with pytest.raises(NotImplementedError):
        kube.stream("/api/v1/configmaps", {})
