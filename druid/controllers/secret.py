"""Secret controller (upstream ``internal/controller/secret``; docs/compatibility.md, item J61).

``secret-controller``: a Secret referenced by any Etcd in its namespace (TLS CA/server/client secrets of
``clientUrlTls``/``peerUrlTls``/``backup.tls``, ``backup.store.secretRef``) gets the finalizer
``druid.gardener.cloud/etcd-druid``; once no Etcd references it any more the finalizer is removed. Etcds that
are being deleted still count until they are gone. Runs with ``controllers.secret.concurrentSyncs`` workers, no
periodic requeue.

Secrets are cached metadata-only (see ``etcd.caches``): the operator never reads Secret data here. An Etcd
event enqueues the Secrets its old and its new version reference (so a dropped reference is noticed), and
Etcd updates that change no reference are ignored. Finalizer patches are merge patches guarded by the
Secret's resourceVersion.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.api.facts import referenced_secrets
from druid.config.operator import OperatorConfiguration
from druid.controllers.etcd.caches import CacheSource
from druid.runtime.client import Kube
from druid.runtime.controller import Controller
from druid.runtime.finalizers import ensure_finalizer, remove_finalizer
from druid.runtime.informer import FuncHandler, InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.objects import SECRETS, Obj, ObjectKey, Tombstone
from druid.runtime.reconcile import Action

CONTROLLER_NAME = "secret-controller"


class SecretReconciler:
    def __init__(self, kube: Kube, etcds: CacheSource) -> None:
        self.kube = kube
        self.etcds = etcds.etcds().store

    def needed(self, namespace: str, name: str) -> bool:
        return any(name in referenced_secrets(etcd) for etcd in self.etcds.list(namespace))

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            return Action.done()
        if self.needed(key.namespace or "", key.name):
            await ensure_finalizer(self.kube, SECRETS, obj, c.FINALIZER_ETCD)
        else:
            await remove_finalizer(self.kube, SECRETS, obj, c.FINALIZER_ETCD)
        return Action.done()


def make_secret_controller(
    kube: Kube,
    informers: InformerFactory,
    config: OperatorConfiguration,
    *,
    registry: CollectorRegistry | None = None,
    namespace: str | None = None,
) -> Controller:
    """The Secret controller on ``informers`` (``namespace``: confined to one namespace)."""
    source = CacheSource(informers, namespace)
    controller = Controller(
        CONTROLLER_NAME,
        SecretReconciler(kube, source),
        informers,
        workers=config.controllers.secret.concurrent_syncs,
        registry=registry,
    )
    controller.for_(SECRETS, options=source.options(SECRETS))

    def enqueue(etcd: Obj) -> None:
        namespace = (etcd.get("metadata") or {}).get("namespace")
        for name in referenced_secrets(etcd):
            controller.queue.add(ObjectKey(namespace, name))

    def on_update(old: Obj, new: Obj) -> None:
        if referenced_secrets(old) != referenced_secrets(new):
            enqueue(old)
            enqueue(new)

    def on_delete(obj: Obj | Tombstone) -> None:
        enqueue(obj.last_known if isinstance(obj, Tombstone) else obj)

    source.etcds().add_handler(FuncHandler(add=enqueue, update=on_update, delete=on_delete))
    return controller


def add_secret_controller(manager: Manager, config: OperatorConfiguration) -> Controller:
    """Build the Secret controller on the manager's informers and add it to the manager."""
    controller = make_secret_controller(manager.kube, manager.informers, config, registry=manager.registry)
    manager.add(controller)
    return controller
