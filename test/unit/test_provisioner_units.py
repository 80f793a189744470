"""The hostPath provisioner's decisions (which claims, which PV, which PVs to delete) without an API server."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from druid.runtime.objects import Obj
from druid.testing import provisioner as prov

CFG = prov.Config(root=Path("/vol"), storage_class="hostpath", node="node-1")
UID = "6f1c0d6e-0000-4000-8000-000000000001"


def claim(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "data-etcd-0", "namespace": "ns", "uid": UID},
        "spec": {
            "storageClassName": "hostpath",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "2Gi"}},
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def sc(**kw: Any) -> Obj:
    return prov.storage_class("hostpath", False, **kw)


def test_storage_class() -> None:
    assert prov.storage_class("hostpath", True) == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "hostpath", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "druid.local/hostpath",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    restricted = prov.storage_class("x", False, binding_mode="Immediate", node="node-1")
    assert restricted["volumeBindingMode"] == "Immediate"
    assert restricted["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "false"}
    assert restricted["allowedTopologies"] == [
        {"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["node-1"]}]}
    ]


def test_wants_immediate_claims_of_its_class() -> None:
    immediate = sc(binding_mode="Immediate")
    assert prov.wants_volume(claim(), immediate, CFG) == "immediate"
    no_status = claim()
    del no_status["status"]
    assert prov.wants_volume(no_status, immediate, CFG) == "immediate"
    unset = claim()
    del unset["spec"]["storageClassName"]
    assert prov.wants_volume(unset, immediate, CFG) is None  # not the default class
    assert prov.wants_volume(unset, prov.storage_class("hostpath", True, binding_mode="Immediate"), CFG) == "immediate"


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["spec"].update(storageClassName="other"),
        lambda c: c["spec"].update(storageClassName=""),
        lambda c: c["spec"].update(volumeName="pv-x"),
        lambda c: c["status"].update(phase="Bound"),
        lambda c: c["status"].update(phase="Lost"),
        lambda c: c["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z"),
    ],
)
def test_leaves_other_claims_alone(change: Any) -> None:
    c = claim()
    change(c)
    assert prov.wants_volume(c, sc(binding_mode="Immediate"), CFG) is None


def test_needs_its_class_to_exist_and_be_its_own() -> None:
    assert prov.wants_volume(claim(), None, CFG) is None
    foreign = {**sc(binding_mode="Immediate"), "provisioner": "kwok.x-k8s.io/volume"}
    assert prov.wants_volume(claim(), foreign, CFG) is None


def test_wait_for_first_consumer_needs_this_node_selected() -> None:
    c = claim()
    assert prov.wants_volume(c, sc(), CFG) is None
    c["metadata"]["annotations"] = {"volume.kubernetes.io/selected-node": "other-node"}
    assert prov.wants_volume(c, sc(), CFG) is None
    c["metadata"]["annotations"] = {"volume.kubernetes.io/selected-node": "node-1"}
    assert prov.wants_volume(c, sc(), CFG) == "selected-node:node-1"


def test_persistent_volume() -> None:
    pv = prov.persistent_volume(claim(accessModes=["ReadWriteOnce", "ReadOnlyMany"]), sc(reclaim_policy="Retain"), CFG)
    assert pv == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{UID}", "annotations": {"pv.kubernetes.io/provisioned-by": "druid.local/hostpath"}},
        "spec": {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
            "volumeMode": "Filesystem",
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "hostpath",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": "ns",
                "name": "data-etcd-0",
                "uid": UID,
            },
            "hostPath": {"path": f"/vol/ns-data-etcd-0-{UID}", "type": "Directory"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}
                            ]
                        }
                    ]
                }
            },
        },
    }
    no_policy = sc()
    del no_policy["reclaimPolicy"]
    assert prov.persistent_volume(claim(), no_policy, CFG)["spec"]["persistentVolumeReclaimPolicy"] == "Delete"


def test_persistent_volume_refuses_what_a_directory_cannot_be() -> None:
    with pytest.raises(ValueError, match="volumeMode Block"):
        prov.persistent_volume(claim(volumeMode="Block"), sc(), CFG)
    with pytest.raises(ValueError, match="storage"):
        prov.persistent_volume(claim(resources={}), sc(), CFG)


def test_releasable() -> None:
    pv = prov.persistent_volume(claim(), sc(), CFG)
    pv["status"] = {"phase": "Released"}
    assert prov.releasable(pv)
    for change in (
        lambda v: v["status"].update(phase="Bound"),
        lambda v: v["spec"].update(persistentVolumeReclaimPolicy="Retain"),
        lambda v: v["metadata"]["annotations"].update({"pv.kubernetes.io/provisioned-by": "kwok.x-k8s.io/volume"}),
        lambda v: v["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z"),
    ):
        other = copy.deepcopy(pv)
        change(other)
        assert not prov.releasable(other)


def test_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)
    assert prov.inside(root, root / "a")
    assert not prov.inside(root, root)
    assert not prov.inside(root, root / ".." / "x")
    assert not prov.inside(root, root / "link")
    assert not prov.inside(root, Path("/"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to 65532 needs root")
def test_make_volume_dir(tmp_path: Path) -> None:
    d = tmp_path / "v"
    for _ in range(2):  # idempotent
        assert prov.make_volume_dir(d) == "0o770"
        st = d.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (65532, 65532, 0o770)


def test_parse_args(tmp_path: Path) -> None:
    kubeconfig, cfg = prov.parse_args(
        ["--kubeconfig", "k", "--root", str(tmp_path / "r"), "--storage-class", "s", "--node", "n"]
    )
    assert (kubeconfig, cfg) == ("k", prov.Config(root=(tmp_path / "r").resolve(), storage_class="s", node="n"))
