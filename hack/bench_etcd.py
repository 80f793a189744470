#!/usr/bin/env python
"""Etcd controller benchmark on the full local control plane (kwok), with `druid run` as a real process.

Each run starts a fresh control plane and a fresh ``druid run`` process, then:

1. prints the machine's load average, and druid's RSS once it is ready (idle: no Etcd yet);
2. creates N Etcds at once (3 replicas, backups to a Local store with the ``secretRef`` Secret carrying
   ``hostPath``, as upstream's samples do) and times until every Etcd has all its children (the objects
   ``druid render`` would build for it, owned by it), ``status.observedGeneration == metadata.generation``
   and lastOperation Reconcile/Succeeded — the convergence time; druid's CPU seconds (utime + stime from
   ``/proc/<pid>/stat``) from the first create until then, per Etcd, and its RSS at that moment;
3. waits until every StatefulSet is ready and every Etcd's status mirrors it (readyReplicas, pods and
   PVCs settled; kwok makes the pods ready), and counts the API writes druid makes in ``--steady-seconds``
   of steady state from druid's own ``rest_client_requests_total`` (POST/PUT/PATCH/DELETE); RSS then
   ("settled").

With ``--repeat K`` every N is run K times; the summary gives min and median of each figure. Wall-clock
figures depend on what else runs on the machine (the API server, etcd and kwok share its cores with druid):
compare CPU seconds, and read the load averages printed before each run.

``--druid-src DIR`` runs another checkout's druid (e.g. ``git archive main | tar -x -C DIR``) with this
benchmark, for paired before/after runs. ``--profile DIR`` records each run's convergence with py-spy
(when installed) as DIR/profile-N-K.txt (collapsed stacks) and prints the top frames.

Usage: .venv/bin/python hack/bench_etcd.py [-n 200] [-n 1000] [--repeat 3] [--steady-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from druid.api.etcd import Etcd
from druid.api.resources import ETCDS
from druid.components import registry
from druid.components.options import build_options
from druid.runtime.client import Kube
from druid.runtime.objects import NAMESPACES, SECRETS, STATEFULSETS, Obj, ResourceRef, controller_owner
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.crds import install_crds
from druid.testing.kube import make_api_client

NS = "bench"
REPLICAS = 3
STORE_SECRET = "etcd-backup-local"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def etcd(i: int) -> Obj:
    name = f"etcd-{i:04d}"
    return {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": REPLICAS,
            "labels": {"app": name},
            "etcd": {},
            "backup": {
                "store": {
                    "provider": "Local",
                    "container": name,
                    "prefix": f"{NS}--{name}",
                    "secretRef": {"name": STORE_SECRET},
                },
                "fullSnapshotSchedule": "0 */1 * * *",
                "deltaSnapshotPeriod": "5m",
            },
            "storageCapacity": "1Gi",
        },
    }


def store_secret() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": STORE_SECRET, "namespace": NS},
        "data": {"hostPath": base64.b64encode(b"/etc/gardener/local-backupbuckets").decode()},
    }


def expected_children() -> Counter[ResourceRef]:
    """How many objects of each resource one bench Etcd gets (what `druid render` builds for it)."""
    obj = etcd(0)
    obj["metadata"]["uid"] = "bench"
    built = registry.desired_objects(Etcd.model_validate(obj), build_options(), backup_host_path="/x")
    out: Counter[ResourceRef] = Counter()
    for kind, objs in built.items():
        out[registry.component(kind).resource] += len(objs)
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def requests(metrics_port: int) -> Counter[str]:
    """druid's API requests so far by method, from its ``rest_client_requests_total``."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Counter[str] = Counter()
    for m in re.finditer(r"^rest_client_requests_total\{([^}]*)\} (\S+)$", text, re.M):
        method = re.search(r'method="([A-Z]+)"', m.group(1))
        if method:
            out[method.group(1)] += int(float(m.group(2)))
    return out


def writes(metrics_port: int) -> float:
    return sum(v for k, v in requests(metrics_port).items() if k in WRITES)


async def create_all(kube: Kube, indices: range) -> None:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await kube.create(ETCDS, etcd(i), NS)

    await asyncio.gather(*(one(i) for i in indices))


def converged(e: Obj) -> bool:
    status = e.get("status") or {}
    return status.get("observedGeneration") == e["metadata"].get("generation") and (
        (status.get("lastOperation") or {}).get("state") == "Succeeded"
    )


async def children_complete(kube: Kube, n: int, want: Counter[ResourceRef]) -> bool:
    for res, count in want.items():
        owners: Counter[str] = Counter()
        for o in (await kube.list(res, NS)).get("items") or []:
            owner = controller_owner(o)
            if owner is not None and owner.get("kind") == "Etcd":
                owners[owner["name"]] += 1
        if sum(1 for c in owners.values() if c >= count) < n:
            return False
    return True


async def wait_converged(kube: Kube, n: int, want: Counter[ResourceRef], timeout: float) -> None:
    deadline, interval = time.monotonic() + timeout, 0.5 if n <= 300 else 1.0
    done = 0
    while time.monotonic() < deadline:
        items = (await kube.list(ETCDS, NS))["items"]
        done = sum(1 for e in items if converged(e))
        if done >= n and await children_complete(kube, n, want):
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"only {done}/{n} Etcds converged after {timeout}s")


async def wait_settled(kube: Kube, n: int, timeout: float) -> float:
    """Until every StatefulSet is ready and every Etcd's status says so."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        stss = (await kube.list(STATEFULSETS, NS))["items"]
        etcds = (await kube.list(ETCDS, NS))["items"]
        sts_ready = sum(1 for s in stss if (s.get("status") or {}).get("readyReplicas") == REPLICAS)
        etcd_ready = sum(1 for e in etcds if (e.get("status") or {}).get("readyReplicas") == REPLICAS)
        if sts_ready >= n and etcd_ready >= n:
            return time.monotonic() - t0
        await asyncio.sleep(2)
    raise TimeoutError("StatefulSets / Etcd statuses did not settle")


@dataclass
class Run:
    n: int
    load: tuple[float, float, float]
    rss_idle: float = 0.0
    converge_s: float = 0.0
    cpu_s: float = 0.0
    rss_converged: float = 0.0
    settle_s: float = 0.0
    rss_settled: float = 0.0
    steady_writes: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)  # until convergence, by method
    profile: list[str] = field(default_factory=list)

    @property
    def cpu_per_etcd_ms(self) -> float:
        return 1000 * self.cpu_s / self.n


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def one_run(cp: ControlPlane, n: int, a: argparse.Namespace, tag: str) -> Run:
    api = await make_api_client(str(cp.kubeconfig))
    async with api:
        await install_crds(api)
    want = expected_children()
    metrics_port, probe_port = free_port(), free_port()
    argv = [sys.executable, "-m", "druid.cli.main", "run", "--metrics-bind-address", LOOPBACK]
    argv += ["--metrics-port", str(metrics_port), "--probe-bind-address", LOOPBACK, "--probe-port", str(probe_port)]
    env = cp.env()
    if a.druid_src:
        env["PYTHONPATH"] = str(Path(a.druid_src).resolve())
    log = cp.workdir / "logs" / "druid.log"
    druid = subprocess.Popen(
        [*argv, "--log-level", "error"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=cp.workdir
    )
    spy: subprocess.Popen[bytes] | None = None
    run = Run(n, os.getloadavg())
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: urllib.request.urlopen(f"http://{LOOPBACK}:{probe_port}/readyz").status == 200,
            60,
            "druid ready",
        )
        await asyncio.sleep(2)
        run.rss_idle = rss_mib(druid.pid)
        async with await Kube.connect(str(cp.kubeconfig), timeout=120) as kube:
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            await kube.create(SECRETS, store_secret(), NS)
            profile = Path(a.profile) / f"profile-{tag}.txt" if a.profile else None
            if profile is not None and (exe := _py_spy()):
                profile.parent.mkdir(parents=True, exist_ok=True)
                spy = subprocess.Popen(
                    [exe, "record", "-r", "50", "-f", "raw", "-o", str(profile), "--pid", str(druid.pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(1)
            req0, cpu0, t0 = requests(metrics_port), cpu_seconds(druid.pid), time.monotonic()
            await create_all(kube, range(n))
            await wait_converged(kube, n, want, a.timeout)
            run.converge_s, run.cpu_s = time.monotonic() - t0, cpu_seconds(druid.pid) - cpu0
            run.rss_converged = rss_mib(druid.pid)
            run.requests = requests(metrics_port) - req0
            print(
                f"  [N={n} converged {run.converge_s:.1f} s, CPU {run.cpu_s:.2f} s, RSS {run.rss_converged:.0f} MiB]",
                flush=True,
            )
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
                if profile is not None and profile.exists():
                    run.profile = top_frames(profile)
            if a.steady_seconds > 0:
                run.settle_s = await wait_settled(kube, n, a.timeout)
                await asyncio.sleep(a.settle_extra)  # one status sync period and then some
                before = writes(metrics_port)
                await asyncio.sleep(a.steady_seconds)
                run.steady_writes = writes(metrics_port) - before
            run.rss_settled = rss_mib(druid.pid)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        druid.terminate()
        druid.wait(60)
    return run


def top_frames(profile: Path, limit: int = 25) -> list[str]:
    """Inclusive sample share of the busiest druid/library functions in a py-spy raw (collapsed) profile."""
    total, inclusive = 0, Counter[str]()
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(count)
    return [f"{100 * c / max(total, 1):5.1f}%  {f}" for f, c in inclusive.most_common(limit)]


def show(run: Run) -> None:
    print(
        f"  N={run.n} load {run.load[0]:.2f}/{run.load[1]:.2f}/{run.load[2]:.2f}: converged {run.converge_s:.1f} s, "
        f"CPU {run.cpu_s:.2f} s ({run.cpu_per_etcd_ms:.1f} ms/Etcd), RSS idle {run.rss_idle:.0f} / converged "
        f"{run.rss_converged:.0f} / settled {run.rss_settled:.0f} MiB, settle {run.settle_s:.1f} s, "
        f"steady writes {run.steady_writes:.0f}; requests per Etcd until convergence: "
        + ", ".join(f"{m} {c / run.n:.1f}" for m, c in sorted(run.requests.items())),
        flush=True,
    )


def summary(runs: list[Run], steady: float) -> None:
    def mm(values: list[float], fmt: str) -> str:
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    print(f"\nN = {runs[0].n}, {len(runs)} run(s); min / median")
    print("  load average (1 min) before: " + ", ".join(f"{r.load[0]:.2f}" for r in runs))
    print(f"  convergence time       {mm([r.converge_s for r in runs], '{:.1f}')} s")
    print(f"  operator CPU           {mm([r.cpu_s for r in runs], '{:.2f}')} s")
    print(f"  CPU per Etcd           {mm([r.cpu_per_etcd_ms for r in runs], '{:.1f}')} ms")
    print(f"  RSS idle               {mm([r.rss_idle for r in runs], '{:.0f}')} MiB")
    print(f"  RSS at convergence     {mm([r.rss_converged for r in runs], '{:.0f}')} MiB")
    print(f"  RSS settled            {mm([r.rss_settled for r in runs], '{:.0f}')} MiB")
    if steady > 0:
        print(f"  writes in {steady:.0f} s steady  {mm([r.steady_writes for r in runs], '{:.0f}')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--etcds", type=int, action="append", help="number of Etcds (repeatable; default 200)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--steady-seconds", type=float, default=120, help="steady-state window (0: skip settling)")
    p.add_argument("--settle-extra", type=float, default=20, help="wait after settling before the window")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--druid-src", help="run the druid package found in this directory instead")
    p.add_argument("--profile", help="record each convergence with py-spy into this directory")
    a = p.parse_args()
    results: dict[int, list[Run]] = {}
    for n in a.etcds or [200]:
        for k in range(a.repeat):
            with ControlPlane(mode="full") as cp:
                run = asyncio.run(one_run(cp, n, a, f"{n}-{k}"))
            show(run)
            for line in run.profile:
                print("    " + line)
            results.setdefault(n, []).append(run)
    for runs in results.values():
        summary(runs, a.steady_seconds)


if __name__ == "__main__":
    main()
