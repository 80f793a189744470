"""Backups for real: the sidecar writes full and delta snapshots into a Local bucket, the snapshot Leases carry
their revisions, BackupReady goes True, an on-demand full snapshot (EtcdOpsTask) adds a full snapshot, and
`druid backups` lists exactly the snapshots the bucket holds."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from druid.api import constants as c
from druid.runtime.client import Kube
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import (
    Stopwatch,
    backed_up_etcd,
    lease_holder,
    on_demand_full_snapshot,
    wait_etcd,
    write_keys,
)
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e


async def test_full_and_delta_snapshots_leases_backup_ready_and_on_demand_full(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-backup"
    clock = Stopwatch()
    store, ctl = await backed_up_etcd(
        real_cluster, rkube, ns, name, fullSnapshotSchedule="0 */1 * * *", deltaSnapshotPeriod="5s"
    )
    figures["1 member with Local backups: create -> Ready, s"] = clock()
    bucket = store.path

    # The first full snapshot is taken when the member starts.
    await eventually(lambda: _async(store.snapshots("Full")), timeout=120, what=f"a full snapshot in {bucket}")

    revision = await write_keys(ctl, 20)
    await eventually(lambda: _async(store.snapshots("Incr")), timeout=90, what=f"a delta snapshot in {bucket}")

    async def delta_lease_at_revision() -> int | None:
        holder = await lease_holder(rkube, ns, f"{name}-delta-snap")
        return int(holder) if holder and int(holder) >= revision else None

    delta_rev = await eventually(
        delta_lease_at_revision, timeout=90, what="delta snapshot lease at the written revision"
    )
    full_rev = int(await lease_holder(rkube, ns, f"{name}-full-snap") or 0)
    assert 0 < full_rev <= revision <= delta_rev <= ctl.revision()

    etcd = await wait_etcd(rkube, ns, name, timeout=90, what="BackupReady", **{c.CONDITION_BACKUP_READY: "True"})
    assert etcd["status"]["conditions"]

    # On demand: an EtcdOpsTask asks the real sidecar for a full snapshot; one more Full file appears, and the
    # full snapshot lease moves to the current revision.
    fulls = len(store.snapshots("Full"))
    clock = Stopwatch()
    await on_demand_full_snapshot(rkube, ns, name, "full-now")
    figures["on-demand full snapshot (EtcdOpsTask) -> Succeeded, s"] = clock()
    assert len(store.snapshots("Full")) == fulls + 1
    now = ctl.revision()

    async def full_lease_current() -> bool:
        return int(await lease_holder(rkube, ns, f"{name}-full-snap") or 0) >= revision

    await eventually(full_lease_current, timeout=60, what="full snapshot lease at the current revision")
    assert now >= revision

    # The catalogue: `druid backups` (a real process, through the API server for the Etcd and its store Secret)
    # lists every Full and Incr file of the bucket with its revisions and size; the restore set is the newest
    # full snapshot (at least the full snapshot lease's revision) and the deltas after it.
    listing = await _druid_backups(real_cluster, f"{ns}/{name}")
    files = {p.name: p.stat().st_size for kind in ("Full", "Incr") for p in store.snapshots(kind)}
    listed = {Path(s["name"]).name: s for s in listing}
    assert set(listed) <= set(files) and len(listed) >= len(files) - 1, (sorted(listed), sorted(files))
    assert all(listed[n]["size"] == files[n] for n in listed if not n.startswith("Incr")), listing
    assert {s["kind"] for s in listing} == {"Full", "Incr"}
    restore = [s for s in listing if s["usedByRestore"]]
    assert restore[0]["kind"] == "Full"
    assert restore[0]["lastRevision"] >= int(await lease_holder(rkube, ns, f"{name}-full-snap") or 0)
    assert all(s["kind"] == "Incr" and s["startRevision"] > restore[0]["lastRevision"] for s in restore[1:])
    assert max(s["lastRevision"] for s in listing) >= revision


async def _async(value: Any) -> Any:
    return value


async def _druid_backups(cluster: RealCluster, etcd: str) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "druid.cli.main",
        "backups",
        etcd,
        "-o",
        "json",
        "--kubeconfig",
        str(cluster.kubeconfig),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    listing: list[dict[str, Any]] = json.loads(out)
    return listing
