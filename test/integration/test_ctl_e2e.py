"""Checklist item 70 (druidctl verbs) and `druid status`, end to end: real `druid` subprocesses against the
test API server. The Etcd controller does not run: the tests create Etcds, their StatefulSet, Leases and
Secrets themselves and write Etcd status through the status subresource."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from druid.api import constants as c
from druid.cli.ctlcommon import ETCDS
from druid.runtime.client import Kube
from druid.runtime.clock import micro_time, rfc3339
from druid.runtime.objects import CONFIGMAPS, LEASES, SECRETS, SERVICES, STATEFULSETS, Obj
from druid.testing.binaries import REPO
from druid.testing.controlplane import ControlPlane
from druid.testing.wait import eventually

SUSPEND, OPERATION = c.ANNOTATION_SUSPEND_SPEC_RECONCILE, c.ANNOTATION_OPERATION
PROTECTION = c.ANNOTATION_DISABLE_COMPONENT_PROTECTION


@dataclass
class Run:
    rc: int
    out: str
    err: str


@pytest.fixture
async def kube(control_plane: ControlPlane, crds: list[str]) -> AsyncIterator[Kube]:
    async with await Kube.connect(str(control_plane.kubeconfig), timeout=10) as k:
        yield k


@pytest.fixture
def kubeconfig(control_plane: ControlPlane) -> str:
    return str(control_plane.kubeconfig)


async def start(kubeconfig: str, *argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "druid.cli.main",
        *argv,
        "--kubeconfig",
        kubeconfig,
        stdin=asyncio.subprocess.DEVNULL,  # not a terminal
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 60) -> Run:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def druid(kubeconfig: str, *argv: str) -> Run:
    return await finish(await start(kubeconfig, *argv))


def etcd_body(name: str, replicas: int = 3, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD,
        "metadata": {"name": name, "labels": labels or {}, "annotations": {"keep": "me"}},
        "spec": {"replicas": replicas, "labels": {"app": name}, "etcd": {}, "backup": {}} | spec,
    }


async def create_etcd(kube: Kube, ns: str, name: str, **kw: Any) -> Obj:
    return await kube.create(ETCDS, etcd_body(name, **kw), ns)


async def notes(kube: Kube, ns: str, name: str) -> dict[str, str]:
    return dict((await kube.get(ETCDS, name, ns))["metadata"].get("annotations") or {})


def condition(ctype: str, status: str, reason: str, now: dt.datetime) -> Obj:
    stamp = rfc3339(now)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": reason,
        "lastTransitionTime": stamp,
        "lastUpdateTime": stamp,
    }


async def set_status(kube: Kube, ns: str, name: str, status: Obj) -> None:
    await kube.merge_patch(ETCDS, name, {"status": status}, ns, subresource="status")


# ------------------------------------------------------------------ druidctl verbs (item 70)


async def test_70_reconciliation_trigger_suspend_resume(kube: Kube, kubeconfig: str, namespace: str) -> None:
    e1 = await create_etcd(kube, namespace, "e1", labels={"tier": "a"})
    await create_etcd(kube, namespace, "e2")

    run = await druid(kubeconfig, "reconciliation", "suspend", "e1", "-n", namespace)
    assert run.rc == 0, run.err
    assert f"etcd {namespace}/e1: reconciliation suspended" in run.out
    got = await kube.get(ETCDS, "e1", namespace)
    assert got["metadata"]["annotations"] == {"keep": "me", SUSPEND: "true"}
    assert (
        got["spec"] == e1["spec"] and got["metadata"]["generation"] == 1 and got["metadata"]["labels"] == {"tier": "a"}
    )
    assert await notes(kube, namespace, "e2") == {"keep": "me"}

    run = await druid(kubeconfig, "reconciliation", "resume", f"{namespace}/e1")
    assert run.rc == 0 and "reconciliation resumed" in run.out, run.err
    assert await notes(kube, namespace, "e1") == {"keep": "me"}

    # No names: every Etcd of the namespace (-l narrows it); -A only with --yes when stdin is no terminal.
    run = await druid(kubeconfig, "reconciliation", "trigger", "-n", namespace, "-l", "tier=a")
    assert run.rc == 0, run.err
    assert await notes(kube, namespace, "e1") == {"keep": "me", OPERATION: "reconcile"}
    assert await notes(kube, namespace, "e2") == {"keep": "me"}
    run = await druid(kubeconfig, "reconciliation", "trigger", "-n", namespace)
    assert run.rc == 0 and await notes(kube, namespace, "e2") == {"keep": "me", OPERATION: "reconcile"}

    marker = uuid.uuid4().hex
    await kube.merge_patch(ETCDS, "e2", {"metadata": {"labels": {"marker": marker}}}, namespace)
    run = await druid(kubeconfig, "reconciliation", "suspend", "-A", "-l", f"marker={marker}")
    assert run.rc == 1 and "pass --yes" in run.err
    run = await druid(kubeconfig, "reconciliation", "suspend", "-A", "-l", f"marker={marker}", "--yes")
    assert run.rc == 0 and f"etcd {namespace}/e2: reconciliation suspended" in run.out, run.err
    assert SUSPEND not in await notes(kube, namespace, "e1")

    run = await druid(kubeconfig, "reconciliation", "resume", "e1", "missing", "-n", namespace)
    assert run.rc == 1 and f"etcd 'missing' not found in namespace '{namespace}'" in run.err


async def test_70_trigger_refused_when_suspended(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await create_etcd(kube, namespace, "e1")
    await create_etcd(kube, namespace, "e2")
    await kube.merge_patch(ETCDS, "e1", {"metadata": {"annotations": {SUSPEND: "true"}}}, namespace)
    run = await druid(kubeconfig, "reconciliation", "trigger", "e1", "e2", "-n", namespace)
    assert run.rc == 1
    assert f"etcd {namespace}/e1: reconciliation is suspended" in run.err
    assert OPERATION not in await notes(kube, namespace, "e1")
    assert (await notes(kube, namespace, "e2"))[OPERATION] == "reconcile"  # the others still go ahead


async def test_70_component_protection_add_remove(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await create_etcd(kube, namespace, "e1")
    run = await druid(kubeconfig, "component-protection", "remove", "e1", "-n", namespace)
    assert run.rc == 0 and "component protection removed" in run.out, run.err
    assert await notes(kube, namespace, "e1") == {"keep": "me", PROTECTION: ""}
    run = await druid(kubeconfig, "component-protection", "add", f"{namespace}/e1")
    assert run.rc == 0 and "component protection added" in run.out, run.err
    assert await notes(kube, namespace, "e1") == {"keep": "me"}
    run = await druid(kubeconfig, "component-protection", "add", f"{namespace}/e1")
    assert run.rc == 0 and "already protected" in run.out


async def test_70_list_resources_by_part_of_label(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await create_etcd(kube, namespace, "e1")

    def meta(name: str, part_of: str) -> Obj:
        return {"name": name, "labels": {c.LABEL_PART_OF: part_of}}

    await kube.create(CONFIGMAPS, {"metadata": meta("e1-config", "e1")}, namespace)
    await kube.create(CONFIGMAPS, {"metadata": meta("other-config", "other")}, namespace)
    await kube.create(SECRETS, {"metadata": meta("e1-secret", "e1")}, namespace)
    await kube.create(LEASES, {"metadata": meta("e1-0", "e1"), "spec": {}}, namespace)
    await kube.create(LEASES, {"metadata": meta("e1-1", "e1"), "spec": {}}, namespace)
    svc = {"metadata": meta("e1-client", "e1"), "spec": {"ports": [{"port": 2379}]}}
    await kube.create(SERVICES, svc, namespace)

    run = await druid(kubeconfig, "list-resources", "e1", "-n", namespace, "-o", "json")
    assert run.rc == 0, run.err
    doc = json.loads(run.out)
    assert doc["kind"] == "EtcdResourceList" and doc["etcds"][0]["etcd"] == {"name": "e1", "namespace": namespace}
    found = {i["key"]["kind"]: [r["name"] for r in i["resources"]] for i in doc["etcds"][0]["items"]}
    assert found == {
        "Service": ["e1-client"],
        "ConfigMap": ["e1-config"],
        "Secret": ["e1-secret"],
        "Lease": ["e1-0", "e1-1"],
    }
    assert [i["key"]["resource"] for i in doc["etcds"][0]["items"]] == ["services", "configmaps", "secrets", "leases"]

    run = await druid(
        kubeconfig, "list-resources", "-n", namespace, "-f", "cm,leases.coordination.k8s.io", "-o", "yaml"
    )
    assert run.rc == 0, run.err
    items = yaml.safe_load(run.out)["etcds"][0]["items"]
    assert [i["key"]["kind"] for i in items] == ["ConfigMap", "Lease"]

    run = await druid(kubeconfig, "list-resources", f"{namespace}/e1", "-f", "etcds,cm")  # etcds: via discovery
    assert run.rc == 0, run.err
    assert run.out.splitlines()[0] == f"Etcd [{namespace}/e1]"
    assert f"ConfigMap  {namespace}/e1-config" in run.out and "other-config" not in run.out

    run = await druid(kubeconfig, "list-resources", "e1", "-n", namespace, "-f", "nosuchthing")
    assert run.rc == 1 and "unknown resource 'nosuchthing'" in run.err


async def test_70_wait_till_ready(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await create_etcd(kube, namespace, "e1")
    now = dt.datetime.now(dt.UTC)
    not_ready = [
        condition(c.CONDITION_ALL_MEMBERS_UPDATED, "True", "AllMembersUpdated", now),
        condition(c.CONDITION_ALL_MEMBERS_READY, "False", "NotAllMembersReady", now),
    ]
    await set_status(kube, namespace, "e1", {"conditions": not_ready})

    proc = await start(
        kubeconfig, "reconciliation", "trigger", "e1", "-n", namespace, "-w", "-t", "60s", "--poll-interval", "200ms"
    )

    async def triggered() -> bool:
        return (await notes(kube, namespace, "e1")).get(OPERATION) == "reconcile"

    await eventually(triggered, timeout=30, what="the reconcile annotation")
    # The waiter polls and reports AllMembersReady=False (each line is flushed) before the Etcd turns ready.
    waiting = f"etcd {namespace}/e1: waiting: AllMembersUpdated=True, AllMembersReady=False/NotAllMembersReady"
    stdout = proc.stdout
    assert stdout is not None
    seen: list[str] = []

    async def reported_waiting() -> bool:
        line = (await asyncio.wait_for(stdout.readline(), 5)).decode()
        seen.append(line)
        return waiting in line or not line  # EOF: the waiter ended early, asserted below

    await eventually(reported_waiting, timeout=30, what="the waiter reporting AllMembersReady=False")
    assert any(waiting in line for line in seen), "".join(seen)
    ready = [not_ready[0], condition(c.CONDITION_ALL_MEMBERS_READY, "True", "AllMembersReady", now)]
    await set_status(kube, namespace, "e1", {"conditions": ready})
    run = await finish(proc)
    run.out = "".join(seen) + run.out
    assert run.rc == 0, run.err
    assert waiting in run.out
    assert f"etcd {namespace}/e1: ready" in run.out
    assert "Reconciliation status:" in run.out

    await set_status(kube, namespace, "e1", {"conditions": not_ready})
    run = await druid(
        kubeconfig, "reconciliation", "trigger", "e1", "-n", namespace, "-w", "-t", "1s", "--poll-interval", "300ms"
    )
    assert run.rc == 1 and f"etcd {namespace}/e1: not ready after" in run.err


# ------------------------------------------------------------------ druid status diagnoses


async def make_healthy(
    kube: Kube,
    ns: str,
    name: str = "etcd-main",
    *,
    member_ages: dict[int, float] | None = None,
    delta_age: float = 5,
    backup_ready: tuple[str, str] = ("True", "BackupSucceeded"),
    annotations: dict[str, str] | None = None,
    with_statefulset: bool = True,
    **spec: Any,
) -> Obj:
    """A 3-member Etcd with a Local store as druid would leave it: StatefulSet (pods run under kwok), member
    and snapshot leases renewed by "backup-restore" (``member_ages``/``delta_age``: seconds since renewal)."""
    now = dt.datetime.now(dt.UTC)
    body = etcd_body(name, backup={"store": {"provider": "Local", "prefix": f"{ns}/{name}"}}, **spec)
    body["metadata"]["annotations"].update(annotations or {})
    etcd = await kube.create(ETCDS, body, ns)
    labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: name}
    if with_statefulset:
        owner = {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND_ETCD,
            "name": name,
            "uid": etcd["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "etcd", "image": "pause"}]}}
        sts = {
            "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
            "spec": {
                "replicas": 3,
                "serviceName": name,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": pod,
            },
        }
        await kube.create(STATEFULSETS, sts, ns)
    ages = {i: 2.0 for i in range(3)} | (member_ages or {})
    for i, age in ages.items():
        role = "Leader" if i == 0 else "Member"
        spec_ = {"holderIdentity": f"{i:016x}:cid:{role}", "renewTime": micro_time(now - dt.timedelta(seconds=age))}
        await kube.create(LEASES, {"metadata": {"name": f"{name}-{i}", "labels": labels}, "spec": spec_}, ns)
    for kind, age in (("full", 60.0), ("delta", delta_age)):
        spec_ = {"holderIdentity": "1000", "renewTime": micro_time(now - dt.timedelta(seconds=age))}
        await kube.create(LEASES, {"metadata": {"name": f"{name}-{kind}-snap", "labels": labels}, "spec": spec_}, ns)
    conditions = [condition(c.CONDITION_BACKUP_READY, *backup_ready, now)]
    await set_status(kube, ns, name, {"observedGeneration": 1, "conditions": conditions})
    if with_statefulset:

        async def rolled_out() -> bool:
            s = (await kube.get(STATEFULSETS, name, ns)).get("status") or {}
            return s.get("readyReplicas") == 3 and s.get("updatedReplicas") == 3 and s.get("observedGeneration") == 1

        await eventually(rolled_out, timeout=60, what=f"StatefulSet {ns}/{name} ready (kwok)")
    return etcd


def verdict(run: Run) -> str:
    return run.out.rstrip("\n").splitlines()[-1]


async def test_status_diagnosis_healthy(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await make_healthy(kube, namespace)
    run = await druid(kubeconfig, "status", "etcd-main", "-n", namespace)
    assert run.rc == 0, run.out + run.err
    assert verdict(run) == "READY: 3/3 members ready, quorate, backups fresh"
    assert "Members:" in run.out and "Leader" in run.out and "Problems: none" in run.out
    run = await druid(kubeconfig, "status", f"{namespace}/etcd-main", "-o", "json")
    doc = json.loads(run.out)
    assert run.rc == 0 and doc["ready"] is True and [m["status"] for m in doc["members"]] == ["Ready"] * 3
    run = await druid(kubeconfig, "status", "nope", "-n", namespace)
    assert run.rc == 2 and "not found" in run.err


async def test_status_diagnosis_member_lease_stale(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await make_healthy(kube, namespace, member_ages={1: 133})
    run = await druid(kubeconfig, "status", f"{namespace}/etcd-main")
    assert run.rc == 1, run.out + run.err
    # 2m13s plus the test's own time; its pod runs (kwok), only the lease is late: Unknown, not NotReady
    assert re.fullmatch(
        r"NOT READY: member etcd-main-1 lease not renewed for 2m\d+s \(Unknown/LeaseExpired\)", verdict(run)
    )


async def test_status_diagnosis_backup_lease_stale(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await make_healthy(kube, namespace, delta_age=600, backup_ready=("False", "BackupFailed"))
    run = await druid(kubeconfig, "status", "etcd-main", "-n", namespace)
    assert run.rc == 1, run.out + run.err
    assert verdict(run) == (
        "NOT READY: backup snapshot leases stale: delta snapshot last renewed 10m ago (BackupReady=False/BackupFailed)"
    )
    assert "STALE" in run.out


async def test_status_diagnosis_secret_missing(kube: Kube, kubeconfig: str, namespace: str) -> None:
    tls = {
        "tlsCASecretRef": {"name": "etcd-ca"},
        "serverTLSSecretRef": {"name": "etcd-server"},
        "clientTLSSecretRef": {"name": "etcd-client"},
    }
    for secret in ("etcd-server", "etcd-client"):
        await kube.create(SECRETS, {"metadata": {"name": secret}, "data": {"k": "dg=="}}, namespace)
    await make_healthy(kube, namespace, with_statefulset=False, etcd={"clientUrlTls": tls})
    run = await druid(kubeconfig, "status", "etcd-main", "-n", namespace)
    assert run.rc == 1, run.out + run.err
    assert verdict(run).startswith('NOT READY: secret "etcd-ca" referenced by spec.etcd.clientUrlTls is missing')
    assert "etcd-server" not in run.out


async def test_status_diagnosis_suspended(kube: Kube, kubeconfig: str, namespace: str) -> None:
    await make_healthy(kube, namespace, annotations={SUSPEND: "true"})
    patch = {"spec": {"labels": {"app": "etcd-main", "changed": "yes"}}}
    await kube.merge_patch(ETCDS, "etcd-main", patch, namespace)  # generation 2, never reconciled
    run = await druid(kubeconfig, "status", "etcd-main", "-n", namespace)
    assert run.rc == 1, run.out + run.err
    assert verdict(run) == (
        f"NOT READY: spec reconciliation suspended (annotation {SUSPEND}) and spec generation 2 not reconciled "
        "(observedGeneration 1)"
    )
    assert f"Spec reconciliation: SUSPENDED (annotation {SUSPEND})" in run.out
