"""Store: relist deltas (adds, RV-changed updates, tombstone deletes), atomic swap, indexes, stripping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from druid.runtime.objects import ObjectKey, Tombstone
from druid.runtime.store import (
    LAST_APPLIED,
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    DeltaType,
    Store,
    label_index,
    label_index_name,
    strip,
)


def cm(name: str, rv: str = "1", ns: str | None = "a", owner: str | None = None, **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv, **meta}
    if ns is not None:
        metadata["namespace"] = ns
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "X", "name": "other", "uid": "not-controller"},
            {"apiVersion": "v1", "kind": "X", "name": "o", "uid": owner, "controller": True},
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def summary(deltas: list) -> set[tuple[str, str]]:
    return {(d.type.value, str(d.key)) for d in deltas}


def test_replace_reports_adds_changed_updates_and_tombstone_deletes() -> None:
    store = Store()
    first = store.replace([cm("keep"), cm("change"), cm("gone")])
    assert summary(first) == {("added", "a/keep"), ("added", "a/change"), ("added", "a/gone")}

    deltas = store.replace([cm("keep"), cm("change", rv="2"), cm("new", rv="3")])
    assert summary(deltas) == {("updated", "a/change"), ("added", "a/new"), ("deleted", "a/gone")}
    update = next(d for d in deltas if d.type is DeltaType.UPDATED)
    assert update.old is not None and update.old["metadata"]["resourceVersion"] == "1"
    assert isinstance(update.obj, dict) and update.obj["metadata"]["resourceVersion"] == "2"
    delete = next(d for d in deltas if d.type is DeltaType.DELETED)
    assert isinstance(delete.obj, Tombstone)
    assert delete.obj.key == ObjectKey("a", "gone") and delete.obj.last_known["metadata"]["name"] == "gone"
    assert sorted(str(k) for k in store.keys()) == ["a/change", "a/keep", "a/new"]
    assert store.replace([]) and len(store) == 0


def test_replace_swaps_contents_and_indexes_atomically() -> None:
    store = Store()
    store.replace([cm("x", ns="a", owner="u1"), cm("y", ns="b", owner="u1")])
    before_items = store.list()
    store.replace([cm("z", ns="c", owner="u2")])
    # The old snapshot a reader took is untouched; the new content and every index agree.
    assert [o["metadata"]["name"] for o in before_items] == ["x", "y"]
    assert [o["metadata"]["name"] for o in store.list()] == ["z"]
    assert store.by_index(NAMESPACE_INDEX, "a") == [] and store.index_values(NAMESPACE_INDEX) == ["c"]
    assert store.by_index(OWNER_UID_INDEX, "u1") == []
    assert [o["metadata"]["name"] for o in store.by_index(OWNER_UID_INDEX, "u2")] == ["z"]


def test_put_and_remove_maintain_indexes() -> None:
    store = Store()
    old, new = store.put(cm("x", owner="u1"))
    assert old is None and new["metadata"]["name"] == "x"
    assert store.index_keys(OWNER_UID_INDEX, "u1") == {ObjectKey("a", "x")}
    assert store.index_keys(OWNER_UID_INDEX, "not-controller") == set()  # only the controller owner counts

    old, new = store.put(cm("x", rv="2", owner="u2"))  # the controller owner changed
    assert old is not None and old["metadata"]["resourceVersion"] == "1"
    assert store.index_keys(OWNER_UID_INDEX, "u1") == set()
    assert store.index_keys(OWNER_UID_INDEX, "u2") == {ObjectKey("a", "x")}
    assert store.index_values(OWNER_UID_INDEX) == ["u2"]

    assert store.remove(ObjectKey("a", "x")) is not None
    assert store.remove(ObjectKey("a", "x")) is None
    assert store.index_values(OWNER_UID_INDEX) == [] and store.index_values(NAMESPACE_INDEX) == []


def test_namespace_index_and_list_by_namespace() -> None:
    store = Store()
    store.replace([cm("x", ns="a"), cm("y", ns="a"), cm("z", ns="b"), cm("node", ns=None)])
    assert sorted(o["metadata"]["name"] for o in store.list("a")) == ["x", "y"]
    assert [o["metadata"]["name"] for o in store.list("b")] == ["z"]
    assert [o["metadata"]["name"] for o in store.by_index(NAMESPACE_INDEX, "")] == ["node"]
    assert store.get(ObjectKey(None, "node")) is not None and ObjectKey("b", "z") in store


def test_custom_indexer_added_late_indexes_existing_objects() -> None:
    def by_label(obj: dict[str, Any]) -> list[str]:
        return [v for k, v in (obj["metadata"].get("labels") or {}).items() if k == "app"]

    store = Store(indexers={"early": lambda o: [o["metadata"]["name"][0]]})
    store.replace([cm("x1", labels={"app": "etcd"}), cm("y1", labels={"app": "web"})])
    store.add_indexer("app", by_label)
    assert [o["metadata"]["name"] for o in store.by_index("app", "etcd")] == ["x1"]
    store.put(cm("x2", labels={"app": "etcd"}))
    assert sorted(o["metadata"]["name"] for o in store.by_index("app", "etcd")) == ["x1", "x2"]
    assert [o["metadata"]["name"] for o in store.by_index("early", "y")] == ["y1"]
    with pytest.raises(ValueError):
        store.add_indexer("app", by_label)
    with pytest.raises(KeyError):
        store.by_index("missing", "x")


def test_managed_fields_and_last_applied_are_stripped_without_touching_the_input() -> None:
    raw = cm(
        "x",
        managedFields=[{"manager": "kubectl", "operation": "Apply"}],
        annotations={LAST_APPLIED: '{"big": "json"}', "keep": "me"},
    )
    pristine = copy.deepcopy(raw)
    store = Store()
    store.replace([raw])
    cached = store.get(ObjectKey("a", "x"))
    assert cached is not None
    assert "managedFields" not in cached["metadata"]
    assert cached["metadata"]["annotations"] == {"keep": "me"}
    assert raw == pristine  # the caller's object was not modified
    # put() strips too; an annotation map left empty disappears; clean objects are not copied.
    _, new = store.put(cm("y", managedFields=[], annotations={LAST_APPLIED: "{}"}))
    assert "annotations" not in new["metadata"] and "managedFields" not in new["metadata"]
    clean = cm("z")
    assert strip(clean) is clean


def test_transform_runs_after_stripping_on_put_and_replace() -> None:
    seen: list[dict[str, Any]] = []

    def drop_data(obj: dict[str, Any]) -> dict[str, Any]:
        seen.append(obj)
        return {k: v for k, v in obj.items() if k != "data"}

    store = Store(transform=drop_data)
    store.replace([{**cm("x", managedFields=[{}]), "data": {"big": "x" * 100}}])
    store.put({**cm("y"), "data": {"k": "v"}})
    assert all("managedFields" not in o["metadata"] for o in seen)
    assert all("data" not in o for o in store.list())


def test_keep_managed_fields_keeps_the_main_resource_entries() -> None:
    entries = [
        {"manager": "etcd-druid", "operation": "Apply", "fieldsV1": {"f:data": {}}},
        {"manager": "etcd-druid", "operation": "Update", "fieldsV1": {"f:x": {}}},
        {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:y": {}}},
        {"manager": "kcm", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}},
    ]
    obj = cm("a", managedFields=entries, annotations={LAST_APPLIED: "{}"})
    assert strip(obj, "etcd-druid")["metadata"]["managedFields"] == entries[:3]
    assert "managedFields" not in strip(obj)["metadata"]
    assert "managedFields" not in strip(cm("b", managedFields=entries[3:]), "etcd-druid")["metadata"]
    store = Store(keep_managed_fields="etcd-druid")
    store.put(obj)
    cached = store.get(ObjectKey("a", "a"))
    assert cached is not None and cached["metadata"]["managedFields"] == entries[:3]
    assert "annotations" not in cached["metadata"]


def test_select_with_and_without_a_label_index_gives_the_same_objects() -> None:
    """``select`` is a label-selector filter of one namespace; a label index only narrows where it looks."""
    objs = [
        cm("a1", ns="a", labels={"part-of": "x", "role": "m"}),
        cm("a2", ns="a", labels={"part-of": "x"}),
        cm("a3", ns="a", labels={"part-of": "y", "role": "m"}),
        cm("a4", ns="a"),
        cm("b1", ns="b", labels={"part-of": "x", "role": "m"}),
    ]
    plain, indexed = Store(), Store()
    indexed.add_indexer(label_index_name("part-of"), label_index("part-of"))
    for store in (plain, indexed):
        store.replace(objs)
    selections = ({"part-of": "x"}, {"part-of": "x", "role": "m"}, {"role": "m"}, {"part-of": "z"}, {})
    for labels in selections:
        want = sorted(
            o["metadata"]["name"]
            for o in objs
            if o["metadata"]["namespace"] == "a"
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        )
        for store in (plain, indexed):
            assert sorted(o["metadata"]["name"] for o in store.select("a", labels)) == want, labels
    # The index follows updates and removals.
    indexed.put(cm("a1", rv="2", ns="a", labels={"part-of": "y"}))
    indexed.remove(ObjectKey("a", "a2"))
    assert [o["metadata"]["name"] for o in indexed.select("a", {"part-of": "x"})] == []
    assert sorted(o["metadata"]["name"] for o in indexed.select("a", {"part-of": "y"})) == ["a1", "a3"]
