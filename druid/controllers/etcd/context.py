"""What the Etcd controller's steps share: dependencies (:class:`Deps`) and per-reconcile state (:class:`Run`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.api.admission import AdmissionPolicy
from druid.backuprestore import BackupRestoreClient
from druid.components.base import BuildOptions
from druid.components.sync import FIELD_MANAGER, ApplyMemo, EtcdRef, ObjectCache, SyncContext
from druid.config.operator import DEFAULT_TAKE_OVER_FIELD_MANAGERS
from druid.controllers.etcd import drift
from druid.controllers.etcd.operation import StatusWriter
from druid.controllers.etcd.status import MemberThresholds
from druid.runtime import finalizers
from druid.runtime.client import Kube
from druid.runtime.events import EventRecorder
from druid.runtime.objects import Obj, ResourceRef
from druid.runtime.reader import VersionMemo

CONTROLLER_NAME = "etcd-controller"
SYNC_RETRY_INTERVAL = 10.0  # upstream syncRetryInterval: waits inside a spec reconcile (TLS roll-out, pre-sync)
DELETE_RETRY_INTERVAL = 5.0  # upstream: objects still present after trigger-delete


@dataclass
class RollMemory:
    """What ordered member updates remember between reconciles (``memberupdate.py``), per Etcd UID."""

    deleted: dict[str, set[str]] = field(default_factory=dict)  # UIDs of pods druid deleted, not yet gone
    snapshots: dict[str, str] = field(default_factory=dict)  # updateRevision whose pre-roll snapshot was taken

    def forget(self, etcd_uid: str) -> None:
        self.deleted.pop(etcd_uid, None)
        self.snapshots.pop(etcd_uid, None)


@dataclass
class Deps:
    kube: Kube
    caches: Mapping[ResourceRef, ObjectCache]  # managed kinds, pods, PVCs (label-scoped informer stores), Etcds
    secrets: ObjectCache  # metadata-only Secrets
    build_options: BuildOptions
    events: EventRecorder
    status_sync_period: float
    thresholds: MemberThresholds
    auto_reconcile: bool = False
    sync_retry_interval: float = SYNC_RETRY_INTERVAL
    delete_retry_interval: float = DELETE_RETRY_INTERVAL
    field_manager: str = FIELD_MANAGER
    admission: AdmissionPolicy = field(default_factory=AdmissionPolicy)  # what an Etcd may ask for
    memo: ApplyMemo = field(default_factory=ApplyMemo)
    take_over: tuple[str, ...] = DEFAULT_TAKE_OVER_FIELD_MANAGERS  # field managers whose Update ownership is taken
    registry: CollectorRegistry | None = None  # metrics (None: the process registry)
    # etcd-backup-restore's HTTP API and etcd's JSON gateway (ordered member updates)
    backup_restore: BackupRestoreClient = field(default_factory=BackupRestoreClient)
    rolls: RollMemory = field(default_factory=RollMemory)
    host_paths: VersionMemo[str] = field(default_factory=VersionMemo)  # Local store Secret -> hostPath, per version
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


class Run:
    """One reconcile of one Etcd: its run ID, the freshest copy of the Etcd, status writes."""

    def __init__(self, deps: Deps, etcd: Obj, run_id: str) -> None:
        self.deps = deps
        self.run_id = run_id
        self.status = StatusWriter(deps.kube, etcd, run_id)

    @property
    def etcd(self) -> Obj:
        return self.status.etcd

    @property
    def ref(self) -> EtcdRef:
        return EtcdRef.of(self.status.etcd)

    def sync_context(self, before_write: Callable[[], Awaitable[None]] | None = None) -> SyncContext:
        d = self.deps

        async def on_drift(res: ResourceRef, name: str, fields: dict[str, list[str]]) -> None:
            await drift.report(d.events, self.etcd, res, name, fields, d.registry)

        return SyncContext(
            d.kube,
            d.caches,
            d.memo,
            d.field_manager,
            before_write=before_write,
            take_over=d.take_over,
            on_drift=on_drift,
        )

    def has_finalizer(self) -> bool:
        return finalizers.has_finalizer(self.etcd, c.FINALIZER_ETCD)
