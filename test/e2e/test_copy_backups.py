"""EtcdCopyBackupsTask for real: a Job runs ``etcdbrctl copy`` on the real node and copies the snapshots of one
Local bucket into another; the task reports Succeeded."""

from __future__ import annotations

from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCD_COPY_BACKUPS_TASKS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, backed_up_etcd, on_demand_full_snapshot, write_keys
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e


async def test_copy_task_copies_a_bucket_into_another(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-source"
    source, ctl = await backed_up_etcd(real_cluster, rkube, ns, name)
    target = real_cluster.local_store(ns, f"{ns}--{name}")
    await rkube.create(SECRETS, target.secret)
    await write_keys(ctl, 1)
    await on_demand_full_snapshot(rkube, ns, name, "full-before-copy")
    source_files = {p.name for p in source.snapshots("Full")}
    assert source_files and not target.snapshots("Full")

    task = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_COPY_BACKUPS_TASK,
        "metadata": {"name": "copy", "namespace": ns},
        "spec": {"sourceStore": source.spec, "targetStore": target.spec},
    }
    clock = Stopwatch()
    await rkube.create(ETCD_COPY_BACKUPS_TASKS, task)

    async def done() -> dict[str, Any] | None:
        got = await rkube.get(ETCD_COPY_BACKUPS_TASKS, "copy", ns)
        conds = {x["type"]: x["status"] for x in (got.get("status") or {}).get("conditions") or []}
        if conds.get("Failed") == "True":
            raise AssertionError(f"copy failed: {got.get('status')}")
        return got if conds.get("Succeeded") == "True" else None

    await eventually(done, timeout=240, what="EtcdCopyBackupsTask Succeeded", interval=1)
    figures["EtcdCopyBackupsTask: create -> Succeeded, s"] = clock()
    assert source_files <= {p.name for p in target.snapshots("Full")}
