"""Waits and look-ups for end-to-end tests against real etcd pods (see :mod:`druid.testing.realcluster`)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from druid.api import constants as c
from druid.api import names
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import LEASES, PODS, SECRETS, SERVICES, Obj, pod_ready
from druid.testing.etcdctl import ClientTLS, Etcdctl, EtcdctlError
from druid.testing.etcds import condition, etcd_manifest
from druid.testing.realcluster import LocalStore, RealCluster
from druid.testing.wait import eventually


def conditions(etcd: Obj) -> dict[str, str]:
    return {x["type"]: x["status"] for x in (etcd.get("status") or {}).get("conditions") or []}


async def wait_etcd(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    timeout: float,
    what: str = "Ready",
    members: int | None = None,
    **want: str,
) -> Obj:
    """Wait until the Etcd's conditions have the wanted statuses (default Ready and AllMembersReady True,
    status.ready true) — and, with ``members``, that many members in its status — and return it."""
    want = want or {c.CONDITION_READY: "True", c.CONDITION_ALL_MEMBERS_READY: "True"}

    async def probe() -> Obj | None:
        etcd = await kube.get(ETCDS, name, namespace)
        if members is not None and len((etcd.get("status") or {}).get("members") or []) != members:
            return None
        conds = conditions(etcd)
        if all(conds.get(t) == s for t, s in want.items()):
            if want.get(c.CONDITION_READY) != "True" or (etcd.get("status") or {}).get("ready"):
                return etcd
        return None

    return await eventually(probe, timeout=timeout, what=f"Etcd {namespace}/{name} {what} {want}", interval=0.5)


async def member_pods(kube: Kube, namespace: str, name: str) -> list[Obj]:
    pods = (await kube.list(PODS, namespace, label_selector=names.selector_string(names.default_labels(name))))["items"]
    return sorted(pods, key=lambda p: p["metadata"]["name"])


async def pod_ips(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["status"]["podIP"]
        for p in await member_pods(kube, namespace, name)
        if p.get("status", {}).get("podIP")
    }


async def client_endpoint(kube: Kube, namespace: str, name: str, port: int = 2379, tls: bool = False) -> str:
    svc = await kube.get(SERVICES, f"{name}-client", namespace)
    return f"{'https' if tls else 'http'}://{svc['spec']['clusterIP']}:{port}"


async def etcdctl_for(
    kube: Kube, binary: Any, namespace: str, name: str, *, tls: ClientTLS | None = None, member: str | None = None
) -> Etcdctl:
    """An etcdctl against the client Service, or against one member's pod address."""
    scheme = "https" if tls else "http"
    if member is None:
        endpoint = await client_endpoint(kube, namespace, name, tls=tls is not None)
    else:
        endpoint = f"{scheme}://{(await pod_ips(kube, namespace, name))[member]}:2379"
    return Etcdctl(binary, (endpoint,), tls)


async def lease_holder(kube: Kube, namespace: str, lease: str) -> str | None:
    got = await kube.get_or_none(LEASES, lease, namespace)
    return None if got is None else (got.get("spec") or {}).get("holderIdentity")


async def until(probe: Any, *, timeout: float, what: str, interval: float = 1.0) -> Any:
    """:func:`eventually` for synchronous probes (etcdctl calls) run in a thread."""

    async def call() -> Any:
        return await asyncio.to_thread(probe)

    return await eventually(call, timeout=timeout, what=what, interval=interval)


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self.t0, 1)


__all__ = [
    "Stopwatch",
    "condition",
    "conditions",
    "etcdctl_for",
    "member_pods",
    "pod_ips",
    "pod_ready",
    "until",
    "wait_etcd",
]


async def on_demand_full_snapshot(kube: Kube, namespace: str, etcd: str, task: str, timeout: float = 120) -> Obj:
    """Create an EtcdOpsTask asking for a full snapshot and wait until it Succeeded (fail fast on Failed/Rejected)."""
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": task, "namespace": namespace},
        "spec": {"etcdName": etcd, "config": {"onDemandSnapshot": {"type": "full"}}},
    }
    await kube.create(ETCD_OPS_TASKS, body)
    return await wait_task(kube, namespace, task, timeout=timeout)


async def wait_task(kube: Kube, namespace: str, task: str, timeout: float) -> Obj:
    async def succeeded() -> Obj | None:
        got = await kube.get(ETCD_OPS_TASKS, task, namespace)
        state = (got.get("status") or {}).get("state")
        if state in ("Failed", "Rejected"):
            raise AssertionError(f"EtcdOpsTask {namespace}/{task} {state}: {got.get('status')}")
        return got if state == "Succeeded" else None

    return await eventually(succeeded, timeout=timeout, what=f"EtcdOpsTask {namespace}/{task} Succeeded", interval=0.5)


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes, MiB (VmRSS from /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status").read().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def pod_pids(pod_uid: str, root: str = "/sys/fs/cgroup/memory/kubepods") -> list[int]:
    """Every process in a pod's cgroup (cgroup v1, kubelet's cgroupfs layout)."""
    found: list[int] = []
    for dirpath, dirs, _files in os.walk(root):
        if os.path.basename(dirpath) == f"pod{pod_uid}":
            for sub, _d, _f in os.walk(dirpath):
                try:
                    found += [int(p) for p in open(os.path.join(sub, "cgroup.procs")).read().split()]
                except OSError:
                    continue
            dirs.clear()
    return sorted(set(found))


async def backed_up_etcd(
    cluster: RealCluster,
    kube: Kube,
    namespace: str,
    name: str,
    replicas: int = 1,
    *,
    timeout: float = 300,
    **backup: Any,
) -> tuple[LocalStore, Etcdctl]:
    """An Etcd backed up to a fresh Local bucket (``backup``: more ``spec.backup`` fields), Ready with all its
    members; returns the bucket and an etcdctl against its client Service."""
    store = cluster.local_store(namespace, f"{namespace}--{name}")
    await kube.create(SECRETS, store.secret)
    await kube.create(ETCDS, etcd_manifest(name, namespace, replicas, backup={"store": store.spec, **backup}))
    await wait_etcd(kube, namespace, name, timeout=timeout, members=replicas)
    return store, await etcdctl_for(kube, cluster.binaries.etcdctl, namespace, name)


async def write_keys(ctl: Etcdctl, n: int, prefix: str = "/e2e/k") -> int:
    """Write ``<prefix>0..n-1`` = ``v0..`` (the first write retried while the Service settles); returns the
    revision after the last write."""
    await until(lambda: ctl.put(f"{prefix}0", "v0"), timeout=30, what=f"a first write through {ctl.endpoints}")
    revision = 0
    for i in range(1, n):
        revision = ctl.put(f"{prefix}{i}", f"v{i}")
    return revision


async def assert_keys(ctl: Etcdctl, n: int, prefix: str = "/e2e/k", timeout: float = 60) -> None:
    """All keys of :func:`write_keys` read back (waiting for the last one first, e.g. on a new member)."""
    last = f"{prefix}{n - 1}"
    await until(lambda: ctl.get(last) == f"v{n - 1}", timeout=timeout, what=f"{last} through {ctl.endpoints}")
    missing = [i for i in range(n) if ctl.get(f"{prefix}{i}") != f"v{i}"]
    assert not missing, f"keys missing or wrong through {ctl.endpoints}: {missing}"


class WriteProbe:
    """Writes a counter every 0.2 s in a thread; remembers the longest time without a successful write and how
    long each successful write took (``latencies``, seconds, etcdctl's process start included)."""

    def __init__(self, ctl: Etcdctl) -> None:
        self.ctl = Etcdctl(ctl.binary, ctl.endpoints, ctl.tls, timeout=3)
        self.stop = threading.Event()
        self.writes = 0
        self.failures = 0
        self.longest_gap = 0.0
        self.latencies: list[float] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        last_ok = time.monotonic()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.ctl.put("/e2e/probe", str(self.writes))
                now = time.monotonic()
                self.latencies.append(now - started)
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                self.writes += 1
            except EtcdctlError:
                self.failures += 1
            self.stop.wait(0.2)
        self.longest_gap = max(self.longest_gap, time.monotonic() - last_ok)

    def summary(self) -> str:
        """``writes ok / failed, p50 / p99 / max write latency, longest gap`` (seconds)."""
        lat = sorted(self.latencies)
        return (
            f"{self.writes} ok / {self.failures} failed, latency p50 {percentile(lat, 50):.3f} / p99 "
            f"{percentile(lat, 99):.3f} / max {max(lat, default=0.0):.3f} s, longest gap {self.longest_gap:.2f} s"
        )


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(int(-(-q * len(ordered) // 100)), 1)  # ceil(q/100 * n), at least the first
    return ordered[min(rank, len(ordered)) - 1]
