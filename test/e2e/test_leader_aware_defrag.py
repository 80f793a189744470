"""Leader-aware defragmentation (the Defragmentation EtcdOpsTask) on real etcd pods, with a write probe.

A three-member Etcd (etcd's JSON gateway on) gets LIVE_KEYS small keys that stay (about 70 MiB in use; a
defragmentation copies them key by key: that is its duration) and GARBAGE_MB that is written, deleted and
compacted away, so every member's database file has tens of MiB of free pages. A write probe (one etcdctl
``put`` every 0.2 s through the client Service) runs throughout.

1. Leader-aware: a ``defragmentation`` EtcdOpsTask. Asserted: it Succeeded; every member has a Succeeded
   ``Defragment/<pod>`` step whose ``dbSizeAfter`` is below its ``dbSizeBefore`` and the member's live
   ``dbSize`` dropped; the leader when the task began was defragmented last, after a ``MoveLeader`` step away
   from it; writes never stalled longer than STALL_BOUND.
2. Baseline, as the sidecar's plain schedule does it: the garbage is written and compacted again, then the
   leader is defragmented in place (the test calls ``etcdctl defrag`` against the leader's pod address — the
   same maintenance call the sidecar's defragmentation makes against its own member — with no leadership move).
   Only that the leader's file shrank and it stayed leader is asserted; its probe figures are the baseline.

In both runs more probes are pinned to one member's address each: in the leader-aware run to the leader when
it began (its own clients), in the baseline to the leader and to one follower (do a follower's clients wait
for the leader's defragmentation?). They are reported, not asserted.

Figures: each run's probe summary (writes ok/failed, write latency p50/p99/max, the longest gap between two
successful writes), the database sizes before/after, and how long each took.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCD_OPS_TASKS, ETCDS
from druid.runtime.client import Kube
from druid.testing.etcdctl import Etcdctl
from druid.testing.etcds import etcd_manifest
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, WriteProbe, etcdctl_for, pod_ips, until, wait_etcd, wait_task
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

NAME = "etcd-defrag"
VALUE_KB = 768  # garbage values: below etcd's default 1.5 MiB request limit
LIVE_KEYS = 240_000  # small keys that stay: what a defragmentation copies, key by key (its duration)
LIVE_VALUE_BYTES = 200
TXN_OPS = 128  # etcd's default --max-txn-ops
GARBAGE_MB = 30  # data written, deleted and compacted: what a defragmentation frees
STALL_BOUND = 4.0  # s without a successful write during the leader-aware run: 6x the 0.66 s measured (2-core, loaded)
SETTLE_WRITES = 10  # probe writes before and after each run, so both windows include normal writes


def gateway(url: str, path: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        out: dict[str, Any] = json.loads(response.read() or b"{}")
        return out


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def fill_small(url: str, prefix: str) -> None:
    """LIVE_KEYS keys of LIVE_VALUE_BYTES under ``prefix``, TXN_OPS puts per transaction."""
    value = b64(b"v" * LIVE_VALUE_BYTES)
    for start in range(0, LIVE_KEYS, TXN_OPS):
        puts = [
            {"request_put": {"key": b64(f"{prefix}{i:07d}"), "value": value}}
            for i in range(start, min(start + TXN_OPS, LIVE_KEYS))
        ]
        gateway(url, "/v3/kv/txn", {"success": puts})


def fill(url: str, prefix: str, megabytes: int) -> int:
    """Write ``megabytes`` of VALUE_KB values under ``prefix``; the revision after the last write."""
    value = b64(b"x" * (VALUE_KB * 1024))
    revision = 0
    for i in range(megabytes * 1024 // VALUE_KB):
        out = gateway(url, "/v3/kv/put", {"key": b64(f"{prefix}{i:04d}"), "value": value})
        revision = int(out["header"]["revision"])
    return revision


def fragment(url: str, prefix: str) -> None:
    """Write GARBAGE_MB under ``prefix``, delete it, and compact physically: the space is free in every member."""
    fill(url, prefix, GARBAGE_MB)
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    out = gateway(url, "/v3/kv/deleterange", {"key": b64(prefix), "range_end": b64(end)})
    gateway(url, "/v3/kv/compaction", {"revision": out["header"]["revision"], "physical": True}, timeout=120)


def statuses(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {pod: gateway(url, "/v3/maintenance/status", {}) for pod, url in urls.items()}


def leader_of(found: dict[str, dict[str, Any]]) -> str:
    leaders = {s["leader"] for s in found.values()}
    assert len(leaders) == 1, f"members disagree on the leader: {found}"
    (leader,) = leaders
    return next(pod for pod, s in found.items() if s["header"]["member_id"] == leader)


def sizes(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        pod: f"{int(s['dbSize']) / 2**20:.1f}/{int(s.get('dbSizeInUse') or 0) / 2**20:.1f}" for pod, s in found.items()
    }


async def probe_window(probe: WriteProbe, what: str) -> None:
    target = probe.writes + SETTLE_WRITES

    async def written() -> bool:
        return probe.writes >= target

    await eventually(written, timeout=120, what=f"{SETTLE_WRITES} probe writes {what}", interval=0.2)


async def stop(probe: WriteProbe) -> None:
    probe.stop.set()
    await asyncio.to_thread(probe.thread.join, 15)


async def test_leader_aware_defragmentation_then_leader_in_place_baseline(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    await rkube.create(ETCDS, etcd_manifest(NAME, ns, 3, etcd={"enableGRPCGateway": True}))
    await wait_etcd(rkube, ns, NAME, timeout=600, members=3)
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, NAME)
    await until(lambda: ctl.put("/e2e/before", "1"), timeout=60, what="a first write")
    urls = {pod: f"http://{ip}:2379" for pod, ip in (await pod_ips(rkube, ns, NAME)).items()}
    assert len(urls) == 3, urls
    any_url = next(iter(urls.values()))
    clock = Stopwatch()
    await asyncio.to_thread(fill_small, any_url, "/e2e/live/")
    await asyncio.to_thread(fragment, any_url, "/e2e/garbage/")
    before = await asyncio.to_thread(statuses, urls)
    figures["defrag: fill + fragment, s"] = clock()
    figures["defrag: db MiB allocated/in use before leader-aware run"] = sizes(before)

    # 1. leader-aware
    first_leader = leader_of(before)
    probe = WriteProbe(ctl)
    on_leader = WriteProbe(ctl.at(urls[first_leader]))  # the leader's own clients
    probe.thread.start()
    on_leader.thread.start()
    try:
        await probe_window(probe, "before the task")
        clock = Stopwatch()
        task = {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND_ETCD_OPS_TASK,
            "metadata": {"name": "defrag", "namespace": ns},
            "spec": {"etcdName": NAME, "config": {"defragmentation": {}}},
        }
        await rkube.create(ETCD_OPS_TASKS, task)
        done = await wait_task(rkube, ns, "defrag", timeout=300)
        took = clock()
        await probe_window(probe, "after the task")
    finally:
        await stop(probe)
        await stop(on_leader)
    after = await asyncio.to_thread(statuses, urls)
    status = done["status"]
    steps = status.get("steps") or []
    summary = status.get("defragmentation") or {}
    defrags = [s for s in steps if s["name"].startswith("Defragment/")]
    figures["defrag leader-aware: task s; steps"] = f"{took}; " + ", ".join(
        f"{s['name']} {s['state']} {s.get('details')}" for s in steps
    )
    figures["defrag leader-aware: db MiB allocated/in use after"] = sizes(after)
    figures["defrag leader-aware: probe (whole window)"] = probe.summary()
    figures[f"defrag leader-aware: probe pinned to the first leader {first_leader}"] = on_leader.summary()
    print(f"\nleader-aware: {took}s, {probe.summary()}\nsteps: {json.dumps(steps, indent=1)}\nsummary: {summary}")

    leader_before = summary.get("leaderBefore")
    assert leader_before in urls, summary
    assert [s["state"] for s in defrags] == ["Succeeded"] * 3, steps
    assert sorted(s["name"].split("/", 1)[1] for s in defrags) == sorted(urls), steps
    assert defrags[-1]["name"] == f"Defragment/{leader_before}", f"the leader {leader_before} was not last: {steps}"
    moves = [i for i, s in enumerate(steps) if s["name"] == f"MoveLeader/{leader_before}" and s["state"] == "Succeeded"]
    assert moves and moves[0] < steps.index(defrags[-1]), f"no leadership move before the former leader: {steps}"
    for step in defrags:
        d = step["details"]
        assert int(d["dbSizeAfter"]) < int(d["dbSizeBefore"]), step
    for pod in urls:
        assert int(after[pod]["dbSize"]) < int(before[pod]["dbSize"]), (pod, sizes(before), sizes(after))
    assert leader_of(after) != leader_before, "leadership should have moved away from the former leader"
    assert probe.writes > 2 * SETTLE_WRITES
    assert probe.longest_gap < STALL_BOUND, f"writes stalled for {probe.longest_gap:.1f}s (bound {STALL_BOUND}s)"

    # 2. baseline: the leader defragmented in place, as the sidecar's schedule does on the leader's member
    await asyncio.to_thread(fragment, any_url, "/e2e/garbage2/")
    before = await asyncio.to_thread(statuses, urls)
    leader = leader_of(before)
    figures["defrag baseline: db MiB allocated/in use before"] = sizes(before)
    defrag_ctl = Etcdctl(ctl.binary, (urls[leader],), timeout=120)
    follower = next(pod for pod in sorted(urls) if pod != leader)
    probe = WriteProbe(ctl)
    pinned = WriteProbe(ctl.at(urls[follower]))  # does a client of a follower wait for the leader's defrag?
    on_leader = WriteProbe(ctl.at(urls[leader]))
    for p in (probe, pinned, on_leader):
        p.thread.start()
    try:
        await probe_window(probe, "before the in-place defragmentation")
        clock = Stopwatch()
        await asyncio.to_thread(defrag_ctl.run, "defrag")
        took = clock()
        await probe_window(probe, "after the in-place defragmentation")
    finally:
        for p in (probe, pinned, on_leader):
            await stop(p)
    after = await asyncio.to_thread(statuses, urls)
    figures["defrag baseline (leader in place, etcdctl defrag): s"] = took
    figures["defrag baseline: db MiB allocated/in use after"] = sizes(after)
    figures["defrag baseline: probe (whole window)"] = probe.summary()
    figures[f"defrag baseline: probe pinned to follower {follower} (same window)"] = pinned.summary()
    figures[f"defrag baseline: probe pinned to the leader {leader} (same window)"] = on_leader.summary()
    print(f"\nbaseline: leader {leader} in place, {took}s, {probe.summary()}; follower {follower}: {pinned.summary()}")
    assert int(after[leader]["dbSize"]) < int(before[leader]["dbSize"]), (sizes(before), sizes(after))
    assert leader_of(after) == leader, "the in-place baseline must not have moved leadership"
