#!/usr/bin/env python
"""Etcd controller benchmark on the full local control plane (kwok), with `druid run` as a real process.

1. Create N Etcds at once (default 200, 1 replica, no backups) and time until every one has all its
   components and `status.observedGeneration` set (lastOperation Reconcile/Succeeded).
2. druid's RSS with N Etcds, then with M (default 1000) after creating the rest.
3. API writes druid makes during a steady state with nothing changing (default 300 s), from druid's own
   `rest_client_requests_total` (POST/PUT/PATCH/DELETE), with the default 15 s status sync period.

Usage: .venv/bin/python hack/bench_etcd.py [--first 200] [--total 1000] [--steady-seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import NAMESPACES, STATEFULSETS, Obj
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.crds import install_crds
from druid.testing.kube import make_api_client

NS = "bench"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def etcd(i: int) -> Obj:
    return {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "metadata": {"name": f"etcd-{i:04d}", "namespace": NS},
        "spec": {"replicas": 1, "labels": {"app": f"etcd-{i:04d}"}, "etcd": {}, "backup": {}, "storageCapacity": "1Gi"},
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def writes(metrics_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(
        r'^rest_client_requests_total\{code="([^"]*)",host="[^"]*",method="([A-Z]+)"\} (\S+)$', text, re.M
    ):
        if m.group(2) in WRITES:
            out[m.group(2)] = out.get(m.group(2), 0.0) + float(m.group(3))
    return out


async def create_all(kube: Kube, indices: range) -> None:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await kube.create(ETCDS, etcd(i), NS)

    await asyncio.gather(*(one(i) for i in indices))


async def wait_reconciled(kube: Kube, n: int, timeout: float = 1800) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        items = (await kube.list(ETCDS, NS))["items"]
        done = sum(
            1
            for e in items
            if (e.get("status") or {}).get("observedGeneration") == 1
            and ((e.get("status") or {}).get("lastOperation") or {}).get("state") == "Succeeded"
        )
        if done >= n:
            return time.monotonic() - t0
        await asyncio.sleep(1)
    raise TimeoutError(f"only {done}/{n} Etcds reconciled after {timeout}s")


async def wait_settled(kube: Kube, n: int, timeout: float = 1800) -> float:
    """Until every StatefulSet is ready and every Etcd's status says so (pods, PVCs and statuses settled)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        stss = (await kube.list(STATEFULSETS, NS))["items"]
        etcds = (await kube.list(ETCDS, NS))["items"]
        sts_ready = sum(1 for s in stss if (s.get("status") or {}).get("readyReplicas") == 1)
        etcd_ready = sum(1 for e in etcds if (e.get("status") or {}).get("readyReplicas") == 1)
        if sts_ready >= n and etcd_ready >= n:
            await asyncio.sleep(30)  # one more status sync period and then some
            return time.monotonic() - t0
        await asyncio.sleep(2)
    raise TimeoutError("StatefulSets did not settle")


async def bench(cp: ControlPlane, first: int, total: int, steady: float) -> None:
    api = await make_api_client(str(cp.kubeconfig))
    async with api:
        await install_crds(api)
    metrics_port, probe_port = free_port(), free_port()
    argv = [sys.executable, "-m", "druid.cli.main", "run", "--metrics-bind-address", LOOPBACK]
    argv += ["--metrics-port", str(metrics_port), "--probe-bind-address", LOOPBACK, "--probe-port", str(probe_port)]
    log = cp.workdir / "logs" / "druid.log"
    druid = subprocess.Popen(
        [*argv, "--log-level", "error"], env=cp.env(), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: urllib.request.urlopen(f"http://{LOOPBACK}:{probe_port}/readyz").status == 200,
            60,
            "ready",
        )
        print(f"druid RSS idle: {rss_mib(druid.pid):.0f} MiB")
        async with await Kube.connect(str(cp.kubeconfig), timeout=60) as kube:
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            t0 = time.monotonic()
            await create_all(kube, range(first))
            created = time.monotonic() - t0
            took = await wait_reconciled(kube, first)
            print(
                f"{first} Etcds created in {created:.1f}s; all reconciled (components + observedGeneration) "
                f"{created + took:.1f}s after the first create"
            )
            settle = await wait_settled(kube, first)
            print(f"all {first} StatefulSets ready and Etcd statuses mirroring them {settle:.1f}s later")
            print(f"druid RSS with {first} Etcds: {rss_mib(druid.pid):.0f} MiB")
            before = writes(metrics_port)
            await asyncio.sleep(steady)
            after = writes(metrics_port)
            delta = {m: after.get(m, 0) - before.get(m, 0) for m in WRITES}
            print(f"API writes by druid in {steady:.0f}s of steady state with {first} Etcds: {delta}")
            if total > first:
                t0 = time.monotonic()
                await create_all(kube, range(first, total))
                took = await wait_reconciled(kube, total)
                print(f"{total - first} more Etcds reconciled in {time.monotonic() - t0:.1f}s")
                await asyncio.sleep(20)
                print(f"druid RSS with {total} Etcds: {rss_mib(druid.pid):.0f} MiB")
    finally:
        druid.terminate()
        druid.wait(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--first", type=int, default=200)
    p.add_argument("--total", type=int, default=1000)
    p.add_argument("--steady-seconds", type=float, default=300)
    a = p.parse_args()
    with ControlPlane(mode="full") as cp:
        asyncio.run(bench(cp, a.first, a.total, a.steady_seconds))


if __name__ == "__main__":
    main()
