"""The Etcd condition ``LastSnapshotCompactionSucceeded`` (upstream ``status_compaction.go``).

Written through the runtime's status writer (a merge patch of ``/status`` guarded by the resourceVersion,
computed again from the live Etcd on conflict): the compaction controller owns this one condition type and
merges only it into the live list, so the Etcd controller's conditions and lastOperation are never touched.
``lastUpdateTime`` is always now; ``lastTransitionTime`` moves only when status or reason change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from druid.api import constants as c
from druid.api.common import now as wire_now
from druid.api.resources import ETCDS
from druid.controllers.compaction.outcome import Outcome
from druid.runtime.client import Kube
from druid.runtime.objects import Obj
from druid.runtime.statuswriter import update_status

TYPE = c.CONDITION_LAST_SNAPSHOT_COMPACTION_SUCCEEDED
RETRY_SUFFIX = ", Compaction will be retried"
_FULL_SNAPSHOT_RETRIGGER = (c.REASON_DEADLINE_EXCEEDED, c.REASON_ERROR_TRIGGERING_FULL_SNAPSHOT)

Condition = dict[str, Any]


def job_condition(job: Obj, result: Outcome) -> Condition:
    meta = job["metadata"]
    status = c.CONDITION_TRUE if result.succeeded else c.CONDITION_FALSE
    message = f"Compaction job {meta.get('namespace')}/{meta['name']} completed with state {result.job_reason}"
    if not result.succeeded:
        message += RETRY_SUFFIX
    return {"type": TYPE, "status": status, "reason": result.reason, "message": message}


def full_snapshot_condition(namespace: str, name: str, error: str | None) -> Condition:
    if error is None:
        return {
            "type": TYPE,
            "status": c.CONDITION_TRUE,
            "reason": c.REASON_FULL_SNAPSHOT_TAKEN,
            "message": f"Full snapshot taken successfully for etcd {namespace}/{name}",
        }
    return {
        "type": TYPE,
        "status": c.CONDITION_FALSE,
        "reason": c.REASON_ERROR_TRIGGERING_FULL_SNAPSHOT,
        # sic: upstream's " ,Compaction will be retried"
        "message": f"Error while triggering full snapshot for etcd {namespace}/{name}: {error} ,Compaction will be "
        "retried",
    }


def current(etcd: Obj) -> Condition | None:
    for cond in (etcd.get("status") or {}).get("conditions") or ():
        if cond.get("type") == TYPE:
            return dict(cond)
    return None


def shows(etcd: Obj | None, cond: Condition) -> bool:
    """The Etcd carries a condition of ``cond``'s type with its status and reason (cache freshness check)."""
    have = current(etcd) if etcd is not None else None
    return have is not None and have.get("status") == cond["status"] and have.get("reason") == cond["reason"]


def full_snapshot_required(etcd: Obj) -> bool:
    """Last compaction ran out of time or the last full snapshot failed: take a full snapshot instead of a job."""
    have = current(etcd)
    if have is None or have.get("status") != c.CONDITION_FALSE:
        return False
    return have.get("reason") in _FULL_SNAPSHOT_RETRIGGER


def with_condition(conditions: list[Condition], cond: Condition, now: str) -> list[Condition]:
    """``conditions`` with ``cond`` replacing (or appended as) the condition of its type."""
    out = [dict(x) for x in conditions]
    for i, old in enumerate(out):
        if old.get("type") == cond["type"]:
            moved = old.get("status") != cond["status"] or old.get("reason") != cond["reason"]
            transition = now if moved else old.get("lastTransitionTime", now)
            out[i] = {**cond, "lastTransitionTime": transition, "lastUpdateTime": now}
            return out
    out.append({**cond, "lastTransitionTime": now, "lastUpdateTime": now})
    return out


async def write(
    kube: Kube,
    namespace: str,
    name: str,
    cond: Condition,
    now: Callable[[], str] = wire_now,
    *,
    etcd: Obj | None = None,
) -> Obj:
    """Set ``cond`` on the Etcd; ``etcd`` is the copy to start from (e.g. the cached one), else it is read."""
    if etcd is None:
        etcd = await kube.get(ETCDS, name, namespace)
    stamp = now()

    def desired(live: Obj) -> dict[str, Any]:
        status: dict[str, Any] = live.get("status") or {}
        return {**status, "conditions": with_condition(status.get("conditions") or [], cond, stamp)}

    return await update_status(kube, ETCDS, etcd, desired)
