#!/usr/bin/env python
"""Informer benchmark on a private etcd + kube-apiserver (127.0.0.1).

Creates N ConfigMaps (default 10 000) and measures:
  1. list + watch sync: objects/s from start() until the store is synced (several runs);
  2. memory per cached object: tracemalloc of the store after a sync, and the RSS delta;
  3. watch event throughput: a backlog of N MODIFIED events replayed from the API server's watch
     cache into a reflector (informer-side ceiling), and a live burst of N updates end to end.

Usage: .venv/bin/python hack/bench_informer.py [--objects N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from druid.runtime.client import ApiError, Kube
from druid.runtime.informer import FuncHandler, SharedInformer
from druid.runtime.objects import CONFIGMAPS, NAMESPACES, Obj
from druid.runtime.reflector import Reflector
from druid.runtime.store import Delta, Store
from druid.testing.controlplane import ControlPlane

NS = "bench"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def configmap(i: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "namespace": NS, "labels": {"app": "bench", "shard": str(i % 16)}},
        "data": {"index": str(i), "payload": "x" * 64},
    }


async def for_all(n: int, op: Callable[[int], Awaitable[Any]], concurrency: int = 64) -> float:
    """Run op(0..n-1) with bounded concurrency; returns the elapsed seconds."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await op(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0


async def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.005)


async def sync_once(kube: Kube) -> tuple[float, SharedInformer]:
    informer = SharedInformer(kube, CONFIGMAPS, NS)
    t0 = time.perf_counter()
    informer.start()
    if not await informer.wait_for_sync(120):
        raise TimeoutError("informer did not sync")
    return time.perf_counter() - t0, informer


async def bench(n: int, runs: int) -> None:
    cp = ControlPlane(mode="apiserver")
    await asyncio.to_thread(cp.start)
    try:
        async with await Kube.connect(str(cp.kubeconfig), timeout=30) as kube:
            await run_benchmarks(kube, n, runs)
    finally:
        await asyncio.to_thread(cp.stop)


async def run_benchmarks(kube: Kube, n: int, runs: int) -> None:
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    elapsed = await for_all(n, lambda i: kube.create(CONFIGMAPS, configmap(i)))
    print(f"created {n} ConfigMaps in {elapsed:.1f}s ({n / elapsed:.0f}/s, concurrency 64)")
    sample = (await kube.list(CONFIGMAPS, NS, limit=1))["items"][0]
    print(f"one object: {len(json.dumps(sample))} bytes of JSON as listed (with managedFields)")

    # 2a. RSS growth of the first sync in this process (no tracemalloc overhead; includes what the
    # allocator keeps from transient page buffers)
    gc.collect()
    rss0 = rss_bytes()
    _, informer = await sync_once(kube)
    await informer.stop()
    gc.collect()
    rss = rss_bytes() - rss0
    del informer
    gc.collect()

    # 1. list + watch sync throughput
    times = []
    for _ in range(runs):
        seconds, informer = await sync_once(kube)
        assert len(informer.store) >= n
        times.append(seconds)
        await informer.stop()
    best, median = min(times), statistics.median(times)
    print(
        f"sync (paginated list, 500/page, + store.replace): median {median:.2f}s = {n / median:.0f} objects/s,"
        f" best {best:.2f}s = {n / best:.0f} objects/s over {runs} runs"
    )

    # 2b. memory held by the store (tracemalloc): what stays allocated after a sync, connections closed
    del informer
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _, informer = await sync_once(kube)
    await informer.stop()
    gc.collect()
    cached = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"memory: {cached / n / 1024:.2f} KiB per cached object (tracemalloc: store + indexes,"
        f" {cached / 2**20:.1f} MiB total); RSS grew {rss / 2**20:.1f} MiB on the first sync"
        f" ({rss / n / 1024:.2f} KiB/object)"
    )
    del informer
    gc.collect()

    # 3a. watch throughput from a backlog: list, let N updates happen, then watch from the old RV.
    store, seen = Store(), [0]

    def count(deltas: list[Delta]) -> None:
        seen[0] += len(deltas)

    reflector = Reflector(kube, CONFIGMAPS, store, count, namespace=NS)
    await reflector.list_and_replace("initial")
    elapsed = await for_all(n, lambda i: kube.merge_patch(CONFIGMAPS, f"cm-{i:05d}", {"data": {"v": "2"}}, NS))
    print(f"updated {n} ConfigMaps in {elapsed:.1f}s ({n / elapsed:.0f} writes/s)")
    seen[0] = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(reflector.watch())
    try:
        await wait_for(lambda: seen[0] >= n or task.done(), 120)
        if task.done() and seen[0] < n:
            task.result()  # surfaces Expired if the watch cache no longer held the backlog
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(
            f"watch backlog: {n} MODIFIED events in {seconds:.2f}s = {n / seconds:.0f} events/s"
            f" ({cpu / n * 1e6:.0f} µs CPU/event, store + dispatch included)"
        )
    except ApiError as e:
        print(f"watch backlog: not measured ({e})")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # 3b. live burst end to end: a running informer while N updates are written as fast as possible.
    _, informer = await sync_once(kube)
    updates = [0]
    informer.add_handler(FuncHandler(update=lambda old, new: updates.__setitem__(0, updates[0] + 1)))
    t0 = time.perf_counter()
    elapsed = await for_all(n, lambda i: kube.merge_patch(CONFIGMAPS, f"cm-{i:05d}", {"data": {"v": "3"}}, NS))
    written = time.perf_counter()
    await wait_for(lambda: updates[0] >= n, 120)
    done = time.perf_counter()
    await informer.stop()
    print(
        f"live burst: {n} updates written at {n / elapsed:.0f}/s, all delivered {1000 * (done - written):.1f} ms"
        f" after the last write (polled every 5 ms; {n / (done - t0):.0f} events/s end to end, writer in-process)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(bench(args.objects, args.runs))


if __name__ == "__main__":
    main()
