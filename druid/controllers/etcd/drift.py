"""Drift: fields of an Etcd's objects that another field manager set and druid does not.

Component sync finds them (``SyncContext.take_ownership``) on every spec reconcile and has its next apply remove
them; this module reports each revert: a Warning Event ``DriftReverted`` on the Etcd naming the object, the fields
and their managers, and the counter ``druid_drift_fields_reverted_total{kind}`` (fields, by object kind).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from druid.runtime import metrics
from druid.runtime.events import EventRecorder
from druid.runtime.objects import Obj, ResourceRef

REASON = "DriftReverted"


def _create(registry: CollectorRegistry) -> Counter:
    return Counter(
        "druid_drift_fields_reverted_total",
        "Fields of managed objects that another field manager set and druid removed, by object kind.",
        ["kind"],
        registry=registry,
    )


def drift_counter(registry: CollectorRegistry | None = None) -> Counter:
    return metrics.families(registry, _create)


def message(kind: str, name: str, fields: dict[str, list[str]]) -> str:
    """``StatefulSet etcd-main: reverting fields set by other managers: spec...command (kubectl-patch)``."""
    listed = "; ".join(f"{path} ({', '.join(who)})" for path, who in sorted(fields.items()))
    return f"{kind} {name}: reverting fields set by other field managers: {listed}"


async def report(
    events: EventRecorder,
    etcd: Obj,
    res: ResourceRef,
    name: str,
    fields: dict[str, list[str]],
    registry: CollectorRegistry | None = None,
) -> None:
    drift_counter(registry).labels(res.kind).inc(len(fields))
    await events.warning(etcd, REASON, message(res.kind, name, fields))
