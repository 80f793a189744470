"""druid.runtime.client.Kube against the real API server: verbs, content types, error classification."""

from __future__ import annotations

import pytest

from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import CONFIGMAPS, LEASES
from druid.testing.controlplane import ControlPlane


def cm(name: str, namespace: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_verbs_and_content_types(kube: Kube, namespace: str) -> None:
    created = await kube.create(CONFIGMAPS, cm("a", namespace, x="1"))
    assert created["metadata"]["uid"]
    applied = await kube.apply(CONFIGMAPS, cm("a", namespace, x="2"), field_manager="druid")
    assert applied["data"] == {"x": "2"}
    assert any(m["manager"] == "druid" and m["operation"] == "Apply" for m in applied["metadata"]["managedFields"])
    merged = await kube.merge_patch(CONFIGMAPS, "a", {"data": {"y": "3"}}, namespace)
    assert merged["data"] == {"x": "2", "y": "3"}
    patched = await kube.json_patch(
        CONFIGMAPS,
        "a",
        [{"op": "test", "path": "/data/y", "value": "3"}, {"op": "remove", "path": "/data/y"}],
        namespace,
    )
    assert patched["data"] == {"x": "2"}
    # A failed `test` precondition is refused and changes nothing.
    with pytest.raises(ApiError) as info:
        await kube.json_patch(CONFIGMAPS, "a", [{"op": "test", "path": "/data/x", "value": "nope"}], namespace)
    assert info.value.status == 422 and info.value.invalid
    listed = await kube.list(CONFIGMAPS, namespace, field_selector="metadata.name=a")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert await kube.delete(CONFIGMAPS, "a", namespace) is True
    assert await kube.delete(CONFIGMAPS, "a", namespace) is False
    assert await kube.get_or_none(CONFIGMAPS, "a", namespace) is None


async def test_errors_are_classified(kube: Kube, namespace: str) -> None:
    with pytest.raises(ApiError) as info:
        await kube.get(LEASES, "missing", namespace)
    assert info.value.not_found and info.value.reason == "NotFound"
    await kube.create(CONFIGMAPS, cm("b", namespace))
    with pytest.raises(ApiError) as info:
        await kube.create(CONFIGMAPS, cm("b", namespace))
    assert info.value.conflict and info.value.reason == "AlreadyExists"
    stale = await kube.get(CONFIGMAPS, "b", namespace)
    await kube.merge_patch(CONFIGMAPS, "b", {"data": {"k": "v"}}, namespace)
    stale["data"] = {"k": "other"}
    with pytest.raises(ApiError) as info:
        await kube.replace(CONFIGMAPS, stale)  # optimistic concurrency on resourceVersion
    assert info.value.conflict and info.value.reason == "Conflict"


async def test_transport_failure_is_status_zero(control_plane: ControlPlane) -> None:
    kube = await Kube.connect(str(control_plane.kubeconfig), timeout=2)
    kube.api.configuration.host = "https://127.0.0.1:1"  # nothing listens on port 1
    try:
        with pytest.raises(ApiError) as info:
            await kube.get(CONFIGMAPS, "x", "default")
        assert info.value.status == 0 and info.value.retryable
    finally:
        await kube.close()
