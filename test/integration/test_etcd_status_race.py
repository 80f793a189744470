"""Two controllers write one Etcd's status at the same time and neither loses the other's update.

The Etcd controller's status sync works from its informer cache (which lags behind other writers) and owns
the seven health conditions plus ``lastOperation``; the compaction controller owns
``LastSnapshotCompactionSucceeded``. Each round both write concurrently (random interleaving); afterwards the
live Etcd must show the Etcd controller's condition and lastOperation of that round *and* the compaction
condition of that round. With a writer that rebuilds the whole conditions list from a stale cached copy
and patches it without a resourceVersion, the compaction condition of some rounds is erased.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.controllers.compaction import status as compaction_status
from druid.controllers.compaction.outcome import Outcome
from druid.controllers.etcd import conditions as cond
from druid.controllers.etcd.operation import StatusWriter
from druid.controllers.etcd.status import merge_patch
from druid.runtime.client import Kube
from druid.runtime.informer import InformerFactory
from druid.runtime.objects import Obj, ObjectKey
from druid.testing.etcds import condition, etcd_manifest, get_etcd

pytestmark = pytest.mark.apiserver

ROUNDS = 200


def _compaction_condition(ns: str, round_no: int) -> dict[str, Any]:
    job = {"metadata": {"namespace": ns, "name": f"job-{round_no}"}}
    succeeded = round_no % 2 == 0
    reason = c.REASON_NONE if succeeded else c.REASON_DEADLINE_EXCEEDED
    return compaction_status.job_condition(job, Outcome(succeeded, "Complete", reason, "none", None))


async def _etcd_status_sync(kube: Kube, cached: Obj, round_no: int) -> None:
    """What the Etcd controller does in one status sync: conditions computed from its (possibly stale) cached
    copy, then its lastOperation."""
    writer = StatusWriter(kube, cached, f"run-{round_no}")
    ready = cond.Result(c.CONDITION_READY, c.CONDITION_TRUE, "Quorate", f"round {round_no}")
    now = dt.datetime.now(dt.UTC)
    conditions = cond.build_conditions((cached.get("status") or {}).get("conditions") or (), [ready], 1, now)
    patch = merge_patch(writer.status, {"conditions": conditions, "selector": "app=race"})
    await asyncio.sleep(random.uniform(0, 0.01))
    await writer.patch_status(patch)
    await writer.record(c.OPERATION_TYPE_RECONCILE, c.OPERATION_STATE_SUCCEEDED, f"round {round_no}")


async def _compaction_completion(kube: Kube, ns: str, name: str, round_no: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.01))
    await compaction_status.write(kube, ns, name, _compaction_condition(ns, round_no))


async def test_status_sync_races_compaction_completions_without_losing_updates(
    kube: Kube, crds: list[str], namespace: str
) -> None:
    ns, name = namespace, "race"
    await kube.create(ETCDS, etcd_manifest(name, ns, 1))
    factory = InformerFactory(kube)
    informer = factory.get(ETCDS, ns)
    factory.start_all()
    try:
        assert await factory.wait_for_cache_sync(30)
        lost: list[str] = []
        for i in range(ROUNDS):
            cached = informer.store.get(ObjectKey(ns, name))
            assert cached is not None
            await asyncio.gather(_etcd_status_sync(kube, cached, i), _compaction_completion(kube, ns, name, i))
            etcd = await get_etcd(kube, ns, name)
            ready = condition(etcd, c.CONDITION_READY).get("message")
            compaction = condition(etcd, c.CONDITION_LAST_SNAPSHOT_COMPACTION_SUCCEEDED).get("message") or ""
            operation = ((etcd.get("status") or {}).get("lastOperation") or {}).get("description")
            if ready != f"round {i}":
                lost.append(f"round {i}: Ready condition is {ready!r}")
            if f"/job-{i} " not in compaction:
                lost.append(f"round {i}: compaction condition is {compaction!r}")
            if operation != f"round {i}":
                lost.append(f"round {i}: lastOperation is {operation!r}")
        kinds = Counter(x.split(": ", 1)[1].split(" is ")[0] for x in lost)
        assert not lost, f"{len(lost)} lost updates in {ROUNDS} rounds ({dict(kinds)}), e.g. {lost[:5]}"
    finally:
        await factory.stop_all()
