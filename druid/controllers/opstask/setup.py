"""Wiring the EtcdOpsTask controller (upstream ``etcdopstask/register.go``).

``etcdopstask-controller``: ``controllers.etcdOpsTask.concurrentSyncs`` workers; per-item exponential backoff
10 ms → ``requeueInterval``; primary kind EtcdOpsTask with the generation-changed predicate (deletion bumps the
generation, so a user's delete is seen at once). ``backup_restore_endpoint`` replaces the in-cluster URL of an
Etcd's backup-restore server (tests use a fake on 127.0.0.1).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.config.operator import OperatorConfiguration
from druid.controllers.opstask.handlers import (
    BackupRestoreEndpoint,
    HandlerDeps,
    HandlerRegistry,
    default_backup_restore_endpoint,
    default_registry,
)
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
    backup_restore_endpoint: BackupRestoreEndpoint | None = None,
    handlers: HandlerRegistry | None = None,
    registry: CollectorRegistry | None = None,
    namespace: str | None = None,
) -> Controller:
    """The controller on ``informers`` (``namespace``: confined to one namespace)."""
    cfg = config.controllers.etcd_ops_task
    deps = HandlerDeps(kube, backup_restore_endpoint or default_backup_restore_endpoint)
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
    backup_restore_endpoint: BackupRestoreEndpoint | None = None,
) -> Controller:
    """Build the controller on the manager's informers and add it to the manager."""
    controller = make_ops_task_controller(
        manager.kube,
        manager.informers,
        config,
        backup_restore_endpoint=backup_restore_endpoint,
        registry=manager.registry,
    )
    manager.add(controller)
    return controller
