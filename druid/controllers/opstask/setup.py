"""Wiring the EtcdOpsTask controller (upstream ``etcdopstask/register.go``).

``etcdopstask-controller``: ``controllers.etcdOpsTask.concurrentSyncs`` workers; per-item exponential backoff
10 ms → ``requeueInterval``; primary kind EtcdOpsTask with the generation-changed predicate (deletion bumps the
generation, so a user's delete is seen at once). ``backup_restore_endpoint`` replaces the in-cluster URL of an
Etcd's backup-restore server (tests use a fake on 127.0.0.1).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.backuprestore import BackupRestoreClient, Endpoint, short_service_endpoint
from druid.components.options import build_options as components_options
from druid.config.operator import OperatorConfiguration
from druid.controllers.opstask.handlers import HandlerDeps, HandlerRegistry, default_registry
from druid.controllers.opstask.reconciler import OPS_TASKS, OpsTaskReconciler
from druid.runtime.client import Kube
from druid.runtime.controller import Controller, generation_changed
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.ratelimit import ItemExponentialFailureRateLimiter

CONTROLLER_NAME = "etcdopstask-controller"
RATE_LIMIT_BASE = 0.01


def make_ops_task_controller(
    kube: Kube,
    informers: InformerFactory,
    config: OperatorConfiguration,
    *,
    backup_restore_endpoint: Endpoint | None = None,
    handlers: HandlerRegistry | None = None,
    backup_restore: BackupRestoreClient | None = None,
    registry: CollectorRegistry | None = None,
    namespace: str | None = None,
) -> Controller:
    """The controller on ``informers`` (``namespace``: confined to one namespace).

    Requests go through ``backup_restore`` (default: a new client for ``backup_restore_endpoint``, by default the
    client Service); whoever runs the controller closes it (see :func:`add_ops_task_controller`).
    """
    cfg = config.controllers.etcd_ops_task
    client = backup_restore or BackupRestoreClient(backup_restore_endpoint or short_service_endpoint)
    deps = HandlerDeps(kube, client, components_options(config))
    reconciler = OpsTaskReconciler(kube, deps, handlers or default_registry(), requeue_interval=cfg.requeue_interval)
    controller = Controller(
        CONTROLLER_NAME,
        reconciler,
        informers,
        workers=cfg.concurrent_syncs,
        rate_limiter=ItemExponentialFailureRateLimiter(RATE_LIMIT_BASE, cfg.requeue_interval),
        registry=registry,
    )
    controller.for_(OPS_TASKS, namespace=namespace, predicate=generation_changed)
    return controller


def add_ops_task_controller(
    manager: Manager,
    config: OperatorConfiguration,
    *,
    backup_restore_endpoint: Endpoint | None = None,
) -> Controller:
    """Build the controller on the manager's informers and add it to the manager (which closes its client)."""
    client = BackupRestoreClient(backup_restore_endpoint or short_service_endpoint)
    controller = make_ops_task_controller(
        manager.kube, manager.informers, config, backup_restore=client, registry=manager.registry
    )
    manager.add(controller)
    manager.add_leader_task(client.hold_open)
    return controller
