"""runtime.managedfields: fieldsV1 sets, paths in objects, and the take-over / drift rewrite (pure)."""

from __future__ import annotations

import copy
import json
from typing import Any

from druid.runtime import managedfields as mf

ETCD = 'k:{"name":"etcd"}'
SIDE = 'k:{"name":"side"}'


def live_object(managed: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "a",
            "namespace": "n",
            "resourceVersion": "7",
            "labels": {"x": "1", "old": "2"},
            "managedFields": managed,
        },
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"annotations": {"keep": "1", "evil/note": "hi"}},
                "spec": {
                    "containers": [
                        {"name": "etcd", "image": "e", "command": ["cat"], "terminationMessagePath": "/dev/t"},
                        {"name": "side", "image": "s"},
                    ]
                },
            },
        },
    }


DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}},
    "spec": {
        "replicas": 1,
        "template": {
            "metadata": {"annotations": {"keep": "1"}},
            "spec": {"containers": [{"name": "etcd", "image": "e"}]},
        },
    },
}

GO_FIELDS = {
    "f:metadata": {"f:labels": {".": {}, "f:x": {}, "f:old": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:template": {
            "f:metadata": {"f:annotations": {".": {}, "f:keep": {}}},
            "f:spec": {
                "f:containers": {
                    ETCD: {".": {}, "f:name": {}, "f:image": {}, "f:terminationMessagePath": {}},
                    SIDE: {".": {}, "f:name": {}, "f:image": {}},
                }
            },
        },
    },
}
INTRUDER_FIELDS = {
    "f:spec": {
        "f:template": {
            "f:metadata": {"f:annotations": {"f:evil/note": {}}},
            "f:spec": {"f:containers": {ETCD: {"f:command": {}}}},
        }
    }
}
STATUS = {"manager": "kcm", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}}


def entry(manager: str, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def test_members_and_tree_are_inverse() -> None:
    for fields in (GO_FIELDS, INTRUDER_FIELDS, {"f:a": {}}, {}):
        assert mf.tree(mf.members(fields)) == fields
    assert (("f:metadata", "f:labels")) in mf.members(GO_FIELDS)  # "." is the node itself
    assert ("f:metadata", "f:labels", "f:old") in mf.members(GO_FIELDS)


def test_resolve_keys_sets_and_lenient_keys() -> None:
    obj = {"ports": [{"port": 1, "protocol": "TCP"}], "tags": ["a", "b"], "list": [5, 6]}
    port = ("f:ports", 'k:{"port":1,"protocol":"TCP"}')
    assert mf.resolve(obj, port) == {"port": 1, "protocol": "TCP"}
    assert mf.resolve(obj, ("f:tags", 'v:"b"')) == "b" and mf.resolve(obj, ("f:list", "i:1")) == 6
    assert not mf.present({"ports": [{"port": 1}]}, port)
    assert mf.present({"ports": [{"port": 1}]}, port, lenient=True)  # the server defaults protocol
    assert mf.pointer(obj, port) == ["ports", 0]
    assert mf.pointer_text(["a/b", "c~d", 3]) == "/a~1b/c~0d/3"


def test_removals_are_outermost_and_keep_indexes_valid() -> None:
    obj = {"l": [{"k": 1, "x": 1}, {"k": 2}, {"k": 3}], "m": {"a": 1}}
    paths = [("f:l", 'k:{"k":1}'), ("f:l", 'k:{"k":3}'), ("f:l", 'k:{"k":3}', "f:k"), ("f:m", "f:a"), ("f:nope",)]
    ops = mf.removals(obj, paths)
    assert [o["path"] for o in ops] == ["/m/a", "/l/2", "/l/0"]
    for op in ops:  # applied in order, each still points at what it meant
        keys = op["path"].strip("/").split("/")
        parent: Any = obj
        for k in keys[:-1]:
            parent = parent[int(k)] if isinstance(parent, list) else parent[k]
        last = keys[-1]
        del parent[int(last) if isinstance(parent, list) else last]
    assert obj == {"l": [{"k": 2}], "m": {}}


def test_survey_takeover_sorts_sent_and_candidates() -> None:
    live = live_object([entry("etcd-druid", "Update", GO_FIELDS), STATUS])
    s = mf.survey(live, DESIRED, "etcd-druid", takeover=["etcd-druid"])
    assert s.takeover == [0]
    assert ("f:metadata", "f:labels", "f:x") in s.sent and ("f:spec", "f:replicas") in s.sent
    assert set(s.candidates) == {
        ("f:metadata", "f:labels", "f:old"),  # metadata counts for a take-over manager
        ("f:spec", "f:template", "f:spec", "f:containers", ETCD, "f:terminationMessagePath"),
        ("f:spec", "f:template", "f:spec", "f:containers", SIDE),
        ("f:spec", "f:template", "f:spec", "f:containers", SIDE, "f:name"),
        ("f:spec", "f:template", "f:spec", "f:containers", SIDE, "f:image"),
    }
    assert ("f:spec", "f:template", "f:spec", "f:containers", SIDE) in s.nodes
    # Without take-over, the same Update entry is just another manager: metadata is out of scope.
    other = mf.survey(live, DESIRED, "etcd-druid")
    assert not other.takeover and ("f:metadata", "f:labels", "f:old") not in other.candidates


def test_takeover_rewrite_defaults_unowned_content_to_the_applier() -> None:
    managed = [entry("etcd-druid", "Update", GO_FIELDS), STATUS]
    live = live_object(managed)
    s = mf.survey(live, DESIRED, "etcd-druid", takeover=["etcd-druid"])
    dry = copy.deepcopy(live)  # the server put terminationMessagePath back (a default), the rest is gone
    del dry["metadata"]["labels"]["old"]
    del dry["spec"]["template"]["spec"]["containers"][1]
    changed, same = mf.classify(s, live, dry)
    assert same == {("f:spec", "f:template", "f:spec", "f:containers", ETCD, "f:terminationMessagePath")}
    assert ("f:metadata", "f:labels", "f:old") in changed
    out = mf.rewrite(managed, s, changed, api_version="apps/v1", now="T")
    assert out is not None and out[1:] == [STATUS]  # the Update entry is gone, subresource entries stay
    [applier] = out[:1]
    assert (applier["manager"], applier["operation"], applier["time"]) == ("etcd-druid", "Apply", "T")
    owned = mf.members(applier["fieldsV1"])
    assert mf.members(GO_FIELDS) - owned == set(same)  # everything but the default
    json.dumps(out)  # serialisable as it is sent


def test_drift_moves_only_foreign_content_and_keeps_shared_fields() -> None:
    druid = entry("etcd-druid", "Apply", {k: v for k, v in GO_FIELDS.items()})
    druid["fieldsV1"] = mf.tree(mf.members(GO_FIELDS) - {("f:metadata", "f:labels", "f:old")})
    intruder = entry("intruder", "Update", INTRUDER_FIELDS)
    shared = entry("helper", "Apply", {"f:spec": {"f:replicas": {}}})
    managed = [druid, intruder, shared]
    live = live_object(managed)
    s = mf.survey(live, DESIRED, "etcd-druid", takeover=["etcd-druid"])
    assert not s.takeover
    assert set(s.candidates) == {
        ("f:spec", "f:template", "f:metadata", "f:annotations", "f:evil/note"),
        ("f:spec", "f:template", "f:spec", "f:containers", ETCD, "f:command"),
    }
    assert all(who == {"intruder"} for who in s.candidates.values())
    dry = copy.deepcopy(live)
    del dry["spec"]["template"]["metadata"]["annotations"]["evil/note"]
    del dry["spec"]["template"]["spec"]["containers"][0]["command"]
    changed, same = mf.classify(s, live, dry)
    assert set(changed) == set(s.candidates) and not same
    out = mf.rewrite(managed, s, changed, api_version="apps/v1", now="T")
    assert out is not None and [e["manager"] for e in out] == ["etcd-druid", "helper"]
    assert set(changed) <= mf.members(out[0]["fieldsV1"])
    assert out[1] == shared


def test_nothing_to_do_and_kept_fields() -> None:
    lease_go = entry(
        "etcd-druid", "Update", {"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:holderIdentity": {}}}
    )
    live = {"metadata": {"labels": {"x": "1"}, "managedFields": [lease_go]}, "spec": {"holderIdentity": "m"}}
    desired = {"metadata": {"labels": {"x": "1"}}}
    s = mf.survey(live, desired, "etcd-druid", takeover=["etcd-druid"], keep=["spec"])
    assert s.takeover == [0] and not s.candidates
    out = mf.rewrite([lease_go], s, {}, api_version="coordination.k8s.io/v1", now="T", keep=["spec"])
    assert out is not None
    assert [mf.members(e["fieldsV1"]) for e in out] == [
        {("f:metadata", "f:labels", "f:x")},
        {("f:spec", "f:holderIdentity")},
    ]
    # Once only the kept fields remain, there is nothing to take over any more.
    again = mf.survey(
        {**live, "metadata": {**live["metadata"], "managedFields": out}},
        desired,
        "etcd-druid",
        takeover=["etcd-druid"],
        keep=["spec"],
    )
    assert again.empty
    assert mf.rewrite(out, again, {}, api_version="v1", now="T") is None


def test_migration_patch_is_guarded_by_the_resource_version() -> None:
    ops = mf.migration_patch("42", [])
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert ops[1]["path"] == "/metadata/managedFields"


def test_readable_paths() -> None:
    path = ("f:spec", "f:template", "f:spec", "f:containers", ETCD, "f:command")
    assert mf.readable(path) == "spec.template.spec.containers[name=etcd].command"


def test_stolen_values_are_the_applier_s_fields_another_update_changed() -> None:
    druid_fields = mf.members(GO_FIELDS) - {("f:metadata", "f:labels", "f:old")}
    image = ("f:spec", "f:template", "f:spec", "f:containers", ETCD, "f:image")
    druid = entry("etcd-druid", "Apply", mf.tree(druid_fields - {image}))
    thief = entry(
        "kubectl-edit", "Update", {"f:spec": {"f:template": {"f:spec": {"f:containers": {ETCD: {"f:image": {}}}}}}}
    )
    # a manager that created the annotations map owns its node: shared structure, not a stolen value
    maps = entry("tool", "Update", {"f:spec": {"f:template": {"f:metadata": {"f:annotations": {".": {}}}}}})
    live = live_object([druid, thief, maps])
    s = mf.survey(live, DESIRED, "etcd-druid", takeover=["etcd-druid"])
    assert s.stolen == {image: {"kubectl-edit"}}
    assert mf.survey(live_object([thief]), DESIRED, "etcd-druid").stolen == {}, "nothing of the applier's yet"
