"""Wiring the Etcd controller: informers, event mapping, workers and rate limiter (upstream ``register.go``).

``etcd-controller``: ``concurrentSyncs`` workers; per-item exponential backoff 10 ms → ``etcdStatusSyncPeriod``;
primary kind Etcd with upstream's event filter. Druid also watches its StatefulSets, Leases, pods and data PVCs
and the referenced Secrets (see ``predicate.py``, ``caches.py``) so status and secret gating converge quickly.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.backuprestore import BackupRestoreClient
from druid.components.base import BuildOptions
from druid.components.options import build_options as components_options
from druid.config.operator import OperatorConfiguration
from druid.controllers.etcd import predicate
from druid.controllers.etcd.caches import MANAGED_KINDS, CacheSource
from druid.controllers.etcd.context import CONTROLLER_NAME, DELETE_RETRY_INTERVAL, SYNC_RETRY_INTERVAL, Deps
from druid.controllers.etcd.drift import drift_counter
from druid.controllers.etcd.operation import ETCDS
from druid.controllers.etcd.reconciler import EtcdReconciler
from druid.controllers.etcd.secrets import ensure_index, etcds_referencing
from druid.controllers.etcd.status import MemberThresholds
from druid.runtime.client import Kube
from druid.runtime.controller import Controller, Predicates, never
from druid.runtime.events import EventRecorder
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.objects import LEASES, PODS, PVCS, SECRETS, STATEFULSETS, Obj, ObjectKey
from druid.runtime.ratelimit import ItemExponentialFailureRateLimiter

RATE_LIMIT_BASE = 0.01


def make_etcd_controller(
    kube: Kube,
    informers: InformerFactory,
    config: OperatorConfiguration,
    *,
    build_options: BuildOptions | None = None,
    registry: CollectorRegistry | None = None,
    sync_retry_interval: float = SYNC_RETRY_INTERVAL,
    delete_retry_interval: float = DELETE_RETRY_INTERVAL,
    namespace: str | None = None,
    backup_restore: BackupRestoreClient | None = None,
) -> Controller:
    """The Etcd controller on ``informers`` (not started; ``Controller.start()`` runs its workers).

    ``namespace`` confines it to the Etcds (and everything else) of one namespace.
    """
    cfg = config.controllers.etcd
    source = CacheSource(informers, namespace)
    caches = {res: source.informer(res).store for res in (*MANAGED_KINDS, PODS, PVCS, ETCDS)}
    deps = Deps(
        kube=kube,
        caches=caches,
        secrets=source.secrets().store,
        build_options=build_options or components_options(config),
        events=EventRecorder(kube, CONTROLLER_NAME),
        status_sync_period=cfg.etcd_status_sync_period,
        thresholds=MemberThresholds(
            unknown=cfg.etcd_member.unknown_threshold, not_ready=cfg.etcd_member.not_ready_threshold
        ),
        auto_reconcile=cfg.enable_etcd_spec_auto_reconcile,
        sync_retry_interval=sync_retry_interval,
        delete_retry_interval=delete_retry_interval,
        admission=config.admission_policy(),
        take_over=cfg.take_over,
        registry=registry,
        backup_restore=backup_restore or BackupRestoreClient(),
    )
    drift_counter(registry)
    controller = Controller(
        CONTROLLER_NAME,
        EtcdReconciler(deps),
        informers,
        workers=cfg.concurrent_syncs,
        rate_limiter=ItemExponentialFailureRateLimiter(RATE_LIMIT_BASE, cfg.etcd_status_sync_period),
        registry=registry,
    )
    opts = source.options
    controller.for_(ETCDS, predicate=predicate.etcd_predicate(cfg.enable_etcd_spec_auto_reconcile), options=opts(ETCDS))
    ensure_index(controller.primary)
    controller.watches(STATEFULSETS, predicate.etcd_of, options=opts(STATEFULSETS))
    controller.watches(
        LEASES,
        predicate.etcd_of,
        options=opts(LEASES),
        predicate=predicate.lease_predicate(cfg.etcd_member.unknown_threshold, deps.now),
    )
    controller.watches(PODS, predicate.etcd_of, options=opts(PODS), predicate=predicate.pod_predicate)
    controller.watches(PVCS, predicate.etcd_of, options=opts(PVCS), predicate=predicate.pvc_predicate)

    etcd_store = controller.primary.store

    def referencing_etcds(secret: Obj) -> list[ObjectKey]:
        meta = secret.get("metadata") or {}
        return etcds_referencing(etcd_store, meta.get("namespace") or "", meta.get("name") or "")

    # a Secret's existence is what matters: creates and deletes pass, updates do not
    controller.watches(SECRETS, referencing_etcds, options=opts(SECRETS), predicate=Predicates(update=never))
    return controller


def add_etcd_controller(
    manager: Manager, config: OperatorConfiguration, *, build_options: BuildOptions | None = None
) -> Controller:
    """Build the Etcd controller on the manager's informers and add it to the manager."""
    client = BackupRestoreClient()  # ordered member updates: pre-roll snapshots, etcd's JSON gateway
    controller = make_etcd_controller(
        manager.kube,
        manager.informers,
        config,
        build_options=build_options,
        registry=manager.registry,
        backup_restore=client,
    )
    manager.add(controller)
    manager.add_leader_task(client.hold_open)
    return controller
