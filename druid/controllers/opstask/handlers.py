"""EtcdOpsTask handlers behind a registry, and the OnDemandSnapshot handler (upstream ``etcdopstask/handler``).

A handler implements ``admit`` (one-time gate while Pending), ``execute`` (repeated until it succeeds or
fails for good) and ``cleanup``; each returns a :class:`Result` (description, optional DruidError, requeue).

OnDemandSnapshot: Admit and Execute both read the Etcd ``<task namespace>/<spec.etcdName>`` (missing ⇒ fail
``ERR_GET_ETCD``, other read errors requeue) and require a backup store (``ERR_BACKUP_NOT_ENABLED``) and the
Ready condition True (``ERR_ETCD_NOT_READY``). Execute then POSTs ``<endpoint>/snapshot/<full|delta>``
(``?final=true`` for a final full snapshot) with the timeout of the snapshot type. The endpoint is
``<http|https>://<etcd>-client.<ns>:<backupPort>`` unless the controller was given another
``backup_restore_endpoint`` (tests point it at a fake server on 127.0.0.1). With ``spec.backup.tls`` the
server is verified against the CA bundle of the Secret mounted as the StatefulSet's ``backup-restore-ca``
volume (key ``dataKey`` or ``bundle.crt``; TLS ≥ 1.2). A transport error requeues with
``ERR_EXECUTE_HTTP_REQUEST``; an answer other than 200 fails with ``ERR_CREATE_SNAPSHOT``; a delta answer
``null`` means backup-restore skipped the delta snapshot (success). Cleanup does nothing. Requests go
through the controller's one :class:`~druid.backuprestore.BackupRestoreClient`.

druid's own multi-step tasks live in modules of their own and are registered in :func:`default_registry`:
QuorumLossRecovery (``quorumrecovery.py``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.api.facts import controlled_by
from druid.api.opstask import EtcdOpsTaskSpec, OnDemandSnapshotConfig
from druid.api.resources import ETCDS
from druid.backuprestore import (
    BackupRestoreClient,
    BackupRestoreError,
    CAAppendFailed,
    CAKeyNotFound,
    ca_context,
    ca_data_key,
    short_service_endpoint,
)
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildOptions
from druid.components.errors import DruidError
from druid.controllers.opstask.status import Result
from druid.gocompat.fmt import error_text
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import SECRETS, STATEFULSETS, Obj

ON_DEMAND_SNAPSHOT = "OnDemandSnapshot"
DEFRAGMENTATION = "Defragmentation"

# Error codes (upstream handler/types.go, ondemandsnapshot.go, component/statefulset)
ERR_INSUFFICIENT_PERMISSIONS = "ERR_INSUFFICIENT_PERMISSIONS"
ERR_GET_ETCD = "ERR_GET_ETCD"
ERR_DUPLICATE_TASK = "ERR_DUPLICATE_TASK"
ERR_GET_CA_SECRET = "ERR_GET_CA_SECRET"
ERR_CA_DATA_KEY_NOT_FOUND = "ERR_CA_DATA_KEY_NOT_FOUND"
ERR_APPEND_CA_CERTS = "ERR_APPEND_CA_CERTS"
ERR_DELETE_ETCD_OPS_TASK = "ERR_DELETE_ETCD_OPS_TASK"
ERR_ETCD_NOT_READY = "ERR_ETCD_NOT_READY"
ERR_BACKUP_NOT_ENABLED = "ERR_BACKUP_NOT_ENABLED"
ERR_CREATE_HTTP_REQUEST = "ERR_CREATE_HTTP_REQUEST"
ERR_EXECUTE_HTTP_REQUEST = "ERR_EXECUTE_HTTP_REQUEST"
ERR_CREATE_SNAPSHOT = "ERR_CREATE_SNAPSHOT"
ERR_OPERATION_CANCELLED = "ERR_OPERATION_CANCELLED"
ERR_GET_STATEFULSET = "ERR_GET_STATEFULSET"


class Handler(Protocol):
    async def admit(self) -> Result: ...

    async def execute(self) -> Result: ...

    async def cleanup(self) -> Result: ...


def default_client() -> BackupRestoreClient:
    """A client for ``<http|https>://<etcd>-client.<ns>:<backup port>``, the client Service in the cluster."""
    return BackupRestoreClient(short_service_endpoint)


@dataclass(frozen=True)
class HandlerDeps:
    kube: Kube
    backup_restore: BackupRestoreClient = field(default_factory=default_client)
    build_options: BuildOptions | None = None
    """Images and gates for objects a handler creates (None: the defaults and the process's image vector)."""


@dataclass(frozen=True)
class TaskRef:
    namespace: str
    name: str
    spec: EtcdOpsTaskSpec
    status: Mapping[str, Any] = field(default_factory=dict)
    """The task's status as last read (multi-step handlers resume from its ``steps``)."""
    uid: str = ""
    """The task's UID (owner of objects a handler creates)."""


HandlerFactory = Callable[[HandlerDeps, TaskRef], Handler]


class UnsupportedTask(ValueError):
    pass


VERIFIED_RESTORE = "VerifiedRestore"
TASK_TYPES: dict[str, str] = {
    "on_demand_snapshot": ON_DEMAND_SNAPSHOT,
    "quorum_loss_recovery": "QuorumLossRecovery",
    "verified_restore": VERIFIED_RESTORE,
    "defragmentation": DEFRAGMENTATION,
}
"""Field of ``spec.config`` → the task type whose handler runs it."""


def task_type(spec: EtcdOpsTaskSpec) -> str:
    for attribute, name in TASK_TYPES.items():
        if getattr(spec.config, attribute, None) is not None:
            return name
    raise UnsupportedTask("unsupported task configuration: no valid task type found")


@dataclass
class HandlerRegistry:
    factories: dict[str, HandlerFactory] = field(default_factory=dict)

    def register(self, name: str, factory: HandlerFactory) -> None:
        self.factories[name] = factory

    def handler(self, deps: HandlerDeps, task: TaskRef) -> Handler:
        name = task_type(task.spec)
        factory = self.factories.get(name)
        if factory is None:
            raise UnsupportedTask(f"task type {name} not supported")
        return factory(deps, task)


def default_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register(ON_DEMAND_SNAPSHOT, OnDemandSnapshotHandler)
    # druid's own handlers import this module, hence imported here
    from druid.controllers.opstask.defragmentation import DefragmentationHandler
    from druid.controllers.opstask.quorumrecovery import QUORUM_LOSS_RECOVERY, QuorumLossRecoveryHandler
    from druid.controllers.opstask.verifiedrestore import VerifiedRestoreHandler

    registry.register(QUORUM_LOSS_RECOVERY, QuorumLossRecoveryHandler)
    registry.register(VERIFIED_RESTORE, VerifiedRestoreHandler)
    registry.register(DEFRAGMENTATION, DefragmentationHandler)
    return registry


async def get_etcd(kube: Kube, namespace: str, etcd_name: str, phase: str) -> Etcd | Result:
    """The task's Etcd, or the Result that says why not: missing ⇒ fail ``ERR_GET_ETCD``; other read errors
    (and an object that does not parse) requeue."""
    try:
        if not etcd_name:
            raise ApiError(404, "NotFound", f'etcds.{c.GROUP} "" not found')
        obj = await kube.get(ETCDS, etcd_name, namespace)
        return Etcd.model_validate(obj)
    except ApiError as e:
        if e.not_found:
            return _fail("Etcd object not found", ERR_GET_ETCD, phase, "etcd object not found", _cause(e))
        return _fail("Failed to get etcd object", ERR_GET_ETCD, phase, "failed to get etcd object", _cause(e), True)
    except ValidationError as e:
        return _fail("Failed to get etcd object", ERR_GET_ETCD, phase, "failed to get etcd object", e, True)


def _cause(e: ApiError) -> Exception:
    return RuntimeError(error_text(e))


def _fail(description: str, code: str, phase: str, message: str, cause: BaseException, requeue: bool = False) -> Result:
    return Result(description, DruidError(code, phase, message, cause), requeue)


class EtcdTaskHandler:
    """What handlers of tasks on a backed-up, Ready Etcd share: reading the Etcd, the admission check, and the
    TLS context for its backup-restore server."""

    def __init__(self, deps: HandlerDeps, task: TaskRef) -> None:
        self.kube = deps.kube
        self.backup_restore = deps.backup_restore
        self.namespace = task.namespace
        self.etcd_name = task.spec.etcd_name or ""

    async def admit(self) -> Result:
        etcd = await self._etcd(c.OPERATION_TYPE_ADMIT)
        if isinstance(etcd, Result):
            return etcd
        return self._check(etcd, c.OPERATION_TYPE_ADMIT) or Result("Admit check passed")

    async def _etcd(self, phase: str) -> Etcd | Result:
        return await get_etcd(self.kube, self.namespace, self.etcd_name, phase)

    def _check(self, etcd: Etcd, phase: str) -> Result | None:
        if not etcd.backup_store_enabled:
            message = "backup is not enabled for etcd"
            return _fail(
                "Backup is not enabled for etcd", ERR_BACKUP_NOT_ENABLED, phase, message, RuntimeError(message)
            )
        if not etcd.ready:
            return _fail(
                "Etcd is not ready", ERR_ETCD_NOT_READY, phase, "etcd is not ready", RuntimeError("etcd is not ready")
            )
        return None

    async def _tls_context(self, etcd: Etcd, phase: str) -> ssl.SSLContext | Result | None:
        """None without backup TLS; else a client context trusting the backup-restore CA bundle."""
        tls = etcd.spec.backup.tls
        if tls is None:
            return None
        ns, name = etcd.namespace, etcd.name
        try:
            sts = await self.kube.get_or_none(STATEFULSETS, names.statefulset_name(name), ns)
        except ApiError as e:
            description = "Failed to get StatefulSet for backup-restore CA resolution"
            message = f"failed to get StatefulSet for etcd {ns}/{name}"
            return _fail(description, ERR_GET_STATEFULSET, phase, message, _cause(e), True)
        if sts is None or not controlled_by(sts, etcd.metadata.uid):
            return _fail(
                f"StatefulSet for etcd {ns}/{name} not found or not owned by etcd",
                ERR_GET_STATEFULSET,
                phase,
                "resolve backup-restore CA secret from StatefulSet",
                RuntimeError(f"StatefulSet for etcd {ns}/{name} not found or not owned"),
            )
        secret_name = _secret_volume(sts, vol.BACKUP_RESTORE_CA)
        if secret_name is None:
            return _fail(
                f'backup-restore CA volume "{vol.BACKUP_RESTORE_CA}" not found on StatefulSet {ns}/{name}',
                ERR_GET_CA_SECRET,
                phase,
                "resolve backup-restore CA secret from StatefulSet volumes",
                RuntimeError(f'volume "{vol.BACKUP_RESTORE_CA}" not found on StatefulSet {ns}/{name}'),
            )
        try:
            if not secret_name:
                raise ApiError(404, "NotFound", 'secrets "" not found')
            secret = await self.kube.get(SECRETS, secret_name, ns)
        except ApiError as e:
            message = f"failed to get etcdbr CA secret {ns}/{secret_name}"
            return _fail(
                "Failed to get etcdbr CA secret", ERR_GET_CA_SECRET, phase, message, _cause(e), not e.not_found
            )
        try:
            return ca_context(secret, ca_data_key(etcd), f"{ns}/{secret_name}")
        except CAKeyNotFound as e:
            message = "CA cert data key not found in secret"
            return _fail(message, ERR_CA_DATA_KEY_NOT_FOUND, phase, message, RuntimeError(str(e)))
        except CAAppendFailed as e:
            description = "Failed to append CA certs from secret"
            message = "failed to append CA certs from secret"
            return _fail(description, ERR_APPEND_CA_CERTS, phase, message, RuntimeError(str(e)))


class OnDemandSnapshotHandler(EtcdTaskHandler):
    def __init__(self, deps: HandlerDeps, task: TaskRef) -> None:
        super().__init__(deps, task)
        config = task.spec.config.on_demand_snapshot
        assert config is not None
        self.config: OnDemandSnapshotConfig = config

    async def execute(self) -> Result:
        phase = c.OPERATION_TYPE_EXECUTION
        etcd = await self._etcd(phase)
        if isinstance(etcd, Result):
            return etcd
        # Admit runs once; backup spec and readiness may have changed since.
        if (failed := self._check(etcd, phase)) is not None:
            return failed
        tls = await self._tls_context(etcd, phase)
        if isinstance(tls, Result):
            return tls
        url = self.backup_restore.url(etcd, f"/snapshot/{self.config.type}")
        if self.config.is_final:
            url += "?final=true"
        return await self._post(url, tls, phase)

    async def cleanup(self) -> Result:
        return Result("Cleanup completed")

    async def _post(self, url: str, tls: ssl.SSLContext | None, phase: str) -> Result:
        delta = self.config.type == c.SNAPSHOT_DELTA
        try:
            response = await self.backup_restore.request(
                "POST", url, tls=tls, timeout=self.config.timeout_seconds, read_body=delta
            )
        except BackupRestoreError as e:
            if e.status != 0:  # the answer came, its body did not
                message = "failed to read response body"
                cause = e.__cause__ or e
                return _fail("Failed to read response body", ERR_CREATE_SNAPSHOT, phase, message, cause, True)
            message = "failed to execute HTTP request"
            cause = RuntimeError(e.message)
            return _fail("Failed to execute HTTP request", ERR_EXECUTE_HTTP_REQUEST, phase, message, cause, True)
        if response.status != 200:
            cause = RuntimeError(f"failed to create snapshot, status code: {response.status}")
            return _fail("Failed to create snapshot", ERR_CREATE_SNAPSHOT, phase, "failed to create snapshot", cause)
        if delta and response.body == b"null":
            return Result("Delta snapshot was skipped by backup-restore server")
        return Result("Snapshot created successfully")


def _secret_volume(sts: Obj, name: str) -> str | None:
    """secretName of the StatefulSet pod template's secret volume ``name``."""
    for volume in ((sts.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or ():
        if volume.get("name") == name and volume.get("secret") is not None:
            return str(volume["secret"].get("secretName") or "")
    return None
