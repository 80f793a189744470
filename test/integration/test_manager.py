"""The manager against a real API server: readiness follows cache sync, liveness follows the watches,
/metrics carries controller-runtime's series, and an API-server outage is survived."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from druid.runtime import metrics
from druid.runtime.client import Kube
from druid.runtime.controller import Controller, generation_changed
from druid.runtime.manager import Manager, ManagerOptions
from druid.runtime.objects import NAMESPACES, Obj, ObjectKey, ResourceRef
from druid.runtime.reconcile import Action
from druid.runtime.reflector import ReflectorConfig
from druid.testing.controlplane import ControlPlane
from druid.testing.crds import install_crds
from druid.testing.kube import make_api_client
from druid.testing.wait import eventually

pytestmark = pytest.mark.apiserver

ETCDS = ResourceRef("druid.gardener.cloud", "v1alpha1", "etcds", "Etcd")


class EtcdObserver:
    """A read-only reconciler: exercises informer → queue → worker → metrics without writing anything."""

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        return Action.done()


FAST = ReflectorConfig(backoff_initial=0.2, backoff_max=1.0, idle_timeout=10.0, min_watch_timeout=60.0)


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    """Our own etcd + kube-apiserver: these tests stop the API server and install CRDs late."""
    cp = ControlPlane(mode="apiserver")
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@dataclass
class Running:
    manager: Manager
    task: asyncio.Task[int]
    stop: asyncio.Event
    registry: CollectorRegistry

    def url(self, path: str) -> str:
        port = self.manager.metrics_port if path == "/metrics" else self.manager.probe_port
        return f"http://127.0.0.1:{port}{path}"

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.get(self.url(path), timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, await r.text()


async def start_manager(plane: ControlPlane, **options: float) -> Running:
    registry = metrics.add_process_collectors(CollectorRegistry(auto_describe=True))
    kube = await Kube.connect(str(plane.kubeconfig), registry=registry, timeout=5)
    opts = ManagerOptions(metrics_address="127.0.0.1", metrics_port=0, probe_address="127.0.0.1", probe_port=0)
    for k, v in options.items():
        setattr(opts, k, v)
    manager = Manager(kube, opts, registry=registry, reflector_config=FAST)
    manager.add(
        Controller("etcd-observer", EtcdObserver(), manager.informers, registry=registry).for_(
            ETCDS, predicate=generation_changed
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))

    async def serving() -> bool:
        return manager.probe_port is not None and manager.metrics_port is not None

    await eventually(serving, timeout=10, what="manager servers")
    return Running(manager, task, stop, registry)


@pytest.fixture
async def running(plane: ControlPlane) -> AsyncIterator[Running]:
    r = await start_manager(plane, informer_down_threshold=2.0)
    try:
        yield r
    finally:
        r.stop.set()
        assert await asyncio.wait_for(r.task, 30) == 0


def status_is(r: Running, path: str, code: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return (await r.get(path))[0] == code

    return probe


async def test_readyz_is_500_until_caches_sync_then_200(plane: ControlPlane, running: Running) -> None:
    # No CRDs yet: the Etcd informer cannot list, so the manager is alive but not ready.
    await eventually(status_is(running, "/healthz", 200), timeout=10, what="/healthz 200")
    status, body = await running.get("/readyz")
    assert status == 500 and "[-]informer-sync failed" in body

    # Still not ready after the Etcd informer has failed to list twice: nothing syncs without the CRD.
    async def failed_twice() -> bool:
        return all(i.reflector.stats.failures >= 2 for i in running.manager.informers)

    await eventually(failed_twice, timeout=10, what="the informers' lists failing")
    assert (await running.get("/readyz"))[0] == 500
    api = await make_api_client(str(plane.kubeconfig))
    async with api:
        await install_crds(api)
    await eventually(status_is(running, "/readyz", 200), timeout=30, what="/readyz 200")
    assert (await running.get("/readyz?verbose"))[1].splitlines()[-1] == "readyz check passed"


async def test_healthz_fails_when_a_watch_stays_down(plane: ControlPlane, running: Running) -> None:
    api = await make_api_client(str(plane.kubeconfig))
    async with api:
        await install_crds(api)
    await eventually(status_is(running, "/readyz", 200), timeout=30, what="/readyz 200")
    assert (await running.get("/healthz"))[0] == 200
    await asyncio.to_thread(plane.stop_component, "kube-apiserver")  # off the loop: it waits for the exit
    # informer_down_threshold is 2 s here: past it, liveness reports the dead watch.
    await eventually(status_is(running, "/healthz", 500), timeout=30, what="/healthz 500")
    body = (await running.get("/healthz"))[1]
    assert "[-]informers failed: reason withheld" in body
    plane.start_component("kube-apiserver")
    await eventually(status_is(running, "/healthz", 200), timeout=30, what="/healthz 200 again")


EXPECTED_SERIES = [
    r'controller_runtime_reconcile_total\{controller="etcd-observer",result="success"\} [1-9]',
    r'controller_runtime_reconcile_total\{controller="etcd-observer",result="error"\} 0',
    r'controller_runtime_reconcile_total\{controller="etcd-observer",result="requeue"\} 0',
    r'controller_runtime_reconcile_total\{controller="etcd-observer",result="requeue_after"\} 0',
    r'controller_runtime_reconcile_errors_total\{controller="etcd-observer"\} 0',
    r'controller_runtime_reconcile_time_seconds_bucket\{controller="etcd-observer",le="0.005"\}',
    r'controller_runtime_reconcile_time_seconds_count\{controller="etcd-observer"\} [1-9]',
    r'controller_runtime_max_concurrent_reconciles\{controller="etcd-observer"\} 1',
    r'controller_runtime_active_workers\{controller="etcd-observer"\} 0',
    r'workqueue_depth\{controller="etcd-observer",name="etcd-observer",priority=""\} 0',
    r'workqueue_adds_total\{controller="etcd-observer",name="etcd-observer"\} [1-9]',
    r'workqueue_queue_duration_seconds_bucket\{controller="etcd-observer",le="1e-08",name="etcd-observer"\}',
    r'workqueue_work_duration_seconds_count\{controller="etcd-observer",name="etcd-observer"\} [1-9]',
    r'workqueue_retries_total\{controller="etcd-observer",name="etcd-observer"\} 0',
    r'workqueue_unfinished_work_seconds\{controller="etcd-observer",name="etcd-observer"\} 0',
    r'workqueue_longest_running_processor_seconds\{controller="etcd-observer",name="etcd-observer"\} 0',
    r'rest_client_requests_total\{code="200",host="127\.0\.0\.1:\d+",method="GET"\} [1-9]',
    r"process_resident_memory_bytes \d",
    r"process_cpu_seconds_total \d",
]


async def test_metrics_expose_controller_runtime_series(plane: ControlPlane, running: Running) -> None:
    api = await make_api_client(str(plane.kubeconfig))
    async with api:
        await install_crds(api)
        co = client.CustomObjectsApi(api)
        body = {
            "apiVersion": "druid.gardener.cloud/v1alpha1",
            "kind": "Etcd",
            "metadata": {"name": "m"},
            "spec": {"replicas": 1, "labels": {"a": "b"}, "etcd": {}, "backup": {}},
        }
        await co.create_namespaced_custom_object("druid.gardener.cloud", "v1alpha1", "default", "etcds", body)

    async def reconciled() -> bool:
        text = (await running.get("/metrics"))[1]
        return re.search(EXPECTED_SERIES[0], text) is not None

    await eventually(reconciled, timeout=30, what="a successful reconcile in /metrics")
    text = (await running.get("/metrics"))[1]
    missing = [p for p in EXPECTED_SERIES if re.search(p, text) is None]
    assert not missing, f"missing series: {missing}"
    assert "_created" not in text


async def test_outage_process_stays_up_without_spinning_and_resumes(plane: ControlPlane) -> None:
    """Acceptance: API server down for 30 s → the manager keeps running, burns little CPU, reconnects."""
    api = await make_api_client(str(plane.kubeconfig))
    async with api:
        await install_crds(api)
    r = await start_manager(plane)  # default liveness threshold (300 s): an outage is not a reason to restart
    try:
        await eventually(status_is(r, "/readyz", 200), timeout=30, what="/readyz 200")
        await asyncio.to_thread(plane.stop_component, "kube-apiserver")
        cpu0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < 30:
            assert not r.task.done(), "manager exited during the outage"
            assert (await r.get("/healthz"))[0] == 200
            await asyncio.sleep(1)
        cpu = time.process_time() - cpu0
        # The whole test process (manager, probes, this loop) used little CPU: no busy reconnect loop.
        assert cpu < 3.0, f"{cpu:.2f}s of CPU during a 30 s outage"
        plane.start_component("kube-apiserver")
        kube = await Kube.connect(str(plane.kubeconfig))
        async with kube:
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "after"}})
        api = await make_api_client(str(plane.kubeconfig))
        async with api:
            co = client.CustomObjectsApi(api)
            body = {
                "apiVersion": "druid.gardener.cloud/v1alpha1",
                "kind": "Etcd",
                "metadata": {"name": "after-outage"},
                "spec": {"replicas": 1, "labels": {"a": "b"}, "etcd": {}, "backup": {}},
            }
            await co.create_namespaced_custom_object("druid.gardener.cloud", "v1alpha1", "after", "etcds", body)

        async def seen() -> bool:
            return r.manager.controllers[0].primary.store.get(("after", "after-outage")) is not None

        await eventually(seen, timeout=30, what="the Etcd created after the outage in the cache")
        print(f"outage: {cpu:.2f}s CPU over 30 s")
    finally:
        r.stop.set()
        assert await asyncio.wait_for(r.task, 30) == 0
