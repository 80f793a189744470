#!/usr/bin/env python3
"""Throughput of WorkQueue add/get/done: N keys through W workers, with and without metrics.

Usage: .venv/bin/python hack/bench_workqueue.py [--keys 10000] [--workers 1 4 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from prometheus_client import CollectorRegistry

from druid.runtime.workqueue import QueueShutDown, WorkQueue


async def run_once(keys: int, workers: int, metrics: bool, readd_every: int) -> float:
    """Seconds per item to push `keys` keys (plus the extra keys workers add) through `workers` workers."""
    queue: WorkQueue[int] = WorkQueue("bench" if metrics else "", registry=CollectorRegistry())
    expected = keys + (len(range(0, keys, readd_every)) if readd_every else 0)
    processed = 0
    finished = asyncio.Event()

    async def worker() -> None:
        nonlocal processed
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            if readd_every and key >= 0 and key % readd_every == 0:
                queue.add(-key - 1)  # one more key, as an owner-enqueue would produce
            processed += 1
            queue.done(key)
            if processed == expected:
                finished.set()
            await asyncio.sleep(0)  # a reconcile yields at least once

    start = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for key in range(keys):
        queue.add(key)
    await finished.wait()
    await queue.shutdown_with_drain()
    await asyncio.gather(*tasks)
    return (time.perf_counter() - start) / expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--readd-every", type=int, default=0, help="every n-th key also adds another key")
    args = parser.parse_args()

    print(f"{args.keys} keys, best of {args.rounds}")
    print(f"{'workers':>7} {'metrics':>7} {'items/s':>10} {'us/item':>8}")
    for workers in args.workers:
        for metrics in (False, True):
            best = min(asyncio.run(run_once(args.keys, workers, metrics, args.readd_every)) for _ in range(args.rounds))
            print(f"{workers:>7} {metrics!s:>7} {1 / best:>10.0f} {best * 1e6:>8.1f}")


if __name__ == "__main__":
    main()
