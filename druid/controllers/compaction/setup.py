"""Wiring the compaction controller (upstream ``compaction/register.go``).

``compaction-controller``: ``controllers.compaction.concurrentSyncs`` workers, controller-runtime's default rate
limiter, primary kind Etcd, owned Leases and Jobs, every event through the filter of ``predicates.py``; no
periodic requeue. Druid caches only what it reads: snapshot Leases (label
``app.kubernetes.io/component=etcd-snapshot-lease``) and compaction Jobs (``...=etcd-snapshot-compaction-job``);
the Etcd informer is the one shared with the Etcd controller.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.backuprestore import BackupRestoreClient, Endpoint, service_endpoint
from druid.components.base import BuildOptions
from druid.components.options import build_options as components_options
from druid.config.operator import OperatorConfiguration
from druid.controllers.compaction.metrics import compaction_metrics
from druid.controllers.compaction.predicates import predicates
from druid.controllers.compaction.reconciler import CompactionReconciler, Deps, Timings, expected_error
from druid.controllers.compaction.status import ETCDS
from druid.runtime.client import Kube
from druid.runtime.controller import Controller
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.objects import JOBS, LEASES
from druid.runtime.ratelimit import RateLimiter

CONTROLLER_NAME = "compaction-controller"
LEASE_SELECTOR = f"{c.LABEL_COMPONENT}={c.COMPONENT_SNAPSHOT_LEASE}"
JOB_SELECTOR = f"{c.LABEL_COMPONENT}={c.COMPONENT_COMPACTION_JOB}"


def make_compaction_controller(
    kube: Kube,
    informers: InformerFactory,
    config: OperatorConfiguration,
    *,
    backup_restore_endpoint: Endpoint | None = None,
    backup_restore: BackupRestoreClient | None = None,
    build_options: BuildOptions | None = None,
    registry: CollectorRegistry | None = None,
    timings: Timings | None = None,
    rate_limiter: RateLimiter | None = None,
    namespace: str | None = None,
) -> Controller:
    """The compaction controller on ``informers`` (not started), watching ``namespace`` (default: all).

    Raises ``ValueError`` when it is disabled: the thresholds are only defaulted for an enabled controller.
    Full snapshots go through ``backup_restore`` (default: a new client for ``backup_restore_endpoint``, by
    default the client Service); whoever runs the controller closes it (see :func:`add_compaction_controller`).
    """
    cfg = config.controllers.compaction
    if not cfg.enabled or cfg.concurrent_syncs is None:
        raise ValueError("controllers.compaction.enabled is false: the compaction controller must not be added")
    deps = Deps(
        kube=kube,
        config=cfg,
        build_options=build_options or components_options(config),
        jobs=informers.get(JOBS, namespace, JOB_SELECTOR).store,
        leases=informers.get(LEASES, namespace, LEASE_SELECTOR).store,
        metrics=compaction_metrics(registry),
        backup_restore=backup_restore or BackupRestoreClient(backup_restore_endpoint or service_endpoint),
        timings=timings or Timings(),
        admission=config.admission_policy(),
    )
    controller = Controller(
        CONTROLLER_NAME,
        CompactionReconciler(deps),
        informers,
        workers=cfg.concurrent_syncs,
        rate_limiter=rate_limiter,
        registry=registry,
        error_policy=expected_error,
    )
    controller.for_(ETCDS, namespace=namespace, predicate=predicates(ETCDS))
    controller.owns(LEASES, namespace=namespace, label_selector=LEASE_SELECTOR, predicate=predicates(LEASES))
    controller.owns(JOBS, namespace=namespace, label_selector=JOB_SELECTOR, predicate=predicates(JOBS))
    return controller


def add_compaction_controller(
    manager: Manager,
    config: OperatorConfiguration,
    *,
    backup_restore_endpoint: Endpoint | None = None,
    build_options: BuildOptions | None = None,
    timings: Timings | None = None,
    rate_limiter: RateLimiter | None = None,
    namespace: str | None = None,
) -> Controller:
    """Build the compaction controller on the manager's informers and add it to the manager.

    ``backup_restore_endpoint(etcd)`` gives the base URL of an Etcd's backup-restore server (default: the
    client Service, ``backuprestore.service_endpoint``). Only call this when ``controllers.compaction.enabled``.
    The manager closes the backup-restore client's session on shutdown.
    """
    client = BackupRestoreClient(backup_restore_endpoint or service_endpoint)
    controller = make_compaction_controller(
        manager.kube,
        manager.informers,
        config,
        backup_restore=client,
        build_options=build_options,
        registry=manager.registry,
        timings=timings,
        rate_limiter=rate_limiter,
        namespace=namespace,
    )
    manager.add(controller)
    manager.add_leader_task(client.hold_open)
    return controller
