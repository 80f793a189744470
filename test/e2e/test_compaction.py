"""Snapshot compaction for real: with a low events threshold, druid's compaction Job runs ``etcdbrctl compact``
against the Local bucket on the real node and succeeds; LastSnapshotCompactionSucceeded goes True and the
compacted full snapshot lands in the bucket."""

from __future__ import annotations

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import JOBS, SECRETS
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, etcdctl_for, until, wait_etcd
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

CONDITION = "LastSnapshotCompactionSucceeded"


async def test_compaction_job_compacts_the_bucket_and_sets_the_condition(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-compact"
    store = real_cluster.local_store(ns, f"{ns}--{name}")
    await rkube.create(SECRETS, store.secret)
    backup = {"store": store.spec, "deltaSnapshotPeriod": "5s", "snapshotCompaction": {"eventsThreshold": 20}}
    await rkube.create(ETCDS, etcd_manifest(name, ns, 1, backup=backup))
    await wait_etcd(rkube, ns, name, timeout=300)
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name)
    await until(lambda: ctl.put("/e2e/k0", "v0"), timeout=30, what="a first write")
    for i in range(1, 60):
        ctl.put(f"/e2e/k{i}", f"v{i}")
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
