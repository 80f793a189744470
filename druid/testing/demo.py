"""The local demo behind README's first command.

By default (real mode) it brings up the local control plane with a real node (:mod:`druid.testing.node`:
containerd, kubelet, kube-proxy, CoreDNS, locally built images), installs druid's CRDs, runs unmodified
``druid run`` with an image vector pointing at the local images, applies a sample Etcd, waits until druid
reports it Ready — because the real backup-restore sidecar renews the member leases and etcd's pods are
Ready — then writes a key through the client Service with ``etcdctl`` and reads it back, and prints how to
do that yourself and how to ask ``druid status``. druid runs with its ``OrderedMemberUpdate`` gate on
(docs/member-updates.md). Runs until Ctrl-C (or ``--exit-after`` seconds), then tears
everything down and puts the host back.

Where the machine cannot run a node (not root, no overlayfs or netfilter, missing packages) it says why and
exits 2; ``--simulated`` runs the kwok mode instead: pods run no containers, so the demo renews the member
(and snapshot) Leases the way the sidecar would (``druid.testing.sidecar.LeaseRenewer``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from druid.api import constants as c
from druid.config import features
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import SECRETS
from druid.testing.binaries import REPO
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.crds import install_crds
from druid.testing.etcdctl import ClientTLS
from druid.testing.etcds import condition
from druid.testing.kube import make_api_client
from druid.testing.node import node_unsupported
from druid.testing.realcluster import RealCluster, operator_config
from druid.testing.realetcd import etcdctl_for, until, wait_etcd
from druid.testing.samples import tls_secrets
from druid.testing.sidecar import LeaseRenewer
from druid.testing.wait import eventually

DEFAULT_SAMPLE = REPO / "manifests" / "samples" / "etcd-single.yaml"


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/readyz", timeout=2) as resp:
        return bool(resp.status == 200)


async def _apply_sample(kube: Kube, sample: Path) -> dict[str, Any]:
    body = yaml.safe_load(sample.read_text())
    meta = body["metadata"]
    ns = meta.setdefault("namespace", "default")
    refs = yaml.safe_dump(body.get("spec", {}).get("etcd", {}))
    if "clientUrlTls" in refs or "peerUrlTls" in refs:  # the TLS sample: make its Secrets first
        for secret in tls_secrets(meta["name"], ns):
            await kube.apply(SECRETS, secret, field_manager="druid-demo")
    await kube.apply(ETCDS, body, field_manager="druid-demo")
    print(f"applied sample Etcd {ns}/{meta['name']} from {sample}", flush=True)
    return dict(body)


def _stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C/SIGTERM once the demo is up; before that, the signal cancels the demo's task (a
    wait for Ready must not outlast Ctrl-C), which the caller sees as KeyboardInterrupt."""
    stop = asyncio.Event()
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() or task is None:
            return
        stop.set()
        if not getattr(task, "demo_up", False):
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


def _mark_up() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.demo_up = True  # type: ignore[attr-defined]


async def _run(cp: ControlPlane, sample: Path, probe_port: int, exit_after: float | None) -> int:
    stop = _stop_on_signals()
    api = await make_api_client(str(cp.kubeconfig))
    async with api:
        print(f"installed CRDs: {', '.join(await install_crds(api))}", flush=True)
    async with await Kube.connect(str(cp.kubeconfig)) as kube:
        await asyncio.to_thread(wait_until, lambda: _ready(probe_port), 60, "druid /readyz")
        print(f"druid ready: http://{LOOPBACK}:{probe_port}/readyz", flush=True)
        body = await _apply_sample(kube, sample)
        meta, spec = body["metadata"], body["spec"]
        renewer = LeaseRenewer(
            kube,
            meta["name"],
            meta["namespace"],
            replicas=int(spec["replicas"]),
            member_name_prefix=spec.get("memberNamePrefix"),
            tls_enabled="peerUrlTls" in spec.get("etcd", {}),
            snapshot_revisions=(1, 2) if spec.get("backup", {}).get("store") else None,
            interval=2.0,
        )
        renewer.start()
        try:

            async def ready() -> dict[str, Any] | None:
                try:
                    etcd = await kube.get(ETCDS, meta["name"], meta["namespace"])
                except ApiError:
                    return None
                ok = all(
                    condition(etcd, t).get("status") == "True"
                    for t in (c.CONDITION_READY, c.CONDITION_ALL_MEMBERS_READY)
                )
                return etcd if ok else None

            etcd = await eventually(ready, timeout=120, what=f"Etcd {meta['name']} Ready", interval=0.5)
            members = (etcd.get("status") or {}).get("members") or []
            print(
                f"Etcd {meta['namespace']}/{meta['name']} is Ready: {len(members)}/{spec['replicas']} members ready "
                "(leases renewed by the demo in place of the backup-restore sidecar)",
                flush=True,
            )
            _mark_up()
            print("demo up; press Ctrl-C to stop", flush=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=exit_after)
            except TimeoutError:
                pass
        finally:
            await renewer.stop()
    return 0


async def _run_real(cluster: RealCluster, sample: Path, exit_after: float | None) -> int:
    stop = _stop_on_signals()
    async with await Kube.connect(str(cluster.kubeconfig)) as kube:
        body = yaml.safe_load(sample.read_text())
        meta, spec = body["metadata"], body["spec"]
        ns, name = meta.setdefault("namespace", "default"), meta["name"]
        store = (spec.get("backup") or {}).get("store")
        if store and store.get("provider") == "Local" and not store.get("secretRef"):
            # The sample's default host directory would be on the machine; give it a bucket in the workdir.
            container, secret = cluster.bucket(ns, store.get("container"))
            await kube.apply(SECRETS, secret, field_manager="druid-demo")
            store["secretRef"] = {"name": secret["metadata"]["name"]}
            print(f"Local backup bucket: {cluster.bucket_path(secret, container)}", flush=True)
        tls = None
        if "clientUrlTls" in (spec.get("etcd") or {}) or "peerUrlTls" in (spec.get("etcd") or {}):
            secrets = {x["metadata"]["name"]: x for x in tls_secrets(name, ns)}
            for secret in secrets.values():
                await kube.apply(SECRETS, secret, field_manager="druid-demo")
            if "clientUrlTls" in spec["etcd"]:
                tls = ClientTLS.from_secrets(
                    cluster.workdir / "demo-tls", secrets[f"{name}-ca"], secrets[f"{name}-client"]
                )
        await kube.apply(ETCDS, body, field_manager="druid-demo")
        print(f"applied sample Etcd {ns}/{name} from {sample}", flush=True)
        clock = time.monotonic()
        print(
            "waiting for real etcd pods (image start, backup-restore initialization, etcd start: ~20 s for one "
            "member, ~2 min for three)",
            flush=True,
        )
        etcd = await wait_etcd(kube, ns, name, timeout=600)
        members = (etcd.get("status") or {}).get("members") or []
        print(
            f"Etcd {ns}/{name} is Ready: {len(members)}/{spec['replicas']} members ready "
            f"({time.monotonic() - clock:.0f}s; leases renewed by the real backup-restore sidecar)",
            flush=True,
        )
        ctl = await etcdctl_for(kube, cluster.binaries.etcdctl, ns, name, tls=tls)
        await until(lambda: ctl.put("/demo/hello", "world"), timeout=60, what="a write through the Service")
        print(
            f"wrote /demo/hello=world and read back {ctl.get('/demo/hello')!r} through {ctl.endpoints[0]}", flush=True
        )
        flags = ""
        if tls is not None:
            flags = f" --cacert={tls.cacert} --cert={tls.cert} --key={tls.key} --insecure-skip-tls-verify"
        print("try it:", flush=True)
        print(f"  {ctl.binary} --endpoints={ctl.endpoints[0]}{flags} get /demo/hello", flush=True)
        print(f"  {sys.executable} -m druid.cli.main status {ns}/{name} --kubeconfig {cluster.kubeconfig}", flush=True)
        _mark_up()
        print("demo up; press Ctrl-C to stop", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=exit_after)
        except TimeoutError:
            pass
    return 0


def main_real(args: argparse.Namespace) -> int:
    reason = node_unsupported()
    if reason is not None:
        print(
            f"this machine cannot run a real node: {reason}.\n"
            "Run the simulated mode instead (kwok pods, no containers): hack/local-up.sh --simulated",
            file=sys.stderr,
            flush=True,
        )
        return 2
    # Real pods: druid orders member updates itself (docs/member-updates.md).
    cluster = RealCluster(config=operator_config(feature_gates={features.ORDERED_MEMBER_UPDATE: True}))
    try:
        t0 = time.monotonic()
        cluster.start()
        print(
            f"control plane and real node ready in {cluster.timings['cluster']:.1f}s; KUBECONFIG={cluster.kubeconfig}",
            flush=True,
        )
        if args.kubeconfig_out:
            shutil.copyfile(cluster.kubeconfig, args.kubeconfig_out)
        print(f"druid ready: http://{LOOPBACK}:{cluster.probe_port}/readyz (log: {cluster.workdir}/logs/druid.log)")
        code = asyncio.run(_run_real(cluster, args.sample, args.exit_after))
        print(f"demo ran {time.monotonic() - t0:.1f}s", flush=True)
        if cluster.druid is not None and not cluster.druid.alive():
            print(f"druid exited; last lines:\n{cluster.druid.tail()}", file=sys.stderr, flush=True)
            return 1
        return code
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.stop()
        if cluster.host_differences:
            print(f"WARNING: the host still differs: {cluster.host_differences}", file=sys.stderr, flush=True)
        print("demo stopped; node and control plane torn down, host restored", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m druid.testing.demo", description=__doc__)
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="Etcd manifest to apply")
    p.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--kubeconfig-out", type=Path, help="copy the admin kubeconfig here")
    p.add_argument(
        "--simulated", action="store_true", help="kwok pods (no containers; the demo renews the member leases)"
    )
    args = p.parse_args(argv)

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    if not args.simulated:
        return main_real(args)
    cp = ControlPlane(mode="full")
    druid: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        cp.start()
        print(f"control plane ready in {cp.startup_seconds['full']:.1f}s; KUBECONFIG={cp.kubeconfig}", flush=True)
        if args.kubeconfig_out:
            shutil.copyfile(cp.kubeconfig, args.kubeconfig_out)
        druid_log = cp.workdir / "logs" / "druid.log"
        metrics_port, probe_port = free_port(), free_port()
        argv = [sys.executable, "-m", "druid.cli.main", "run", "--metrics-bind-address", LOOPBACK]
        argv += ["--metrics-port", str(metrics_port), "--probe-bind-address", LOOPBACK, "--probe-port", str(probe_port)]
        druid = subprocess.Popen(argv, env=cp.env(), stdout=druid_log.open("ab"), stderr=subprocess.STDOUT)
        print(f"druid running (pid {druid.pid}), log: {druid_log}", flush=True)
        print(f"metrics: http://{LOOPBACK}:{metrics_port}/metrics", flush=True)
        code = asyncio.run(_run(cp, args.sample, probe_port, args.exit_after))
        print(f"demo ran {time.monotonic() - t0:.1f}s", flush=True)
        if druid.poll() is not None:
            print(f"druid exited with {druid.returncode}; see {druid_log}", file=sys.stderr, flush=True)
            return 1
        return code
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if druid is not None and druid.poll() is None:
            druid.terminate()
            try:
                druid.wait(30)
            except subprocess.TimeoutExpired:
                druid.kill()
        cp.stop()
        print("demo stopped; control plane torn down", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
