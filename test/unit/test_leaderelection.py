"""LeaderElector logic against an in-memory Lease store with resourceVersion semantics and a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from druid.runtime.client import ApiError
from druid.runtime.clock import micro_time, parse_time
from druid.runtime.leaderelection import LeaderElector, master_status, release_spec, validate_timings
from druid.runtime.objects import LEASES
from druid.testing.fakekube import FakeKube

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class LeaseKube(FakeKube):
    """The shared in-memory API with shortcuts for the one Lease ``ns/lock`` these tests elect on."""

    def __init__(self) -> None:
        super().__init__()
        self.before_put: Callable[[], None] | None = None

    @property
    def lease(self) -> dict[str, Any] | None:
        return self.object(LEASES, "lock", "ns")

    @property
    def calls(self) -> list[str]:
        return [method for method, _ in self.requests]

    def write(self, spec: dict[str, Any] | None = None, **meta: Any) -> None:
        """An external writer: replace spec fields and/or metadata, bumping the resourceVersion."""
        lease = self.lease
        assert lease is not None
        lease["metadata"].update(meta)
        lease["spec"].update(spec or {})
        self.add(LEASES, lease)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "PUT" and self.before_put is not None:
            self.before_put()
            self.before_put = None
        return await super().request(method, path, **kwargs)


def elector(kube: LeaseKube, clock: FakeClock, identity: str, **kw: Any) -> LeaderElector:
    kw.setdefault("registry", CollectorRegistry())
    return LeaderElector(kube, "ns", "lock", identity, clock=clock, **kw)  # type: ignore[arg-type]


@pytest.fixture
def kube() -> LeaseKube:
    return LeaseKube()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_validate_timings() -> None:
    validate_timings(15, 10, 2)
    validate_timings(3, 2, 0.5)
    for bad in [(10, 10, 2), (15, 2.4, 2), (15, 10, 0), (0.5, 0.4, 0.1), (15, 0, -1)]:
        with pytest.raises(ValueError):
            validate_timings(*bad)
    with pytest.raises(ValueError):
        LeaderElector(LeaseKube(), "ns", "lock", "", registry=CollectorRegistry())  # type: ignore[arg-type]


def test_micro_time_always_six_digits() -> None:
    assert micro_time(dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2030-01-02T03:04:05.000000Z"
    berlin = dt.timezone(dt.timedelta(hours=2))
    assert micro_time(dt.datetime(2030, 1, 2, 3, 4, 5, 7, tzinfo=berlin)) == "2030-01-02T01:04:05.000007Z"


def test_release_record_follows_client_go() -> None:
    observed = {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 4, "preferredHolder": "x"}
    now = "2030-01-01T00:00:00.000000Z"
    assert release_spec(observed, now) == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": 4,
    }


async def test_creates_missing_lease_and_leads(kube: LeaseKube, clock: FakeClock) -> None:
    reg = CollectorRegistry()
    started: list[bool] = []
    a = elector(kube, clock, "a", registry=reg, on_started_leading=lambda: started.append(True))
    assert reg.get_sample_value("leader_election_master_status", {"name": "lock"}) == 0
    assert await a.acquire()
    assert a.is_leader and started == [True] and kube.calls == ["GET", "POST"]
    assert reg.get_sample_value("leader_election_master_status", {"name": "lock"}) == 1
    assert master_status(reg) is master_status(reg)
    assert kube.lease is not None
    spec = kube.lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] and MICRO.match(spec["renewTime"])


async def test_renew_uses_fast_path_and_keeps_acquire_time(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert await a.try_acquire_or_renew()
    assert kube.lease is not None
    acquired = kube.lease["spec"]["acquireTime"]
    kube.requests.clear()
    clock.t += 2
    assert await a.try_acquire_or_renew()
    assert kube.calls == ["PUT"]  # no GET while the cached copy is current
    spec = kube.lease["spec"]
    assert spec["acquireTime"] == acquired and spec["renewTime"] > acquired and spec["leaseTransitions"] == 0


async def test_conflict_on_fast_path_falls_back_to_reading(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert await a.try_acquire_or_renew()
    kube.write(labels={"touched": "yes"})  # resourceVersion moves, spec unchanged
    kube.requests.clear()
    assert await a.try_acquire_or_renew()
    assert kube.calls == ["PUT", "GET", "PUT"]
    assert kube.lease is not None and kube.lease["metadata"]["labels"] == {"touched": "yes"}


async def test_standby_waits_a_full_lease_duration_of_local_observation(kube: LeaseKube, clock: FakeClock) -> None:
    leaders: list[str] = []
    a = elector(kube, clock, "a")
    b = elector(kube, clock, "b", on_new_leader=leaders.append)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    b._report_transition()
    assert leaders == ["a"] and b.leader == "a" and not b.is_leader
    # The remote renewTime is never compared with our clock: an ancient one is just "a change".
    clock.t += 10
    kube.write({"renewTime": "2000-01-01T00:00:00.000000Z"})
    assert not await b.try_acquire_or_renew()
    clock.t += 14.9
    assert not await b.try_acquire_or_renew()  # 14.9 s since the change was observed
    clock.t += 0.2
    assert await b.try_acquire_or_renew()
    assert kube.lease is not None
    spec = kube.lease["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == spec["renewTime"] == micro_time(clock.now())
    assert parse_time(spec["acquireTime"]) == clock.now()


async def test_stale_resource_version_loses_race(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    b = elector(kube, clock, "b")
    assert await a.try_acquire_or_renew()
    assert await a.release()
    # b read the released lease; a re-acquires between b's GET and PUT: b's PUT carries a stale RV.
    kube.before_put = lambda: kube.write({"holderIdentity": "a", "leaseDurationSeconds": 15})
    assert not await b.try_acquire_or_renew()
    assert kube.calls[-2:] == ["GET", "PUT"] and not b.is_leader
    assert not await b.try_acquire_or_renew()  # re-observes: held by a and not expired
    assert b.leader == "a"


async def test_release_hands_over_at_once(kube: LeaseKube, clock: FakeClock) -> None:
    stopped: list[bool] = []
    reg = CollectorRegistry()
    a = elector(kube, clock, "a", registry=reg, on_stopped_leading=lambda: stopped.append(True))
    b = elector(kube, clock, "b")
    assert await a.acquire()
    assert not await b.try_acquire_or_renew()
    clock.t += 1
    assert await a.release()
    assert stopped == [True] and not a.is_leader
    assert reg.get_sample_value("leader_election_master_status", {"name": "lock"}) == 0
    assert kube.lease is not None
    assert kube.lease["spec"] == release_spec({"leaseTransitions": 0}, micro_time(clock.now()))
    assert await b.try_acquire_or_renew()  # empty holder: no need to wait for expiry
    assert kube.lease["spec"]["leaseTransitions"] == 1
    kube.requests.clear()
    assert await a.release()  # no longer ours: read, nothing written
    assert kube.calls == ["GET"] and kube.lease["spec"]["holderIdentity"] == "b"


async def test_release_retries_on_conflict(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert await a.acquire()
    kube.before_put = lambda: kube.write(labels={"x": "y"})
    assert await a.release()
    assert kube.calls[-4:] == ["GET", "PUT", "GET", "PUT"]
    assert kube.lease is not None and kube.lease["spec"]["holderIdentity"] == ""


async def test_renew_loop_returns_when_another_holder_appears(kube: LeaseKube, clock: FakeClock) -> None:
    stopped: list[bool] = []
    a = elector(kube, clock, "a", on_stopped_leading=lambda: stopped.append(True))
    assert await a.acquire()
    kube.write({"holderIdentity": "intruder"})
    await a.renew_loop()
    assert not a.is_leader and stopped == [True] and a.leader == "intruder"


async def test_renew_loop_gives_up_after_renew_deadline(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert await a.acquire()
    start = clock.t
    kube.fail(ApiError(503, "ServiceUnavailable", "injected"), times=1000)
    await a.renew_loop()
    assert not a.is_leader
    assert 10 <= clock.t - start <= 10 + 2 + 2  # one retry period of sleep, then the 10 s deadline


async def test_healthy_follows_healthz_adaptor(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert a.healthy()
    assert await a.acquire()
    clock.t += 35
    assert a.healthy()
    clock.t += 0.1
    assert not a.healthy() and a.healthy(tolerance=30)


async def test_failing_hooks_do_not_break_election(kube: LeaseKube, clock: FakeClock) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("hook")

    async def aboom() -> None:
        raise RuntimeError("async hook")

    a = elector(kube, clock, "a", on_started_leading=aboom, on_new_leader=boom, on_stopped_leading=boom)
    assert await a.acquire()
    assert await a.release()


async def test_standby_retries_right_at_the_observed_expiry(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    b = elector(kube, clock, "b")
    assert await a.try_acquire_or_renew()
    start = clock.t
    assert await b.acquire()  # a never renews again
    assert 15 < clock.t - start <= 15.1  # not up to a jittered 4.4 s later


async def test_acquire_stops_when_asked(kube: LeaseKube, clock: FakeClock) -> None:
    stop = asyncio.Event()
    stop.set()
    assert not await elector(kube, clock, "a").acquire(stop)
    assert kube.calls == []


async def test_stalled_leader_gives_up_without_writing(kube: LeaseKube, clock: FakeClock) -> None:
    a = elector(kube, clock, "a")
    assert await a.acquire()
    clock.t += 16  # the event loop was blocked longer than the lease: someone else may lead by now
    kube.requests.clear()
    await a.renew_loop()
    assert not a.is_leader and kube.calls == []
