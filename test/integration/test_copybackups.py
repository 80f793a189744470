"""H54-H56: the EtcdCopyBackupsTask controller in-process against the full control plane (KCM runs Jobs, kwok pods)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.config.operator import OperatorConfiguration
from druid.controllers.copybackups.job import build_job
from druid.controllers.copybackups.reconciler import COPY_BACKUPS_TASKS
from druid.controllers.copybackups.setup import CONTROLLER_NAME, make_copy_backups_controller
from druid.runtime.client import Kube
from druid.runtime.manager import Manager, ManagerOptions
from druid.runtime.objects import JOBS, PODS, SECRETS, Obj, ObjectKey, ResourceRef
from druid.runtime.reflector import ReflectorConfig
from druid.testing.controlplane import ControlPlane
from druid.testing.wait import eventually

FAST = ReflectorConfig(backoff_initial=0.1, backoff_max=1.0)
LOOPBACK = "127.0.0.1"
QUOTAS = ResourceRef("", "v1", "resourcequotas", "ResourceQuota")
HOLD = "test.druid.gardener.cloud/hold"


async def until(probe: Callable[[], Awaitable[Obj | None]], *, timeout: float = 30, what: str) -> Obj:
    """``eventually`` for probes that return the object once it is as wanted, else None."""
    result = await eventually(probe, timeout=timeout, what=what)
    assert result is not None
    return result


@pytest.fixture
def copy_config(request: pytest.FixtureRequest) -> OperatorConfiguration:
    """The controller enabled; more top-level keys through indirect parametrisation."""
    extra = getattr(request, "param", {})
    return OperatorConfiguration.model_validate({"controllers": {"etcdCopyBackupsTask": {"enabled": True}}, **extra})


@pytest.fixture
async def env(
    control_plane: ControlPlane, crds: list[str], namespace: str, copy_config: OperatorConfiguration
) -> AsyncIterator[tuple[Kube, Manager]]:
    """A Manager running the copy-backups controller (confined to the test's namespace) and a test client."""
    registry = CollectorRegistry()
    opts = ManagerOptions(
        metrics_address=LOOPBACK, metrics_port=0, probe_address=LOOPBACK, probe_port=0, graceful_shutdown_timeout=5
    )
    manager = Manager(
        await Kube.connect(str(control_plane.kubeconfig), timeout=10, registry=registry),
        opts,
        registry=registry,
        reflector_config=FAST,
    )
    manager.add(
        make_copy_backups_controller(
            manager.kube, manager.informers, copy_config, registry=registry, namespace=namespace
        )
    )
    stop = asyncio.Event()
    run = asyncio.create_task(manager.run(stop))
    kube = await Kube.connect(str(control_plane.kubeconfig), timeout=10)
    try:
        await asyncio.wait_for(manager.is_leader.wait(), 30)
        yield kube, manager
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
        await kube.close()


def task_manifest(name: str, namespace: str, **spec: Any) -> Obj:
    body = {
        "sourceStore": {"provider": "aws", "container": "src-bucket", "prefix": "etcd-a", "secretRef": {"name": "src"}},
        "targetStore": {
            "provider": "Local",
            "container": "dst-bucket",
            "prefix": "etcd-b",
            "secretRef": {"name": "dst"},
        },
        "maxBackups": 2,
        **spec,
    }
    meta = {"name": name, "namespace": namespace}
    return {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD_COPY_BACKUPS_TASK, "metadata": meta, "spec": body}


async def local_secret(kube: Kube, namespace: str) -> None:
    data = {"hostPath": base64.b64encode(b"/srv/buckets").decode()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dst", "namespace": namespace}, "data": data}
    await kube.create(SECRETS, secret)


async def get_task(kube: Kube, namespace: str, name: str) -> Obj:
    return await kube.get(COPY_BACKUPS_TASKS, name, namespace)


async def wait_job(kube: Kube, namespace: str, name: str) -> Obj:
    async def probe() -> Obj | None:
        return await kube.get_or_none(JOBS, f"{name}-worker", namespace)

    return await until(probe, what=f"job {name}-worker")


def condition(obj: Obj, kind: str) -> dict[str, Any]:
    return next((dict(x) for x in (obj.get("status") or {}).get("conditions") or () if x["type"] == kind), {})


async def test_h54_task_creates_worker_job_with_finalizer(env: tuple[Kube, Manager], namespace: str) -> None:
    kube, manager = env
    await local_secret(kube, namespace)
    created = await kube.create(COPY_BACKUPS_TASKS, task_manifest("copy", namespace, podLabels={"team": "x"}))
    job = await wait_job(kube, namespace, "copy")

    async def finalized() -> Obj | None:
        got = await get_task(kube, namespace, "copy")
        return got if (got.get("status") or {}).get("observedGeneration") == 1 else None

    task = await until(finalized, what="observedGeneration 1")
    assert task["metadata"]["finalizers"] == [c.FINALIZER_ETCD]
    images = manager.controllers[0].reconciler.images  # type: ignore[attr-defined]
    expected = build_job(EtcdCopyBackupsTask.model_validate(created), images, target_host_path="/srv/buckets")
    assert job["metadata"]["labels"] == expected["metadata"]["labels"]
    assert job["metadata"]["ownerReferences"] == expected["metadata"]["ownerReferences"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "x"
    spec, want = template["spec"], expected["spec"]["template"]["spec"]
    for field in ("restartPolicy", "shareProcessNamespace", "securityContext", "volumes"):
        assert spec[field] == want[field], field
    container = spec["containers"][0]
    for field in ("name", "image", "args", "env", "volumeMounts", "securityContext"):
        assert container[field] == want["containers"][0][field], field
    assert container["args"][:3] == [
        "copy",
        "--snapstore-temp-directory=/home/nonroot/data/tmp",
        "--storage-provider=Local",
    ]
    assert {
        "name": "host-storage",
        "hostPath": {"path": "/srv/buckets/dst-bucket", "type": "DirectoryOrCreate"},
    } in spec["volumes"]
    init = spec["initContainers"][0]
    assert init["name"] == "change-backup-bucket-permissions"
    assert init["command"] == ["chown", "-R", "65532:65532", "/home/nonroot/dst-bucket", "/home/nonroot/src-bucket"]
    # a spec change is observed, but the Job is never updated or re-created
    await kube.merge_patch(COPY_BACKUPS_TASKS, "copy", {"spec": {"maxBackups": 5}}, namespace)

    async def observed() -> Obj | None:
        got = await get_task(kube, namespace, "copy")
        return got if (got.get("status") or {}).get("observedGeneration") == 2 else None

    await until(observed, what="observedGeneration 2")
    again = await kube.get(JOBS, "copy-worker", namespace)
    assert again["metadata"]["uid"] == job["metadata"]["uid"]
    assert "--max-backups-to-copy=2" in again["spec"]["template"]["spec"]["containers"][0]["args"]


async def test_h54_missing_secret_ref_is_recorded_in_last_error(env: tuple[Kube, Manager], namespace: str) -> None:
    kube, _ = env
    manifest = task_manifest("nosecret", namespace)
    del manifest["spec"]["sourceStore"]["secretRef"]
    await kube.create(COPY_BACKUPS_TASKS, manifest)

    async def errored() -> str | None:
        return ((await get_task(kube, namespace, "nosecret")).get("status") or {}).get("lastError")

    assert (
        await eventually(errored, timeout=30, what="lastError") == "no secretRef is configured for backup source-store"
    )
    assert await kube.get_or_none(JOBS, "nosecret-worker", namespace) is None


@pytest.mark.parametrize(
    "copy_config", [{"etcdAdmissionPolicy": {"allowedLocalStoreHostPathPrefixes": ["/srv/buckets"]}}], indirect=True
)
async def test_finding6_local_store_outside_the_admission_policy_gets_no_job(
    env: tuple[Kube, Manager], namespace: str
) -> None:
    """issue 13, finding 6: a copy task is another way to mount a host directory; the policy refuses it."""
    kube, _ = env
    data = {"hostPath": base64.b64encode(b"/var/lib").decode()}
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dst", "namespace": namespace}, "data": data}
    await kube.create(SECRETS, body)
    manifest = task_manifest("steal", namespace)
    manifest["spec"]["targetStore"]["container"] = "kubelet"
    await kube.create(COPY_BACKUPS_TASKS, manifest)

    async def errored() -> str | None:
        return ((await get_task(kube, namespace, "steal")).get("status") or {}).get("lastError")

    error = await eventually(errored, timeout=30, what="lastError")
    assert error == (
        "druid's admission policy forbids: spec.targetStore (secret hostPath): Local store directory /var/lib/kubelet "
        "is not allowed (allowed prefixes: /srv/buckets)"
    )
    assert await kube.get_or_none(JOBS, "steal-worker", namespace) is None


async def test_h55_status_mirrors_job_conditions(env: tuple[Kube, Manager], namespace: str) -> None:
    kube, _ = env
    await local_secret(kube, namespace)
    await kube.create(COPY_BACKUPS_TASKS, task_manifest("ok", namespace))

    async def succeeded() -> Obj | None:
        task = await get_task(kube, namespace, "ok")
        return task if condition(task, "Succeeded").get("status") == "True" else None

    task = await until(succeeded, timeout=60, what="condition Succeeded=True (kwok completes the pod)")
    job = await kube.get(JOBS, "ok-worker", namespace)
    complete = condition(job, "Complete")
    assert condition(task, "Succeeded") == {
        "type": "Succeeded",
        "status": "True",
        "lastTransitionTime": complete["lastTransitionTime"],
        "lastUpdateTime": complete["lastProbeTime"],
        "reason": complete.get("reason", ""),
        "message": complete.get("message", ""),
    }
    assert [x["type"] for x in task["status"]["conditions"]] == ["Succeeded"]  # SuccessCriteriaMet is not mirrored
    assert task["status"]["observedGeneration"] == 1 and "lastError" not in task["status"]


async def test_h55_failed_job(env: tuple[Kube, Manager], namespace: str) -> None:
    """A real Failed Job: a quota of 0 pods keeps the Job from starting, then a 1 s deadline fails it."""
    kube, _ = env
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods", "namespace": namespace}}
    await kube.create(QUOTAS, {**quota, "spec": {"hard": {"pods": "0"}}})
    await local_secret(kube, namespace)
    await kube.create(COPY_BACKUPS_TASKS, task_manifest("fail", namespace))
    await wait_job(kube, namespace, "fail")
    await kube.merge_patch(JOBS, "fail-worker", {"spec": {"activeDeadlineSeconds": 1}}, namespace)

    async def failed() -> Obj | None:
        task = await get_task(kube, namespace, "fail")
        return task if condition(task, "Failed").get("status") == "True" else None

    task = await until(failed, timeout=60, what="condition Failed=True")
    cond = condition(task, "Failed")
    assert cond["reason"] == "DeadlineExceeded"
    job = await kube.get(JOBS, "fail-worker", namespace)
    assert condition(job, "Failed")["lastTransitionTime"] == cond["lastTransitionTime"]
    assert not condition(task, "Succeeded")


async def test_h56_delete_foreground_deletes_job_then_removes_finalizer(
    env: tuple[Kube, Manager], namespace: str
) -> None:
    kube, manager = env
    await local_secret(kube, namespace)
    await kube.create(COPY_BACKUPS_TASKS, task_manifest("gone", namespace))
    await wait_job(kube, namespace, "gone")
    # hold the Job's pod: a foreground-deleted Job then stays (with foregroundDeletion) until the pod is gone
    await eventually(lambda: _hold_pod(kube, namespace, add=True), timeout=30, what="job pod held")
    await eventually(lambda: _has_finalizer(kube, namespace, "gone"), timeout=30, what="task finalizer")
    await kube.delete(COPY_BACKUPS_TASKS, "gone", namespace)

    async def job_deleting() -> Obj | None:
        got = await kube.get(JOBS, "gone-worker", namespace)
        return got if got["metadata"].get("deletionTimestamp") else None

    job = await until(job_deleting, what="job deletion started by druid")
    assert "foregroundDeletion" in job["metadata"]["finalizers"]  # deleted with propagation Foreground
    await eventually(lambda: _idle_having_seen(manager, job), timeout=30, what="druid reconciled the deleting job")
    task = await get_task(kube, namespace, "gone")  # still there: the Job is not gone yet
    assert task["metadata"].get("deletionTimestamp") and task["metadata"]["finalizers"] == [c.FINALIZER_ETCD]
    assert (await kube.get(JOBS, "gone-worker", namespace))["metadata"]["uid"] == job["metadata"]["uid"]
    # release the pod: the Job goes, then druid removes its finalizer and the task goes
    await eventually(lambda: _hold_pod(kube, namespace, add=False), timeout=30, what="job pod released")

    async def both_gone() -> bool:
        job = await kube.get_or_none(JOBS, "gone-worker", namespace)
        task = await kube.get_or_none(COPY_BACKUPS_TASKS, "gone", namespace)
        return job is None and task is None

    await eventually(both_gone, timeout=60, what="job and task gone")


async def _idle_having_seen(manager: Manager, job: Obj) -> bool:
    """The controller's Job cache shows ``job`` being deleted and its queue and workers are idle: the reconcile
    that event caused has finished (the informer updates its store before it enqueues)."""
    cached = manager.controllers[0].reconciler.jobs.cached(ObjectKey.of(job))  # type: ignore[attr-defined]
    if cached is None or not cached["metadata"].get("deletionTimestamp"):
        return False
    labels = {"controller": CONTROLLER_NAME}
    depth = sum(
        s.value
        for m in manager.registry.collect()
        for s in m.samples
        if s.name == "workqueue_depth" and s.labels.get("controller") == CONTROLLER_NAME
    )
    return depth == 0 and not manager.registry.get_sample_value("controller_runtime_active_workers", labels)


async def _hold_pod(kube: Kube, namespace: str, *, add: bool) -> bool:
    pods = (await kube.list(PODS, namespace, label_selector="batch.kubernetes.io/job-name=gone-worker"))["items"]
    if not pods:
        return False
    meta = pods[0]["metadata"]
    finalizers = [f for f in meta.get("finalizers") or () if f != HOLD] + ([HOLD] if add else [])
    body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
    await kube.merge_patch(PODS, meta["name"], body, namespace)
    return True


async def _has_finalizer(kube: Kube, namespace: str, name: str) -> bool:
    return c.FINALIZER_ETCD in ((await get_task(kube, namespace, name))["metadata"].get("finalizers") or ())
