"""Status reconcile: gather what ``status.compute_status`` needs from the caches, write ``/status`` if it changed.

Everything comes from the informer caches (StatefulSet, member/snapshot Leases, pods, PVCs) except the
Warning Events of data PVCs, which are read (uncached, by field selector) only when a data PVC of the
StatefulSet is not Bound. An unchanged status makes no write.
"""

from __future__ import annotations

import asyncio
from typing import Any

from druid.api import names
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.members import expected_lease_names
from druid.controllers.etcd.status import Observed, compute_status, merge_patch
from druid.runtime.client import ApiError
from druid.runtime.objects import EVENTS, LEASES, PODS, PVCS, STATEFULSETS, Obj, ObjectKey


async def _pvc_warnings(run: Run, sts: Obj | None) -> dict[str, list[dict[str, Any]]] | None:
    if sts is None:
        return {}
    meta = sts["metadata"]
    namespace = meta["namespace"]
    prefixes = [
        f"{(t.get('metadata') or {}).get('name', '')}-{meta['name']}"
        for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or ()
    ]
    selector = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or names.default_labels(meta["name"])
    unbound = [
        pvc["metadata"]["name"]
        for pvc in run.deps.caches[PVCS].select(namespace, selector)
        if any(pvc["metadata"]["name"].startswith(p) for p in prefixes)
        and (pvc.get("status") or {}).get("phase") != "Bound"
    ]

    async def warnings(pvc: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind=PersistentVolumeClaim,involvedObject.name={pvc},type=Warning"
        return list((await run.deps.kube.list(EVENTS, namespace, field_selector=selector)).get("items") or [])

    claims = sorted(unbound)
    try:  # one round trip for all of them, not one per claim (a status reconcile of a new Etcd waits on these)
        found = await asyncio.gather(*(warnings(pvc) for pvc in claims))
    except ApiError:
        return None
    return dict(zip(claims, found, strict=True))


async def observe(run: Run) -> Observed:
    deps, etcd = run.deps, run.etcd
    meta = etcd["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    sts = deps.caches[STATEFULSETS].get(ObjectKey(namespace, names.statefulset_name(name)))
    leases = deps.caches[LEASES]
    members = {n: x for n in expected_lease_names(etcd) if (x := leases.get(ObjectKey(namespace, n))) is not None}
    snapshot_names = (("full", names.full_snapshot_lease_name(name)), ("delta", names.delta_snapshot_lease_name(name)))
    snapshots = {kind: x for kind, n in snapshot_names if (x := leases.get(ObjectKey(namespace, n))) is not None}
    pods = {p["metadata"]["name"]: p for p in deps.caches[PODS].select(namespace, names.default_labels(name))}
    return Observed(
        etcd,
        sts,
        members,
        snapshots,
        pods,
        await _pvc_warnings(run, sts),
        now=deps.now(),
    )


async def reconcile_status(run: Run) -> bool:
    """Compute the status from the caches and merge-patch ``/status`` if it changed; True if written."""
    observed = await observe(run)
    fields = compute_status(observed, run.deps.thresholds)
    patch = merge_patch(run.status.status, fields)
    if not patch:
        return False
    await run.status.patch_status(patch)
    return True
