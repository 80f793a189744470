"""The hostPath provisioner (``python -m druid.testing.provisioner``) against the real local control plane.

The provisioner runs as its own process with its root under ``tmp_path`` and serves a fresh, non-default
StorageClass with Immediate binding (kwok's stages only touch their own ``kwok-volume`` class, so nothing
else provisions or binds these claims). kube-controller-manager's PV controller does the binding.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from druid.runtime.client import Kube
from druid.runtime.objects import EVENTS, PODS, PVCS, Obj
from druid.testing.controlplane import NODE_NAME, ControlPlane
from druid.testing.process import Process
from druid.testing.provisioner import (
    ANNOTATION_PROVISIONED_BY,
    PROVISIONER,
    PVS,
    STORAGE_CLASSES,
    BindingMode,
    storage_class,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.controlplane


@dataclass
class Running:
    storage_class: str
    root: Path
    process: Process


@pytest.fixture
async def provisioner(
    control_plane: ControlPlane, kube: Kube, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    """The provisioner serving a fresh StorageClass; binding mode Immediate unless parametrized."""
    mode: BindingMode = getattr(request, "param", "Immediate")
    name = f"hostpath-{uuid.uuid4().hex[:8]}"
    await kube.create(STORAGE_CLASSES, storage_class(name, False, binding_mode=mode, node=NODE_NAME))
    root = tmp_path / "volumes"
    argv = [sys.executable, "-m", "druid.testing.provisioner", "--kubeconfig", str(control_plane.kubeconfig)]
    argv += ["--root", str(root), "--storage-class", name, "--node", NODE_NAME]
    proc = Process("provisioner", argv, tmp_path / "provisioner.log")
    proc.start()
    try:
        await eventually(lambda: _logged(proc, " started "), timeout=30, what="the provisioner to start")
        yield Running(name, root, proc)
    finally:
        proc.stop()
        await kube.delete(STORAGE_CLASSES, name)


async def _logged(proc: Process, text: str) -> bool:
    """``text`` is in the provisioner's log; fails at once if the process died."""
    if not proc.alive():
        raise AssertionError(f"provisioner exited:\n{proc.tail()}")
    return proc.log.exists() and text in proc.log.read_text(errors="replace")


def pvc(name: str, namespace: str, storage_class_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "storageClassName": storage_class_name,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


async def test_provision_bind_and_delete(provisioner: Running, kube: Kube, namespace: str) -> None:
    ns, root = namespace, provisioner.root
    other = await kube.create(PVCS, pvc("other", ns, "no-such-class"), ns)  # not ours: left alone
    claim = await kube.create(PVCS, pvc("data", ns, provisioner.storage_class), ns)
    uid = claim["metadata"]["uid"]
    pv_name = f"pvc-{uid}"

    async def bound() -> tuple[Obj, Obj] | None:
        c = await kube.get(PVCS, "data", ns)
        v = await kube.get(PVS, pv_name)
        both = c["status"].get("phase") == "Bound" and v["status"].get("phase") == "Bound"
        return (c, v) if both else None

    c, v = await eventually(bound, timeout=60, what="PVC and PV Bound")
    directory = root / f"{ns}-data-{uid}"
    assert c["spec"]["volumeName"] == pv_name
    assert v["metadata"]["annotations"][ANNOTATION_PROVISIONED_BY] == PROVISIONER
    spec = v["spec"]
    assert spec["hostPath"] == {"path": str(directory), "type": "Directory"}
    assert spec["capacity"] == {"storage": "1Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["storageClassName"] == provisioner.storage_class
    assert {k: spec["claimRef"][k] for k in ("namespace", "name", "uid")} == {
        "namespace": ns,
        "name": "data",
        "uid": uid,
    }
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}
    st = directory.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (65532, 65532, 0o770)
    # What a pod would leave behind; the directory goes with its content.
    (directory / "member").mkdir()
    (directory / "member" / "db").write_bytes(b"x")

    assert sorted(p.name for p in root.iterdir()) == [directory.name]
    assert await kube.get_or_none(PVS, f"pvc-{other['metadata']['uid']}") is None
    assert (await kube.get(PVCS, "other", ns))["status"].get("phase") == "Pending"

    await kube.delete(PVCS, "data", ns)

    async def gone() -> bool:
        return await kube.get_or_none(PVS, pv_name) is None and not directory.exists()

    await eventually(gone, timeout=60, what="PV and directory removed after the PVC's deletion")
    await eventually(lambda: _logged(provisioner.process, f" deleted pv={pv_name} "), timeout=10, what="delete log")
    log = provisioner.process.log.read_text()
    assert f"provisioned pv={pv_name} pvc={ns}/data dir={directory} mode=0o770 capacity=1Gi binding=immediate" in log

    provisioner.process.stop()  # SIGTERM: a clean exit says so
    assert not provisioner.process.alive()
    assert provisioner.process.log.read_text().rstrip().endswith(" stopped"), provisioner.process.tail()


@pytest.mark.parametrize("provisioner", ["WaitForFirstConsumer"], indirect=True)
async def test_wait_for_first_consumer(provisioner: Running, kube: Kube, namespace: str) -> None:
    """Nothing before a pod uses the claim; then the scheduler's selected node (the only one the class allows)."""
    ns = namespace
    claim = await kube.create(PVCS, pvc("data", ns, provisioner.storage_class), ns)
    pv_name = f"pvc-{claim['metadata']['uid']}"

    async def waiting_event() -> bool:
        events = await kube.list(EVENTS, ns, field_selector="involvedObject.name=data")
        return any(e.get("reason") == "WaitForFirstConsumer" for e in events["items"])

    await eventually(waiting_event, timeout=30, what="the PV controller's WaitForFirstConsumer event")
    assert await kube.get_or_none(PVS, pv_name) is None
    assert not list(provisioner.root.iterdir())

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "consumer", "namespace": ns},
        "spec": {
            "containers": [{"name": "c", "image": "example.invalid/none:1"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    await kube.create(PODS, pod, ns)

    async def bound_and_scheduled() -> Obj | None:
        c, p = await kube.get(PVCS, "data", ns), await kube.get(PODS, "consumer", ns)
        return c if c["status"].get("phase") == "Bound" and p["spec"].get("nodeName") == NODE_NAME else None

    c = await eventually(bound_and_scheduled, timeout=60, what="PVC Bound and the pod scheduled")
    assert c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == NODE_NAME
    directory = provisioner.root / f"{ns}-data-{c['metadata']['uid']}"
    assert directory.is_dir() and (await kube.get(PVS, pv_name))["spec"]["hostPath"]["path"] == str(directory)
    assert f"binding=selected-node:{NODE_NAME}" in provisioner.process.log.read_text()

    await kube.delete(PODS, "consumer", ns)
    await kube.delete(PVCS, "data", ns)

    async def gone() -> bool:
        return await kube.get_or_none(PVS, pv_name) is None and not directory.exists()

    await eventually(gone, timeout=60, what="PV and directory removed after the pod and PVC are gone")
