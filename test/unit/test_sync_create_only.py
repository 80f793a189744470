"""Creating a child: one create-only apply, no read; an object of that name the caches do not hold is found by
the API server's 409 and then judged (never written when the Etcd does not control it)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping

import pytest

from druid.components import registry
from druid.components.errors import DruidError
from druid.components.sync import CREATE_ONLY_RESOURCE_VERSION, EtcdRef, SyncContext, sync
from druid.runtime.objects import CONFIGMAPS, Obj, ObjectKey
from druid.testing.fakekube import FakeKube

REF = EtcdRef("main", "ns", "uid-main")


class EmptyCache:
    """A label-scoped informer cache that holds nothing (the name is not labelled as druid's)."""

    def get(self, key: ObjectKey) -> Obj | None:
        return None

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        return []

    def select(self, namespace: str, labels: Mapping[str, str]) -> builtins.list[Obj]:
        return []


def desired() -> Obj:
    owner = {"apiVersion": "druid.gardener.cloud/v1alpha1", "kind": "Etcd", "name": "main", "uid": REF.uid,
             "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    meta = {"name": "main-config", "namespace": "ns", "ownerReferences": [owner]}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"etcd.conf.yaml": "x"}}


async def test_a_new_child_costs_one_create_only_apply_and_no_read() -> None:
    kube = FakeKube()
    ctx = SyncContext(kube, caches={CONFIGMAPS: EmptyCache()})
    await sync(ctx, registry.component(registry.CONFIG_MAP), REF, [desired()])
    assert [m for m, _ in kube.requests] == ["PATCH"]
    assert kube.bodies[-1]["metadata"]["resourceVersion"] == CREATE_ONLY_RESOURCE_VERSION
    created = kube.object(CONFIGMAPS, "main-config", "ns")
    assert created is not None and created["data"] == {"etcd.conf.yaml": "x"}


async def test_a_foreign_object_of_that_name_is_found_by_the_conflict_and_left_alone() -> None:
    kube = FakeKube()
    meta = {"name": "main-config", "namespace": "ns"}
    foreign = kube.add(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"app": "x"}})
    ctx = SyncContext(kube, caches={CONFIGMAPS: EmptyCache()})
    with pytest.raises(DruidError, match="not controlled by etcd ns/main"):
        await sync(ctx, registry.component(registry.CONFIG_MAP), REF, [desired()])
    assert [m for m, _ in kube.requests] == ["PATCH", "GET"], "the create-only apply is refused, then one read"
    assert kube.object(CONFIGMAPS, "main-config", "ns") == foreign, "not a single change to the foreign object"


async def test_an_own_object_the_cache_has_not_seen_yet_is_applied_after_the_conflict() -> None:
    kube = FakeKube()
    kube.add(CONFIGMAPS, {**desired(), "data": {"etcd.conf.yaml": "old"}})
    ctx = SyncContext(kube, caches={CONFIGMAPS: EmptyCache()})
    await sync(ctx, registry.component(registry.CONFIG_MAP), REF, [desired()])
    assert [m for m, _ in kube.requests][:2] == ["PATCH", "GET"] and kube.requests[-1][0] == "PATCH"
    assert "resourceVersion" not in kube.bodies[-1]["metadata"], "the second apply is an ordinary one"
    assert (kube.object(CONFIGMAPS, "main-config", "ns") or {})["data"] == {"etcd.conf.yaml": "x"}
