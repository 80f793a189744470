"""`druid run`: start the operator (manager, servers, informers, leader election, controllers).

The effective :class:`~druid.config.operator.OperatorConfiguration` comes from ``--config`` when
given, else from etcd-druid's deprecated flags (ignored when ``--config`` is set, as upstream). It is
validated before anything connects to the cluster: an invalid one prints
``druid run: invalid configuration: <field path>: <message>`` and exits 2. Every other start-up problem
also exits 2 with one line naming the flag or file instead of a traceback: a probe port that is no TCP
port, a kubeconfig that cannot be loaded, webhook certificates that cannot be read. Unknown flags are
ignored.

Druid's own flags, honoured with either source: ``--kubeconfig``, ``--probe-bind-address``,
``--probe-port``, ``--leader-election-namespace``, and ``--log-level`` / ``--log-format`` (when given
they override ``logging``).

``clientConnection.qps``/``burst`` become a token bucket per API connection (qps < 0: none);
``contentType`` / ``acceptContentTypes`` are accepted but not applied (druid always speaks JSON).
Unlike upstream, druid does not sleep 10 s before registering controllers.

SIGTERM/SIGINT stop druid in order (``druid.runtime.manager``); if that has not finished within
``ManagerOptions.shutdown_deadline`` (35 s, below the Deployment's 40 s grace period) or a second signal
arrives, druid exits at once with 1 (``druid.runtime.shutdown``).

The operator runs on uvloop's event loop: its TLS transport and scheduling cost a fraction of the standard
loop's, which is most of what druid spends per API request (see README, Benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import structlog
import uvloop

from druid.config import ConfigError, OperatorConfiguration, flags, from_deprecated_flags, read, validate
from druid.config.servers import metrics_listen
from druid.config.validation import port_problem
from druid.runtime import logging as druid_logging
from druid.runtime.client import Kube, PerResourceLimits, in_cluster, kubeconfig_path
from druid.runtime.manager import LeaderElectionOptions, Manager, ManagerOptions
from druid.runtime.shutdown import ShutdownGuard

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
EXIT_STARTUP = 2
log = structlog.get_logger("druid")


class StartupError(Exception):
    """A start-up problem the user must fix; its text names the flag or file (printed as one line, exit 2)."""


def kubeconfig_source(kubeconfig: str | None) -> str:
    """What druid will load its client configuration from, for messages; :class:`StartupError` when a named
    kubeconfig file is missing."""
    path = kubeconfig_path(kubeconfig)
    if path and not os.path.isfile(path):
        raise StartupError(f"cannot load kubeconfig {path}: no such file")
    if in_cluster(kubeconfig):
        return "the in-cluster configuration"
    return f"kubeconfig {path}" if path else "the default kubeconfig (~/.kube/config)"


async def connect(kubeconfig: str | None, cfg: OperatorConfiguration, source: str) -> Kube:
    """A client from ``kubeconfig`` (see :func:`~druid.runtime.client.load_configuration`), or :class:`StartupError`."""
    try:
        return await Kube.connect(kubeconfig, limiter=limiter(cfg))
    except Exception as e:  # the kubeconfig loader raises whatever its parsing hit; each is a bad kubeconfig
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StartupError(f"cannot load {source}: {detail}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.allow_abbrev = False  # pflag has no abbreviations: an unknown --etcd-work must not become --etcd-workers
    p.add_argument("--version", action="store_true", default=argparse.SUPPRESS, help="print the version and exit")
    p.add_argument("--config", help="path to an OperatorConfiguration file (config.druid.gardener.cloud/v1alpha1)")
    p.add_argument("--kubeconfig", help="kubeconfig to use (default: $KUBECONFIG, then in-cluster)")
    g = p.add_argument_group("druid")
    g.add_argument("--probe-bind-address", default="", help="health probe server address (default all interfaces)")
    g.add_argument("--probe-port", type=flags.go_int, default=8081, help="health probes /healthz, /readyz (0: any)")
    g.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the leader Lease (default: $POD_NAMESPACE, then the pod's service-account namespace)",
    )
    g.add_argument("--log-level", default=None, choices=["debug", "info", "error"], help="overrides logging.logLevel")
    g.add_argument("--log-format", default=None, choices=["json", "text"], help="overrides logging.logFormat")
    flags.add_deprecated_flags(p)


def resolve_configuration(args: argparse.Namespace) -> tuple[OperatorConfiguration, list[str]]:
    """The validated configuration and deprecation notes; raises :class:`ConfigError`."""
    notes: list[str] = []
    if args.config:
        cfg, notes = read(args.config)
    else:
        cfg = from_deprecated_flags(args)
        errors = validate(cfg)
        if errors:
            raise ConfigError(errors)
    if args.log_level:
        cfg.logging.log_level = args.log_level
    if args.log_format:
        cfg.logging.log_format = args.log_format
    return cfg, notes


def leader_election_namespace(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE_FILE.read_text().strip()
    except OSError:
        raise StartupError(
            "leader election needs a namespace: pass --leader-election-namespace or set POD_NAMESPACE"
        ) from None


def manager_options(cfg: OperatorConfiguration, args: argparse.Namespace) -> ManagerOptions:
    le_cfg = cfg.leader_election
    le = LeaderElectionOptions(enabled=le_cfg.enabled)
    if le.enabled:
        le.namespace = leader_election_namespace(args.leader_election_namespace)
        le.name = le_cfg.resource_name
        le.lease_duration = le_cfg.lease_duration
        le.renew_deadline = le_cfg.renew_deadline
        le.retry_period = le_cfg.retry_period
    metrics_host, metrics_port = metrics_listen(cfg)
    return ManagerOptions(
        metrics_address=metrics_host,
        metrics_port=metrics_port,
        probe_address=args.probe_bind_address,
        probe_port=args.probe_port,
        leader_election=le,
    )


def limiter(cfg: OperatorConfiguration) -> PerResourceLimits | None:
    """``clientConnection`` QPS/burst, one token bucket per resource as etcd-druid's client has; a negative QPS
    disables client-side limiting."""
    cc = cfg.client_connection
    return PerResourceLimits(cc.qps, cc.burst) if cc.qps > 0 and cc.burst > 0 else None


async def run_manager(cfg: OperatorConfiguration, args: argparse.Namespace, source: str) -> int:
    options = manager_options(cfg, args)
    stop = asyncio.Event()
    guard = ShutdownGuard(stop, asyncio.get_running_loop(), options.shutdown_deadline)
    guard.install()
    kube = await connect(args.kubeconfig, cfg, source)
    # Leader election gets its own connection pool (and limiter, like controller-runtime's own
    # clientset) so busy controllers never delay a renewal.
    election_kube = await connect(args.kubeconfig, cfg, source) if options.leader_election.enabled else None
    manager = Manager(kube, options, election_kube=election_kube)
    from druid.controllers import register

    register(manager, cfg)
    from druid.webhook.server import add_webhook

    try:
        add_webhook(manager, cfg)  # only when webhooks.etcdComponentProtection.enabled
    except OSError as e:
        await kube.close()
        if election_kube is not None:
            await election_kube.close()
        cert_dir, client_ca = cfg.server.webhooks.server_cert_dir, cfg.server.webhooks.client_ca_file
        if client_ca is not None and e.filename == client_ca:
            raise StartupError(
                f"cannot serve the component-protection webhook: client CA {client_ca} "
                f"(server.webhooks.clientCAFile): {e.strerror or e}"
            ) from None
        raise StartupError(
            f"cannot serve the component-protection webhook: certificate {cert_dir}/tls.crt with key "
            f"{cert_dir}/tls.key (server.webhooks.serverCertDir): {e.strerror or e}"
        ) from None
    try:
        return await manager.run(stop)
    finally:
        guard.uninstall()


def main(args: argparse.Namespace) -> int:
    try:
        cfg, notes = resolve_configuration(args)
    except ConfigError as e:
        for err in e.errors:
            print(f"druid run: invalid configuration: {err}", file=sys.stderr)
        return EXIT_STARTUP
    if problem := port_problem(args.probe_port):
        print(f"druid run: --probe-port {args.probe_port}: {problem}", file=sys.stderr)
        return EXIT_STARTUP
    druid_logging.configure(cfg.logging.log_level, "text" if cfg.logging.log_format == "text" else "json")
    for note in notes:
        log.warning(note, config=args.config)
    log.info("using operator configuration", source=args.config or "deprecated flags", configuration=cfg.to_dict())
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run_manager(cfg, args, kubeconfig_source(args.kubeconfig)))
    except StartupError as e:
        print(f"druid run: {e}", file=sys.stderr)
        return EXIT_STARTUP
