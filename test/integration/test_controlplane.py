"""Smoke tests of the local control plane itself: pods, PVCs, garbage collection, SSA, teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from druid.runtime import patch
from druid.testing.controlplane import ControlPlane
from druid.testing.wait import eventually


def _labels(name: str) -> dict[str, str]:
    return {"app": name}


async def test_statefulset_with_volume_claims_becomes_ready(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": _labels("web")},
            "template": {
                "metadata": {"labels": _labels("web")},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/none:1"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    await apps.create_namespaced_stateful_set(namespace, sts)

    async def ready() -> bool:
        s = await apps.read_namespaced_stateful_set_status("web", namespace)
        return (s.status.ready_replicas or 0) == 3

    await eventually(ready, timeout=60, what="StatefulSet web readyReplicas=3")
    pvcs = (await core.list_namespaced_persistent_volume_claim(namespace)).items
    assert sorted(p.metadata.name for p in pvcs) == ["data-web-0", "data-web-1", "data-web-2"]
    assert {p.status.phase for p in pvcs} == {"Bound"}
    pods = (await core.list_namespaced_pod(namespace)).items
    assert {p.status.phase for p in pods} == {"Running"}
    assert all(p.spec.node_name == "kwok-node-0" for p in pods)


async def test_owner_reference_garbage_collection(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = await core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"a": "1"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid, "controller": True}
    await core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    await core.delete_namespaced_config_map("owner", namespace)

    async def child_gone() -> bool:
        try:
            await core.read_namespaced_config_map("child", namespace)
        except ApiException as e:
            return e.status == 404
        return False

    await eventually(child_gone, timeout=30, what="garbage collection of the child ConfigMap")


async def test_server_side_apply_with_field_manager(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v1"}}
    await core.patch_namespaced_config_map("applied", namespace, body, **patch.apply("druid"))
    body["data"] = {"k": "v2"}
    cm = await core.patch_namespaced_config_map("applied", namespace, body, **patch.apply("druid"))
    assert cm.data == {"k": "v2"}
    managers = {(m.manager, m.operation) for m in cm.metadata.managed_fields}
    assert ("druid", "Apply") in managers
    # A second manager taking the same field without force is a conflict (409).
    try:
        await core.patch_namespaced_config_map(
            "applied", namespace, {**body, "data": {"k": "other"}}, **patch.apply("someone", force=False)
        )
    except ApiException as e:
        assert e.status == 409
    else:
        raise AssertionError("conflicting apply without force was accepted")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone only if /proc says so.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.apiserver
def test_stop_leaves_no_process_or_directory() -> None:
    cp = ControlPlane(mode="apiserver")
    cp.start()
    pids, workdir = cp.pids(), cp.workdir
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert cp.startup_seconds["apiserver"] < 60
    cp.stop()
    assert not any(_alive(p) for p in pids), "control-plane processes survived stop()"
    assert not workdir.exists(), "control-plane directory survived stop()"


@pytest.mark.apiserver
def test_ctrl_c_of_the_command_line_tears_everything_down() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "druid.testing.controlplane", "--mode", "apiserver"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    workdir = None
    try:
        for line in proc.stdout:
            if line.startswith("workdir="):
                workdir = Path(line.strip().split("=", 1)[1])
                break
        assert workdir is not None and workdir.exists()
        children = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        ]
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(_alive(p) for p in children)
    assert not workdir.exists()
