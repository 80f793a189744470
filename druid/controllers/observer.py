"""A read-only controller that logs the Etcds it sees.

It exercises the whole runtime (shared informer → workqueue → worker → reconcile → metrics) until
the Etcd controller takes over the Etcd kind; it writes nothing to the cluster.
"""

from __future__ import annotations

import structlog

from druid.runtime.objects import Obj, ObjectKey, ResourceRef
from druid.runtime.reconcile import Action

ETCDS = ResourceRef("druid.gardener.cloud", "v1alpha1", "etcds", "Etcd")
log = structlog.get_logger(__name__)


class EtcdObserver:
    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            log.info("etcd gone")
            return Action.done()
        meta, status = obj.get("metadata", {}), obj.get("status") or {}
        log.info(
            "etcd seen",
            generation=meta.get("generation"),
            observed_generation=status.get("observedGeneration"),
            replicas=obj.get("spec", {}).get("replicas"),
        )
        return Action.done()
