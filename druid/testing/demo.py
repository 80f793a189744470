"""The local demo behind README's first command.

Brings up the full local control plane, installs druid's CRDs, runs ``druid run`` against it, applies a
sample Etcd and waits until druid reports it Ready. Runs until Ctrl-C (or ``--exit-after`` seconds), then
tears everything down.

kwok pods run no containers: there is no etcd and no backup-restore sidecar. The demo therefore renews the
member (and snapshot) Leases the way the sidecar would (``druid.testing.sidecar.LeaseRenewer``); that is
what lets druid's status go Ready. Everything else — the StatefulSet, Services, ConfigMap, Leases, PDB,
RBAC, conditions — is druid's real work against a real API server.
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
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import SECRETS
from druid.testing.binaries import REPO
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.crds import install_crds
from druid.testing.etcds import condition
from druid.testing.kube import make_api_client
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


async def _run(cp: ControlPlane, sample: Path, probe_port: int, exit_after: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
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
            print("demo up; press Ctrl-C to stop", flush=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=exit_after)
            except TimeoutError:
                pass
        finally:
            await renewer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m druid.testing.demo", description=__doc__)
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="Etcd manifest to apply")
    p.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--kubeconfig-out", type=Path, help="copy the admin kubeconfig here")
    args = p.parse_args(argv)

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
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
    except KeyboardInterrupt:
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
