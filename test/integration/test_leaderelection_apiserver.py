"""LeaderElector against the real API server: in-process electors with short timings, then separate
processes with the default 15/10/2 timings (issue "Controller runtime", acceptance 3)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import micro_time
from druid.runtime.leaderelection import LeaderElector, lease_spec
from druid.runtime.objects import LEASES
from druid.testing.controlplane import ControlPlane
from druid.testing.process import die_with_parent
from druid.testing.wait import eventually

FAST = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}
LOCK = "lock"

MakeElector = Callable[..., Awaitable[LeaderElector]]


@pytest.fixture
async def make_elector(control_plane: ControlPlane, namespace: str) -> AsyncIterator[MakeElector]:
    """Electors on ``namespace/lock`` with the short timings, each with its own client (own pool)."""
    clients: list[Kube] = []

    async def make(identity: str, **kw: Any) -> LeaderElector:
        k = await Kube.connect(str(control_plane.kubeconfig), timeout=10, registry=kw.pop("client_registry", None))
        clients.append(k)
        return LeaderElector(k, namespace, LOCK, identity, **{"registry": CollectorRegistry(), **FAST, **kw})

    yield make
    for k in clients:
        await k.close()


@contextlib.asynccontextmanager
async def running(*electors: LeaderElector) -> AsyncIterator[dict[str, tuple[asyncio.Event, asyncio.Task[bool]]]]:
    """``run(stop)`` each elector in a task; cancel leftovers (a crash: no release) on exit."""
    tasks = {}
    for e in electors:
        stop = asyncio.Event()
        tasks[e.identity] = (stop, asyncio.create_task(e.run(stop)))
    try:
        yield tasks
    finally:
        for _, t in tasks.values():
            t.cancel()
        await asyncio.gather(*(t for _, t in tasks.values()), return_exceptions=True)


async def the_leader(*electors: LeaderElector) -> LeaderElector:
    async def one() -> LeaderElector | None:
        leaders = [e for e in electors if e.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    leader = await eventually(one, timeout=10, what="exactly one leader")
    assert leader is not None
    return leader


async def test_exactly_one_leads_and_crash_fails_over_after_lease_duration(
    make_elector: MakeElector, kube: Kube, namespace: str
) -> None:
    seen: list[str] = []
    a = await make_elector("a", on_new_leader=seen.append)
    b = await make_elector("b", on_new_leader=seen.append)
    async with running(a, b) as tasks:
        leader = await the_leader(a, b)
        other = b if leader is a else a
        lease = await kube.get(LEASES, LOCK, namespace)
        assert lease["spec"]["holderIdentity"] == leader.identity and lease["spec"]["leaseDurationSeconds"] == 3
        # Over several renew periods there is never a second leader, and the standby knows who leads.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert [e.is_leader for e in (a, b)].count(True) == 1
            await asyncio.sleep(0.05)
        assert other.leader == leader.identity and leader.identity in seen
        # Crash: the leader stops renewing without releasing.
        tasks[leader.identity][1].cancel()
        crashed = time.monotonic()
        await eventually(lambda: _true(other.is_leader), timeout=10, what="failover")
        took = time.monotonic() - crashed
        # Not before the lease expired by the standby's observation (last renew ≤ retry period + RTT
        # before the crash), not much after expiry + one jittered retry.
        assert 3 - 0.5 - 0.3 <= took <= 3 + 0.5 * 2.2 + 1.5, took
        after = await kube.get(LEASES, LOCK, namespace)
        assert after["spec"]["holderIdentity"] == other.identity
        assert after["spec"]["leaseTransitions"] == lease["spec"]["leaseTransitions"] + 1
        assert after["spec"]["acquireTime"] != lease["spec"]["acquireTime"]


async def test_release_hands_over_fast(make_elector: MakeElector, kube: Kube, namespace: str) -> None:
    a = await make_elector("a")
    b = await make_elector("b")
    async with running(a, b) as tasks:
        leader = await the_leader(a, b)
        other = b if leader is a else a
        stop, task = tasks[leader.identity]
        before = await kube.get(LEASES, LOCK, namespace)
        stop.set()
        released = time.monotonic()
        assert await task is True and not leader.is_leader
        await eventually(lambda: _true(other.is_leader), timeout=5, what="handover")
        assert time.monotonic() - released <= 0.5 * 2.2 + 1.0
        after = await kube.get(LEASES, LOCK, namespace)
        assert after["spec"]["holderIdentity"] == other.identity
        assert after["spec"]["leaseTransitions"] == before["spec"]["leaseTransitions"] + 1


async def test_release_record(make_elector: MakeElector, kube: Kube, namespace: str) -> None:
    reg = CollectorRegistry()
    a = await make_elector("a", registry=reg)
    gauge = {"name": LOCK}
    async with running(a) as tasks:
        await eventually(lambda: _true(a.is_leader), timeout=10, what="a leads")
        assert reg.get_sample_value("leader_election_master_status", gauge) == 1
        held = await kube.get(LEASES, LOCK, namespace)
        stop, task = tasks["a"]
        stop.set()
        assert await task is True
    assert reg.get_sample_value("leader_election_master_status", gauge) == 0
    spec = (await kube.get(LEASES, LOCK, namespace))["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert spec["acquireTime"] == spec["renewTime"] > held["spec"]["renewTime"]
    assert spec["leaseTransitions"] == held["spec"]["leaseTransitions"]


async def test_conflict_on_stale_resource_version_is_handled(
    make_elector: MakeElector, kube: Kube, namespace: str
) -> None:
    requests = CollectorRegistry()
    a = await make_elector("a", client_registry=requests)
    async with running(a):
        await eventually(lambda: _true(a.is_leader), timeout=10, what="a leads")
        held = await kube.get(LEASES, LOCK, namespace)
        # Another writer moves the resourceVersion: a's next optimistic PUT gets 409, it re-reads and renews.
        await kube.merge_patch(LEASES, LOCK, {"metadata": {"labels": {"touched": "yes"}}}, namespace)

        async def renewed() -> bool:
            spec = (await kube.get(LEASES, LOCK, namespace))["spec"]
            return bool(spec["renewTime"] > held["spec"]["renewTime"])

        await eventually(renewed, timeout=5, what="renew after the conflict")
        conflicts = {"code": "409", "method": "PUT", "host": str(a.kube.host)}
        assert requests.get_sample_value("rest_client_requests_total", conflicts) == 1
        assert a.is_leader
        # A competitor that read the lease before a's latest renew cannot write its stale copy.
        b = await make_elector("b")
        assert not await b.try_acquire_or_renew()
        held = await kube.get(LEASES, LOCK, namespace)
        await eventually(renewed, timeout=5, what="another renew")
        now = micro_time(b.clock.now())
        with pytest.raises(ApiError) as info:
            await b._put(lease_spec("b", 3, now, now, 1))
        assert info.value.conflict and a.is_leader


async def test_renew_failure_is_loss_of_leadership(make_elector: MakeElector, kube: Kube, namespace: str) -> None:
    lost: list[bool] = []
    a = await make_elector("a", on_stopped_leading=lambda: lost.append(True))
    async with running(a) as tasks:
        await eventually(lambda: _true(a.is_leader), timeout=10, what="a leads")
        lease = await kube.get(LEASES, LOCK, namespace)
        lease["spec"]["holderIdentity"] = "intruder"
        lease["spec"]["leaseDurationSeconds"] = 60
        await kube.replace(LEASES, lease)
        assert await asyncio.wait_for(tasks["a"][1], timeout=5) is False
    assert lost == [True] and not a.is_leader and a.leader == "intruder"


async def _true(value: bool) -> bool:
    return value


# ---------------------------------------------------------------------- acceptance 3: separate processes

ElectorArgv = Callable[[str, str, Path], list[str]]
"""(namespace, identity, output file) -> argv of one candidate process."""

# 3 crash failovers (~15-19 s each) and 7 graceful handovers (~2-4 s each).
SCHEDULE = ("kill", "term", "term", "kill", "term", "term", "kill", "term", "term", "term")


@pytest.fixture
def elector_argv(control_plane: ControlPlane, crds: list[str]) -> ElectorArgv:
    """Real manager processes (`druid run`) with leader election at the default 15/10/2 timings."""

    def argv(namespace: str, identity: str, log: Path) -> list[str]:
        return [
            sys.executable, "-m", "druid.cli.main", "run", "--kubeconfig", str(control_plane.kubeconfig),
            "--enable-leader-election", "--leader-election-namespace", namespace,
            "--metrics-bind-address", "127.0.0.1", "--metrics-port", "0",
            "--probe-bind-address", "127.0.0.1", "--probe-port", "0",
        ]  # fmt: skip

    return argv


# druid's JSON log events → the leadership events this test reasons about.
_EVENTS = {
    "leader work started": "started",
    "leader work stopped": "stopped",
    "new leader observed": "new_leader",
    "lease released": "released",
}


def druid_events(text: str) -> list[dict[str, Any]]:
    """Leadership events from a `druid run` JSON log, with wall-clock ``time`` as epoch seconds."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        kind = _EVENTS.get(entry.get("event", ""))
        if kind is None:
            continue
        event = {"event": kind, "time": datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()}
        if kind == "new_leader":
            event["leader"] = str(entry.get("leader", "")).rsplit("_", 1)[0]  # identity = <POD_NAME>_<uuid>
        elif kind == "stopped":
            event["reason"] = {"shutdown": "signal"}.get(entry.get("reason", ""), entry.get("reason"))
        elif kind == "released":
            event["ok"] = True
        out.append(event)
    return out


@dataclass
class Candidate:
    identity: str
    log: Path
    proc: subprocess.Popen[bytes]
    killed_at: float | None = None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [e for e in druid_events(text) if name is None or e["event"] == name]

    def leading(self) -> bool:
        kinds = [e["event"] for e in self.events() if e["event"] in ("started", "stopped")]
        return self.killed_at is None and bool(kinds) and kinds[-1] == "started"

    def interval(self) -> tuple[float, float] | None:
        started, stopped = self.events("started"), self.events("stopped")
        if not started:
            return None
        end = stopped[0]["time"] if stopped else self.killed_at
        assert end is not None, f"{self.identity} never stopped leading"
        return started[0]["time"], end

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


async def _exit_code(c: Candidate, timeout: float = 15) -> int:
    async def exited() -> tuple[int] | None:
        rc = c.proc.poll()
        return None if rc is None else (rc,)

    code = await eventually(exited, timeout=timeout, what=f"{c.identity} to exit")
    assert code is not None
    return code[0]


async def test_processes_fail_over_and_hand_over_without_overlap(
    elector_argv: ElectorArgv, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    candidates: list[Candidate] = []

    def spawn() -> Candidate:
        identity = f"candidate-{len(candidates)}"
        log = tmp_path / f"{identity}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                elector_argv(namespace, identity, log),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                env={**os.environ, "POD_NAME": identity},
            )  # fmt: skip
        candidates.append(Candidate(identity, log, proc))
        return candidates[-1]

    async def sole_leader() -> Candidate | None:
        leaders = [c for c in candidates if c.leading()]
        assert len(leaders) <= 1, [c.identity for c in leaders]
        return leaders[0] if leaders else None

    def observes(c: Candidate, leader: str) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return any(e["leader"] == leader for e in c.events("new_leader"))

        return probe

    def leads(c: Candidate) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return c.leading()

        return probe

    async def renew_time() -> str:
        return str((await kube.get(LEASES, "druid-leader-election", namespace))["spec"]["renewTime"])

    def renewed_since(before: str) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return await renew_time() != before

        return probe

    failovers: list[float] = []
    handovers: list[float] = []
    try:
        spawn(), spawn()
        first = await eventually(sole_leader, timeout=30, what="a first leader")
        assert first is not None
        leader = first
        for action in SCHEDULE:
            (standby,) = [c for c in candidates if c.proc.poll() is None and c is not leader]
            await eventually(observes(standby, leader.identity), timeout=15, what="standby sees leader")
            assert await sole_leader() is leader
            if action == "kill":  # crash at a random phase of the standby's polling: after a renew it has not seen
                await eventually(renewed_since(str(await renew_time())), timeout=10, what="a renew")
            t0 = time.time()
            if action == "kill":
                leader.proc.kill()
                leader.proc.wait(10)
                leader.killed_at = time.time()  # the killed process cannot log: its interval ends here
            else:
                leader.proc.send_signal(signal.SIGTERM)
            await eventually(leads(standby), timeout=30, what=f"takeover after {action}")
            assert await sole_leader() is standby
            took = standby.events("started")[0]["time"] - t0
            if action == "kill":
                failovers.append(took)
                assert took <= 20, f"failover took {took:.2f}s"
            else:
                handovers.append(took)
                assert await _exit_code(leader) == 0, leader.output()
                assert [e["reason"] for e in leader.events("stopped")] == ["signal"]
                assert [e["ok"] for e in leader.events("released")] == [True], leader.output()
                assert took < 5, f"handover took {took:.2f}s"
            leader = standby
            spawn()
        # Wind down: the standby first (it never leads), then the leader releases with nobody to take over.
        (standby,) = [c for c in candidates if c.proc.poll() is None and c is not leader]
        await eventually(observes(standby, leader.identity), timeout=15, what="standby sees leader")
        standby.proc.send_signal(signal.SIGTERM)
        assert await _exit_code(standby) == 0, standby.output()
        leader.proc.send_signal(signal.SIGTERM)
        assert await _exit_code(leader) == 0, leader.output()
    finally:
        for c in candidates:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait(10)

    intervals = sorted((iv, c.identity) for c in candidates if (iv := c.interval()) is not None)
    assert len(intervals) == len(SCHEDULE) + 1 == len({who for _, who in intervals})
    gaps = [nxt[0][0] - cur[0][1] for cur, nxt in itertools.pairwise(intervals)]
    overlaps = [(a[1], b[1], -gap) for (a, b), gap in zip(itertools.pairwise(intervals), gaps, strict=True) if gap < 0]
    assert not overlaps, f"leadership intervals overlap: {overlaps}"
    print(
        f"\nleader election: {len(gaps)} transitions; failover after kill -9: "
        f"{', '.join(f'{t:.2f}' for t in failovers)} s; handover after SIGTERM: "
        f"{', '.join(f'{t:.2f}' for t in handovers)} s; smallest gap between intervals {min(gaps):.3f} s"
    )
