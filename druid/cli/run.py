"""`druid run`: start the operator (manager, servers, informers, leader election, controllers)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import structlog

from druid.runtime import logging as druid_logging
from druid.runtime.client import Kube
from druid.runtime.manager import LeaderElectionOptions, Manager, ManagerOptions

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
log = structlog.get_logger("druid")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="path to an OperatorConfiguration file (config.druid.gardener.cloud/v1alpha1)")
    p.add_argument("--kubeconfig", help="kubeconfig to use (default: $KUBECONFIG, then in-cluster)")
    g = p.add_argument_group("servers")
    g.add_argument("--metrics-bind-address", default="", help="metrics server address (default all interfaces)")
    g.add_argument("--metrics-port", type=int, default=8080, help="metrics server port (0 picks a free port)")
    g.add_argument("--probe-bind-address", default="", help="health probe server address (druid extension)")
    g.add_argument("--probe-port", type=int, default=8081, help="health probe server port: /healthz, /readyz")
    g = p.add_argument_group("leader election")
    g.add_argument("--enable-leader-election", action="store_true", help="run as one of several HA replicas")
    g.add_argument("--leader-election-id", default="druid-leader-election", help="name of the leader Lease")
    g.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the leader Lease (default: $POD_NAMESPACE, then the pod's service-account namespace)",
    )
    g.add_argument("--leader-election-resource-lock", default="leases", choices=["leases"], help="lock kind")
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", default="info", choices=["debug", "info", "error"], help="log level")
    g.add_argument("--log-format", default="json", choices=["json", "text"], help="json (default) or text")


def leader_election_namespace(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE_FILE.read_text().strip()
    except OSError:
        raise SystemExit(
            "druid run: leader election needs a namespace: pass --leader-election-namespace or set POD_NAMESPACE"
        ) from None


def manager_options(args: argparse.Namespace) -> ManagerOptions:
    le = LeaderElectionOptions(enabled=args.enable_leader_election, name=args.leader_election_id)
    if le.enabled:
        le.namespace = leader_election_namespace(args.leader_election_namespace)
    return ManagerOptions(
        metrics_address=args.metrics_bind_address,
        metrics_port=args.metrics_port,
        probe_address=args.probe_bind_address,
        probe_port=args.probe_port,
        leader_election=le,
    )


async def run_manager(args: argparse.Namespace) -> int:
    options = manager_options(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kube = await Kube.connect(args.kubeconfig)
    # Leader election gets its own connection pool so busy controllers never delay a renewal.
    election_kube = await Kube.connect(args.kubeconfig) if options.leader_election.enabled else None
    manager = Manager(kube, options, election_kube=election_kube)
    from druid.controllers import register

    register(manager, args)
    return await manager.run(stop)


def main(args: argparse.Namespace) -> int:
    druid_logging.configure(args.log_level, args.log_format)
    return asyncio.run(run_manager(args))
