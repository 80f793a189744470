"""Snapshot compaction for real: with a low events threshold, druid's compaction Job runs ``etcdbrctl compact``
against the Local bucket on the real node and succeeds; LastSnapshotCompactionSucceeded goes True and the
compacted full snapshot lands in the bucket."""

from __future__ import annotations

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import JOBS
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, backed_up_etcd, write_keys
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

CONDITION = "LastSnapshotCompactionSucceeded"


async def test_compaction_job_compacts_the_bucket_and_sets_the_condition(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-compact"
    compaction = {"eventsThreshold": 20}
    store, ctl = await backed_up_etcd(
        real_cluster, rkube, ns, name, deltaSnapshotPeriod="5s", snapshotCompaction=compaction
    )
    await write_keys(ctl, 60)
    fulls = len(store.snapshots("Full"))
    clock = Stopwatch()
    seen_jobs: set[str] = set()

    async def compacted() -> bool:
        seen_jobs.update(j["metadata"]["name"] for j in (await rkube.list(JOBS, ns))["items"])
        etcd = await rkube.get(ETCDS, name, ns)
        conds = {x["type"]: x for x in (etcd.get("status") or {}).get("conditions") or []}
        cond = conds.get(CONDITION)
        if cond is not None and cond["status"] == "False":
            raise AssertionError(f"compaction failed: {cond}")
        return cond is not None and cond["status"] == "True"

    await eventually(compacted, timeout=300, what=f"{CONDITION} True", interval=1)
    figures["compaction: events over threshold -> LastSnapshotCompactionSucceeded, s"] = clock()
    assert seen_jobs, "a compaction Job ran"
    assert len(store.snapshots("Full")) > fulls, "the compacted full snapshot is in the bucket"
    # The cluster is untouched by the compaction.
    assert ctl.get("/e2e/k59") == "v59"
