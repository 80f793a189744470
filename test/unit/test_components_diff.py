"""diff.difference: would a server-side apply change the live object? (field sets from real API server answers)"""

from __future__ import annotations

import copy
from typing import Any

from druid.components.diff import artifacts, difference, needs_apply

M = "etcd-druid"

DESIRED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "s1", "namespace": "ns", "labels": {"a": "b"}, "annotations": {}},
    "spec": {
        "type": "ClusterIP",
        "selector": {"a": "b"},
        "ports": [{"name": "client", "protocol": "TCP", "port": 2379, "targetPort": 2379}],
    },
}
FIELDS = {
    "f:metadata": {"f:annotations": {}, "f:labels": {"f:a": {}}},
    "f:spec": {
        "f:ports": {
            'k:{"port":2379,"protocol":"TCP"}': {
                ".": {},
                "f:name": {},
                "f:port": {},
                "f:protocol": {},
                "f:targetPort": {},
            }
        },
        "f:selector": {},
        "f:type": {},
    },
}


def live(**changes: Any) -> dict[str, Any]:
    """The Service as the API server returns it after druid applied DESIRED (defaults added)."""
    obj = copy.deepcopy(DESIRED)
    obj["metadata"].pop("annotations")
    obj["metadata"]["managedFields"] = [{"manager": M, "operation": "Apply", "fieldsV1": copy.deepcopy(FIELDS)}]
    obj["spec"].update(clusterIP="10.0.0.1", sessionAffinity="None", ipFamilies=["IPv4"])
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = obj
        for p in parents:
            node = node[p]
        node[leaf] = value
    return obj


def test_in_sync_with_server_defaults_and_foreign_labels() -> None:
    assert difference(DESIRED, live(), M) is None
    assert difference(DESIRED, live(metadata__labels={"a": "b", "foreign": "x"}), M) is None


def test_missing_object_or_not_applied_by_druid() -> None:
    assert difference(DESIRED, None, M) == "<missing>"
    other = live()
    other["metadata"]["managedFields"][0]["manager"] = "kubectl"
    assert difference(DESIRED, other, M) == "<not applied by druid>"


def test_changed_values() -> None:
    assert difference(DESIRED, live(spec__type="NodePort"), M) == ".spec.type"
    changed = live()
    changed["spec"]["ports"][0]["targetPort"] = 1
    assert difference(DESIRED, changed, M) == ".spec.ports[0].targetPort"


def test_atomic_values_may_carry_server_defaults() -> None:
    assert difference(DESIRED, live(spec__selector={"a": "c"}), M) == ".spec.selector.a"
    assert difference(DESIRED, live(spec__selector={"a": "b", "defaulted": "x"}), M) is None


def test_field_no_longer_desired_is_a_difference() -> None:
    desired = copy.deepcopy(DESIRED)
    del desired["spec"]["type"]
    assert difference(desired, live(), M) == ".spec.type"
    desired = copy.deepcopy(DESIRED)
    desired["metadata"]["labels"] = {}
    assert needs_apply(desired, live(), M)


def test_new_desired_field_and_list_item() -> None:
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["sessionAffinity"] = "None"
    assert difference(desired, live(), M) == ".spec.sessionAffinity"  # the value matches, but druid does not own it
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["ports"].append({"name": "peer", "protocol": "TCP", "port": 2380, "targetPort": 2380})
    assert difference(desired, live(), M) == ".spec.ports[1 owned, 2 desired]"


def test_empty_map_may_be_absent() -> None:
    desired = copy.deepcopy(DESIRED)
    desired["metadata"]["annotations"] = {}
    fields = live()
    del fields["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:annotations"]
    assert difference(desired, fields, M) is None


def test_booleans_are_not_numbers() -> None:
    desired = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x"},
        "automountServiceAccountToken": True,
    }
    obj = {
        "metadata": {
            "name": "x",
            "managedFields": [{"manager": M, "operation": "Apply", "fieldsV1": {"f:automountServiceAccountToken": {}}}],
        },
        "automountServiceAccountToken": 1,
    }
    assert difference(desired, obj, M) == ".automountServiceAccountToken"


def test_normalised_values_are_ignored_only_as_stored() -> None:
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["ports"][0]["targetPort"] = "2379"  # the server would keep it; pretend it normalised it
    stored = live()
    assert difference(desired, stored, M) == ".spec.ports[0].targetPort"
    ignore = artifacts(desired, stored, M)
    assert ignore == {".spec.ports[0].targetPort": 2379}
    assert difference(desired, stored, M, ignore) is None
    stored["spec"]["ports"][0]["targetPort"] = 1
    assert difference(desired, stored, M, ignore) == ".spec.ports[0].targetPort"
    # Also for values missing from the live object, as long as they stay as they were.
    odd = live(spec__selector={"x": "y"})
    ignore = artifacts(DESIRED, odd, M)
    assert list(ignore) == [".spec.selector.a"] and difference(DESIRED, odd, M, ignore) is None
    assert difference(DESIRED, live(spec__selector={"a": "z"}), M, ignore) == ".spec.selector.a"
