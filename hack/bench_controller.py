#!/usr/bin/env python
"""Reconcile throughput of a no-op controller over N keys (default 10 000) on a private API server.

Creates N ConfigMaps, then starts a controller whose reconciler does nothing, and measures the time
from worker start until every key has been reconciled once (cache already synced, so this is the
informer → workqueue → worker → reconcile → metrics path alone). Prints keys/s per worker count.

Usage: .venv/bin/python hack/bench_controller.py [--objects N] [--workers 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import structlog
from prometheus_client import CollectorRegistry

from druid.runtime.client import Kube
from druid.runtime.controller import Controller
from druid.runtime.informer import InformerFactory
from druid.runtime.objects import CONFIGMAPS, NAMESPACES, Obj, ObjectKey
from druid.runtime.reconcile import Action
from druid.testing.controlplane import ControlPlane

NS = "bench"


class NoOp:
    def __init__(self, total: int) -> None:
        self.total = total
        self.seen: set[ObjectKey] = set()
        self.all_done = asyncio.Event()

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        self.seen.add(key)
        if len(self.seen) >= self.total:
            self.all_done.set()
        return Action.done()


async def create_objects(kube: Kube, n: int) -> None:
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}"}, "data": {"i": str(i)}}
            await kube.create(CONFIGMAPS, body, NS)

    await asyncio.gather(*(one(i) for i in range(n)))


async def measure(kube: Kube, n: int, workers: int) -> float:
    registry = CollectorRegistry()
    informers = InformerFactory(kube, registry=registry)
    reconciler = NoOp(n)
    ctrl = Controller(f"bench-{workers}", reconciler, informers, workers=workers, registry=registry).for_(
        CONFIGMAPS, namespace=NS
    )
    informers.start_all()
    assert await informers.wait_for_cache_sync(120)
    assert len(ctrl.queue) == n, f"expected {n} queued keys, got {len(ctrl.queue)}"
    t0 = time.perf_counter()
    ctrl.start()
    await asyncio.wait_for(reconciler.all_done.wait(), 600)
    elapsed = time.perf_counter() - t0
    await ctrl.stop(timeout=10)
    await informers.stop_all()
    return elapsed


async def main(n: int, worker_counts: list[int]) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with ControlPlane(mode="apiserver") as cp:
        async with await Kube.connect(str(cp.kubeconfig), timeout=60) as kube:
            t0 = time.perf_counter()
            await create_objects(kube, n)
            print(f"created {n} ConfigMaps in {time.perf_counter() - t0:.1f}s")
            for w in worker_counts:
                elapsed = await measure(kube, n, w)
                print(f"no-op reconcile of {n} keys with {w:>2} workers: {elapsed:.2f}s = {n / elapsed:,.0f} keys/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--workers", default="1,4,16")
    a = p.parse_args()
    asyncio.run(main(a.objects, [int(x) for x in a.workers.split(",")]))
