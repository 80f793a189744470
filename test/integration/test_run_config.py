"""`druid run` processes configured by an OperatorConfiguration file (or the deprecated flags) against
the shared control plane: invalid config fails startup naming the field (L66), leader election uses a
`druid-leader-election` Lease (L67), metrics are served where the configuration says (L68)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from druid.config.operator import API_VERSION
from druid.config.validation import MAX_CONCURRENT_SYNCS
from druid.runtime.client import Kube
from druid.runtime.health import DEFAULT_HEADER_TIMEOUT
from druid.runtime.manager import ManagerOptions
from druid.runtime.objects import LEASES
from druid.testing.controlplane import ControlPlane, free_port
from druid.testing.process import Process
from druid.testing.wait import eventually

HEAD = {"apiVersion": API_VERSION, "kind": "OperatorConfiguration"}
DRUID = [sys.executable, "-m", "druid.cli.main", "run"]
LOOPBACK_PROBES = ["--probe-bind-address", "127.0.0.1", "--probe-port", "0"]

Spawn = Callable[..., Process]


def write_config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({**HEAD, **doc}))
    return path


@pytest.fixture
def spawn(control_plane: ControlPlane, crds: list[str], tmp_path: Path) -> Iterator[Spawn]:
    """Start `druid run <args>` against the shared control plane; every process is stopped afterwards."""
    started: list[Process] = []

    def start(*args: str) -> Process:
        name = f"druid-{len(started)}"
        argv = [*DRUID, "--kubeconfig", str(control_plane.kubeconfig), *LOOPBACK_PROBES, *args]
        proc = Process(name, argv, tmp_path / f"{name}.log")
        started.append(proc)
        proc.start()
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


def test_l66_invalid_config_file_exits_nonzero_naming_the_field(tmp_path: Path) -> None:
    bad = write_config(
        tmp_path,
        {
            "controllers": {"etcd": {"concurrentSyncs": 0}},
            "leaderElection": {"enabled": True, "leaseDuration": "10s", "renewDeadline": "10s"},
            "featureGates": {"UseEtcdWrapper": False},
        },
    )
    # A kubeconfig that cannot be loaded: exiting before any cluster contact is part of the contract.
    argv = [*DRUID, "--config", str(bad), "--kubeconfig", str(tmp_path / "missing-kubeconfig"), "--some-unknown-flag"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    prefix = "druid run: invalid configuration: "
    assert done.stderr.strip().splitlines() == [
        prefix + "leaderElection.leaseDuration: LeaseDuration must be greater than RenewDeadline",
        prefix + "controllers.etcd.concurrentSyncs: must be greater than 0",
        prefix + "featureGates.UseEtcdWrapper: feature UseEtcdWrapper is locked to default value true",
    ]
    # The same rules apply to the deprecated flags when there is no config file.
    argv = [*DRUID, "--kubeconfig", str(tmp_path / "missing-kubeconfig"), "--etcd-workers=0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "druid run: invalid configuration: controllers.etcd.concurrentSyncs: must be greater than 0" in done.stderr


async def test_l67_leader_election_lease_named_druid_leader_election(
    spawn: Spawn, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        {
            "leaderElection": {"enabled": True, "leaseDuration": "20s", "renewDeadline": "12s", "retryPeriod": "1s"},
            "server": {"metrics": {"bindAddress": "127.0.0.1", "port": 0}},
        },
    )
    druid = spawn("--config", str(config), "--leader-election-namespace", namespace)

    async def held_lease() -> dict[str, Any] | None:
        assert druid.alive(), druid.tail()
        lease = await kube.get_or_none(LEASES, "druid-leader-election", namespace)
        return lease if lease and lease.get("spec", {}).get("holderIdentity") else None

    lease = await eventually(held_lease, timeout=60, what=f"Lease {namespace}/druid-leader-election with a holder")
    assert lease["spec"]["leaseDurationSeconds"] == 20  # timings come from the configuration
    # Graceful stop releases the lease (LeaderElectionReleaseOnCancel: true).
    druid.stop()

    async def released() -> bool:
        lease = await kube.get(LEASES, "druid-leader-election", namespace)
        return not lease["spec"].get("holderIdentity")

    await eventually(released, timeout=30, what="the leader Lease to be released")


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as r,
    ):
        return await r.text() if r.status == 200 else ""


@pytest.mark.parametrize("source", ["config", "deprecated-flags"])
async def test_l68_metrics_served_on_configured_port(spawn: Spawn, tmp_path: Path, source: str) -> None:
    port = free_port()
    if source == "config":
        config = write_config(tmp_path, {"server": {"metrics": {"bindAddress": "127.0.0.1", "port": port}}})
        druid = spawn("--config", str(config), "--metrics-port", "1")  # deprecated flag ignored with --config
    else:
        druid = spawn("--metrics-bind-address", "127.0.0.1", "--metrics-port", str(port))

    async def scraped() -> str:
        assert druid.alive(), druid.tail()
        text = await _metrics(port)
        return text if 'controller_runtime_reconcile_total{controller="etcd-controller"' in text else ""

    text = await eventually(scraped, timeout=60, what=f"controller_runtime_reconcile_total on 127.0.0.1:{port}")
    # The etcd controller's workers come from controllers.etcd.concurrentSyncs (default 3).
    assert 'controller_runtime_max_concurrent_reconciles{controller="etcd-controller"} 3.0' in text


def _webhook_config(tmp_path: Path, cert_dir: Path, port: int) -> Path:
    return write_config(
        tmp_path,
        {
            "server": {
                "metrics": {"bindAddress": "127.0.0.1", "port": 0},
                "webhooks": {"bindAddress": "127.0.0.1", "port": port, "serverCertDir": str(cert_dir)},
            },
            "webhooks": {
                "etcdComponentProtection": {
                    "enabled": True,
                    "serviceAccountInfo": {"name": "etcd-druid", "namespace": "druid-system"},
                }
            },
        },
    )


def test_l68_webhook_without_certificates_fails_startup(control_plane: ControlPlane, tmp_path: Path) -> None:
    config = _webhook_config(tmp_path, tmp_path / "no-certs", free_port())
    argv = [*DRUID, "--config", str(config), "--kubeconfig", str(control_plane.kubeconfig), *LOOPBACK_PROBES]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if not x.startswith("{")]  # one line besides the JSON log
    assert line.startswith("druid run: cannot serve the component-protection webhook: certificate "), line
    assert str(tmp_path / "no-certs" / "tls.crt") in line and "serverCertDir" in line


async def test_l68_webhook_served_over_https_at_its_path(
    spawn: Spawn, control_plane: ControlPlane, tmp_path: Path
) -> None:
    cert_dir, ca_pem = control_plane.serving_cert_dir("druid-run-webhook")
    port = free_port()
    druid = spawn("--config", str(_webhook_config(tmp_path, cert_dir, port)))
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca_pem)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"}},
    }

    async def answered() -> dict[str, Any] | None:
        assert druid.alive(), druid.tail()
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.post(f"https://127.0.0.1:{port}/webhooks/etcdcomponents", json=review, ssl=ctx) as r,
            ):
                return dict(await r.json()) if r.status == 200 else None
        except aiohttp.ClientConnectionError:
            return None

    body = await eventually(answered, timeout=60, what="the webhook answering over HTTPS")
    assert body["response"]["uid"] == "u-1" and body["response"]["allowed"] is True

    # A rotated certificate (cert-manager renewing the Secret) is served without a restart.
    assert _served_cn(port, ctx) == "druid-run-webhook"
    renewed, _ = control_plane.serving_cert_dir("druid-run-webhook-renewed")
    for name in ("tls.key", "tls.crt"):
        (cert_dir / name).write_bytes((renewed / name).read_bytes())

    async def renewed_served() -> bool:
        assert druid.alive(), druid.tail()
        return _served_cn(port, ctx) == "druid-run-webhook-renewed"

    await eventually(renewed_served, timeout=60, what="the renewed certificate served")
    assert (await answered() or {}).get("response", {}).get("uid") == "u-1", "still answering"


def _served_cn(port: int, ctx: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        subject = dict(item[0] for item in (tls.getpeercert() or {}).get("subject", ()))
    return str(subject.get("commonName", ""))


async def test_finding9_sigterm_stops_a_busy_druid_within_its_deadline_and_slow_clients_are_cut_off(
    spawn: Spawn, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """issue 13, finding 9: druid at the concurrentSyncs bound, leading, serving — SIGTERM ends it (exit 0,
    lease released) within ManagerOptions.shutdown_deadline; a client sending half a request line to its
    metrics port is disconnected after the header timeout."""
    metrics_port = free_port()
    syncs = {"concurrentSyncs": MAX_CONCURRENT_SYNCS}
    config = write_config(
        tmp_path,
        {
            "leaderElection": {"enabled": True, "leaseDuration": "20s", "renewDeadline": "12s", "retryPeriod": "1s"},
            "server": {"metrics": {"bindAddress": "127.0.0.1", "port": metrics_port}},
            "controllers": {"etcd": syncs, "secret": syncs, "etcdOpsTask": syncs},
        },
    )
    druid = spawn("--config", str(config), "--leader-election-namespace", namespace)

    async def leading() -> bool:
        assert druid.alive(), druid.tail()
        lease = await kube.get_or_none(LEASES, "druid-leader-election", namespace)
        return bool(lease and lease.get("spec", {}).get("holderIdentity"))

    await eventually(leading, timeout=60, what="druid leading")
    text = await eventually(lambda: _metrics(metrics_port), timeout=30, what="metrics")
    assert (
        f'controller_runtime_max_concurrent_reconciles{{controller="etcd-controller"}} {MAX_CONCURRENT_SYNCS}.0' in text
    )

    reader, writer = await asyncio.open_connection("127.0.0.1", metrics_port)
    started = time.monotonic()
    writer.write(b"GET /metr")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), DEFAULT_HEADER_TIMEOUT + 5) == b""
    writer.close()
    assert time.monotonic() - started < DEFAULT_HEADER_TIMEOUT + 5

    started = time.monotonic()
    code = await asyncio.to_thread(druid.terminate, ManagerOptions().shutdown_deadline + 5)
    took = time.monotonic() - started
    print(f"SIGTERM to exit: {took:.2f}s")  # reported with -rP
    assert code == 0, (code, druid.tail())
    assert took <= ManagerOptions().shutdown_deadline, took
    lease = await kube.get(LEASES, "druid-leader-election", namespace)
    assert not lease["spec"].get("holderIdentity")  # an orderly stop: the lease was handed back
