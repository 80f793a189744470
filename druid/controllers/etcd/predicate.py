"""Which events enqueue an Etcd (upstream ``register.go``'s predicates, plus druid's watches of managed objects).

Etcd updates pass when either

- A: ``druid.gardener.cloud/operation`` or ``gardener.cloud/operation`` is ``reconcile`` on the new object and
  (the generation changed, or the new ``lastOperation`` is Reconcile/Succeeded, or it was never reconciled:
  no ``lastOperation`` and no ``observedGeneration``);
- B: spec auto-reconcile is enabled and (the generation changed or it was never reconciled).

Adds and deletes always pass. Druid addition: the update that sets ``deletionTimestamp`` passes too, so
deletion starts at once instead of at the next periodic requeue.

Upstream watches only Etcds and notices changes of its objects at the next periodic requeue (every
``etcdStatusSyncPeriod``). Druid also maps events of its StatefulSets, member/snapshot Leases, pods and
data PVCs (by ``app.kubernetes.io/part-of`` / controller owner) and of referenced Secrets to the Etcd, for
faster convergence. Lease renewals are frequent and change nothing by themselves, so a Lease update only
passes when something the status depends on changed (holder identity, annotations, labels, owners) or when
the lease had been stale (its member was Unknown/NotReady and recovers); a renewal of a healthy lease causes
no reconcile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from druid.api import constants as c
from druid.api import facts
from druid.runtime.clock import parse_time
from druid.runtime.controller import Predicate, deletion_started
from druid.runtime.objects import Obj, ObjectKey


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def etcd_predicate(auto_reconcile: bool) -> Predicate:
    def passes(old: Obj, new: Obj) -> bool:
        if deletion_started(old, new):
            return True
        spec_updated = _meta(old).get("generation") != _meta(new).get("generation")
        if facts.reconcile_requested(new) and (
            spec_updated or facts.last_reconcile_succeeded(new) or facts.never_reconciled(new)
        ):
            return True
        return auto_reconcile and (spec_updated or facts.never_reconciled(new))

    return passes


# ---------------------------------------------------------------------------------------------- managed objects


def etcd_of(obj: Obj) -> list[ObjectKey]:
    """The Etcd owning a managed object: its controller owner of kind Etcd, else its part-of label."""
    meta = _meta(obj)
    namespace = meta.get("namespace")
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            if ref.get("kind") == c.KIND_ETCD and ref.get("apiVersion") == c.API_VERSION:
                return [ObjectKey(namespace, ref["name"])]
            break
    labels = meta.get("labels") or {}
    if labels.get(c.LABEL_MANAGED_BY) == c.LABEL_MANAGED_BY_VALUE and labels.get(c.LABEL_PART_OF):
        return [ObjectKey(namespace, labels[c.LABEL_PART_OF])]
    return []


def lease_predicate(unknown_threshold: float, now: Callable[[], dt.datetime]) -> Predicate:
    """A Lease update matters when status-relevant metadata/holder changed or a stale lease is renewed."""

    def passes(old: Obj, new: Obj) -> bool:
        om, nm = _meta(old), _meta(new)
        if any(om.get(k) != nm.get(k) for k in ("annotations", "labels", "ownerReferences", "deletionTimestamp")):
            return True
        ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
        if ospec.get("holderIdentity") != nspec.get("holderIdentity"):
            return True
        if ospec.get("renewTime") == nspec.get("renewTime"):
            return False
        renewed = ospec.get("renewTime")
        return renewed is None or parse_time(renewed) + dt.timedelta(seconds=unknown_threshold) < now()

    return passes


def pod_predicate(old: Obj, new: Obj) -> bool:
    """Pod readiness (ContainersReady) and phase feed member status."""

    def state(pod: Obj) -> Any:
        status = pod.get("status") or {}
        conditions = {x.get("type"): x.get("status") for x in status.get("conditions") or ()}
        return status.get("phase"), conditions.get("ContainersReady"), _meta(pod).get("deletionTimestamp")

    return bool(state(old) != state(new))


def pvc_predicate(old: Obj, new: Obj) -> bool:
    return bool((old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase"))
