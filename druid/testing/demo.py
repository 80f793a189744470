"""The local demo behind README's first command.

Brings up the full local control plane, installs druid's CRDs, runs ``druid run`` against it and
applies a sample Etcd. Runs until Ctrl-C (or ``--exit-after`` seconds), then tears everything down.
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

import yaml
from kubernetes_asyncio import client

from druid.runtime import patch
from druid.testing.binaries import REPO
from druid.testing.controlplane import LOOPBACK, ControlPlane, free_port, wait_until
from druid.testing.crds import install_crds
from druid.testing.wait import eventually

DEFAULT_SAMPLE = REPO / "manifests" / "samples" / "etcd-single.yaml"


async def _setup(cp: ControlPlane, sample: Path) -> tuple[str, str]:
    from kubernetes_asyncio import config

    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api:
        crds = await install_crds(api)
        print(f"installed CRDs: {', '.join(crds)}", flush=True)
        body = yaml.safe_load(sample.read_text())
        meta = body["metadata"]
        ns, name = meta.setdefault("namespace", "default"), meta["name"]
        co = client.CustomObjectsApi(api)
        await co.patch_namespaced_custom_object(
            "druid.gardener.cloud",
            "v1alpha1",
            ns,
            "etcds",
            name,
            body,
            **patch.apply("druid-demo"),
        )

        async def exists() -> bool:
            await co.get_namespaced_custom_object("druid.gardener.cloud", "v1alpha1", ns, "etcds", name)
            return True

        await eventually(exists, timeout=10, what=f"Etcd {ns}/{name}")
        print(f"applied sample Etcd {ns}/{name} from {sample}", flush=True)
        return ns, name


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/readyz", timeout=2) as resp:
        return bool(resp.status == 200)


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
        cp.start()
        print(f"control plane ready in {cp.startup_seconds['full']:.1f}s; KUBECONFIG={cp.kubeconfig}", flush=True)
        if args.kubeconfig_out:
            shutil.copyfile(cp.kubeconfig, args.kubeconfig_out)
        druid_log = cp.workdir / "logs" / "druid.log"
        metrics_port, probe_port = free_port(), free_port()
        druid = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "druid.cli.main",
                "run",
                "--metrics-bind-address",
                LOOPBACK,
                "--metrics-port",
                str(metrics_port),
                "--probe-bind-address",
                LOOPBACK,
                "--probe-port",
                str(probe_port),
            ],
            env=cp.env(),
            stdout=druid_log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        print(f"druid running (pid {druid.pid}), log: {druid_log}", flush=True)
        asyncio.run(_setup(cp, args.sample))
        wait_until(lambda: _ready(probe_port), 60, "druid /readyz")
        print(f"druid ready: http://{LOOPBACK}:{probe_port}/readyz, metrics http://{LOOPBACK}:{metrics_port}/metrics")
        print("demo up; press Ctrl-C to stop", flush=True)
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while deadline is None or time.monotonic() < deadline:
            if druid.poll() is not None:
                print(f"druid exited with {druid.returncode}; see {druid_log}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        return 0
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
