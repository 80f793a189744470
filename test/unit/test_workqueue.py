"""WorkQueue contract tests. Most run on an event loop with virtual time: the loop's clock jumps
straight to the next timer instead of sleeping, so delays of minutes cost nothing and every run is
deterministic (which hypothesis needs to shrink failures)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from druid.runtime.metrics import WORKQUEUE_DURATION_BUCKETS
from druid.runtime.ratelimit import ItemExponentialFailureRateLimiter
from druid.runtime.workqueue import QueueShutDown, WorkQueue

T = TypeVar("T")
TICK = 1 / 1024  # dyadic time unit: sums of ticks are exact floats, so ties are real ties


class _VirtualSelector(selectors.DefaultSelector):
    """Polls without blocking; when the loop would wait for a timer, advances virtual time instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is armed")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)


def now() -> float:
    return asyncio.get_running_loop().time()


def new_queue(name: str = "", registry: CollectorRegistry | None = None, **kw: Any) -> WorkQueue[str]:
    return WorkQueue(name, clock=asyncio.get_running_loop().time, registry=registry, **kw)


async def blocked(q: WorkQueue[str], wait: float = 1.0) -> bool:
    """True if `get` hands out nothing within `wait` (virtual) seconds."""
    try:
        async with asyncio.timeout(wait):
            key = await q.get()
    except TimeoutError:
        return True
    q.done(key)
    return False


KEYS = st.sampled_from("abcdef")


# --- stingy + no lost adds under random concurrency ------------------------------------------------


class RecordingQueue(WorkQueue[str]):
    """Logs every add that reaches the queue, including the ones fired by the delay timer."""

    def __init__(self, log: list[tuple[str, str]], **kw: Any) -> None:
        super().__init__(**kw)
        self.log = log

    def add(self, key: str) -> None:
        if not self.shutting_down:
            self.log.append(("add", key))
        super().add(key)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, st.just(0)),
        st.tuples(st.just("add_after"), KEYS, st.integers(1, 40)),
        st.tuples(st.just("add_rate_limited"), KEYS, st.just(0)),
        st.tuples(st.just("sleep"), st.just(""), st.integers(0, 30)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=OPS,
    workers=st.integers(1, 5),
    work_ticks=st.lists(st.integers(0, 20), min_size=1, max_size=10),
    readds=st.lists(st.booleans(), min_size=1, max_size=10),
)
def test_random_interleavings_keep_the_contract(
    ops: list[tuple[str, str, int]], workers: int, work_ticks: list[int], readds: list[bool]
) -> None:
    """Random producers and N workers: a key is never held by two workers; every start of a key is
    preceded by an add after its previous start (stingy); every add is followed by a start (no lost
    adds); everything drains on shutdown."""
    log: list[tuple[str, str]] = []

    async def main() -> None:
        clock = asyncio.get_running_loop().time
        q = RecordingQueue(log, clock=clock, rate_limiter=ItemExponentialFailureRateLimiter(TICK, 64 * TICK))
        active: set[str] = set()
        readd_budget = [20]

        async def worker() -> None:
            n = 0
            while True:
                try:
                    key = await q.get()
                except QueueShutDown:
                    return
                assert key not in active, f"{key!r} handed to two workers at once"
                active.add(key)
                log.append(("start", key))
                await asyncio.sleep(work_ticks[n % len(work_ticks)] * TICK)
                if readds[n % len(readds)] and readd_budget[0] > 0:
                    readd_budget[0] -= 1
                    q.add(key)  # re-added while processing
                n += 1
                active.remove(key)
                log.append(("done", key))
                q.done(key)

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        for op, key, ticks in ops:
            if op == "add":
                q.add(key)
            elif op == "add_after":
                log.append(("add_after", key))
                q.add_after(key, ticks * TICK)
            elif op == "add_rate_limited":
                log.append(("add_after", key))
                q.add_rate_limited(key)
            else:
                await asyncio.sleep(ticks * TICK)
        for _ in range(1000):  # settle: all delays fired and all work done
            await asyncio.sleep(1.0)
            if not active and q.len() == 0 and not q._waiting:
                break
        assert not active and q.len() == 0
        assert await q.shutdown_with_drain()
        await asyncio.gather(*tasks)

    run_virtual(main())

    assert sum(kind == "start" for kind, _ in log) == sum(kind == "done" for kind, _ in log)
    for key in {k for _, k in log}:
        events = [kind for kind, k in log if k == key]
        pending = False  # an add not yet covered by a start
        for kind in events:
            if kind in ("add", "add_after"):
                pending = True
            elif kind == "start":
                assert pending, f"{key!r} processed without an add since its last start: {events}"
                pending = False
        assert not pending, f"{key!r} add was lost: {events}"


# --- deduplication ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(adds=st.lists(KEYS, max_size=40))
def test_duplicate_adds_collapse_in_fifo_order(adds: list[str]) -> None:
    expected = list(dict.fromkeys(adds))  # first-add order, no duplicates

    async def main() -> None:
        registry = CollectorRegistry()
        q = new_queue("dedup", registry)
        for key in adds:
            q.add(key)
        assert q.len() == len(q) == len(expected)
        assert registry.get_sample_value("workqueue_adds_total", {"name": "dedup", "controller": "dedup"}) == len(
            expected
        )
        got = [await q.get() for _ in expected]
        assert got == expected
        for key in got:
            q.done(key)
        assert await blocked(q)

    run_virtual(main())


@settings(max_examples=100, deadline=None)
@given(readds=st.integers(0, 10), others=st.lists(st.sampled_from("xyz"), max_size=5))
def test_add_during_processing_reprocessed_exactly_once(readds: int, others: list[str]) -> None:
    async def main() -> None:
        q = new_queue()
        q.add("k")
        assert await q.get() == "k"
        for _ in range(readds):
            q.add("k")
        for key in others:
            q.add(key)
        # While "k" is held nobody else gets it, even with other keys flowing.
        seen = []
        while q.len():
            key = await q.get()
            seen.append(key)
            q.done(key)
        assert "k" not in seen and seen == list(dict.fromkeys(others))
        q.done("k")
        if readds:
            assert q.len() == 1
            assert await q.get() == "k"
            q.done("k")
        assert await blocked(q)

    run_virtual(main())


# --- delayed adds ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(calls=st.lists(st.tuples(KEYS, st.integers(1, 2000)), min_size=1, max_size=30))
def test_delayed_items_ready_in_due_order_earliest_wins(calls: list[tuple[str, int]]) -> None:
    winner: dict[str, tuple[int, int]] = {}  # key -> (due ticks, index of the call that set it)
    for index, (key, ticks) in enumerate(calls):
        if key not in winner or ticks < winner[key][0]:
            winner[key] = (ticks, index)
    expected = sorted(winner, key=lambda k: winner[k])

    async def main() -> None:
        registry = CollectorRegistry()
        q = new_queue("delayed", registry)
        for key, ticks in calls:
            q.add_after(key, ticks * TICK)
        assert q.len() == 0
        out = []
        for _ in expected:
            key = await q.get()
            out.append((key, now()))
            q.done(key)
        assert [k for k, _ in out] == expected
        for key, at in out:
            assert at == pytest.approx(winner[key][0] * TICK, abs=1e-9)
        assert await blocked(q, 10_000)
        retries = registry.get_sample_value("workqueue_retries_total", {"name": "delayed", "controller": "delayed"})
        assert retries == len(calls)

    run_virtual(main())


def test_later_add_after_does_not_postpone_and_add_is_immediate() -> None:
    async def main() -> None:
        q = new_queue()
        q.add_after("a", 5.0)
        q.add_after("a", 9.0)  # later: ignored
        q.add_after("b", 2.0)
        q.add_after("c", 0)  # non-positive delay: added now
        assert q.len() == 1
        assert await q.get() == "c"
        assert await q.get() == "b" and now() == 2.0
        assert await q.get() == "a" and now() == 5.0
        q.add_after("a", 3.0)  # "a" is being processed: the delayed add lands on dirty
        await asyncio.sleep(4.0)
        assert q.len() == 0  # still held
        q.done("a")
        assert await q.get() == "a"

    run_virtual(main())


def test_add_rate_limited_backs_off_exponentially_and_forget_resets() -> None:
    async def main() -> None:
        q = new_queue()
        for n in range(12):
            q.add_rate_limited("k")
            start = now()
            assert await q.get() == "k"
            assert now() - start == pytest.approx(0.005 * 2**n)
            q.done("k")
        assert q.num_requeues("k") == 12
        q.forget("k")
        assert q.num_requeues("k") == 0
        q.add_rate_limited("k")
        start = now()
        assert await q.get() == "k"
        assert now() - start == pytest.approx(0.005)

    run_virtual(main())


def test_rate_limited_burst_of_keys_is_spread_at_ten_per_second() -> None:
    async def main() -> None:
        q = new_queue()
        keys = [f"k{i}" for i in range(120)]
        for key in keys:
            q.add_rate_limited(key)
        times = []
        for _ in keys:
            key = await q.get()
            times.append(now())
            q.done(key)
        assert times[:100] == [pytest.approx(0.005)] * 100
        assert times[100:] == [pytest.approx(0.1 * i) for i in range(1, 21)]

    run_virtual(main())


# --- shutdown --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(hold=st.lists(st.integers(0, 500), min_size=1, max_size=8), queued=st.integers(0, 5))
def test_shutdown_with_drain_waits_for_in_flight(hold: list[int], queued: int) -> None:
    async def main() -> None:
        q = new_queue()
        keys = [f"held{i}" for i in range(len(hold))]
        for key in keys:
            q.add(key)
        got = [await q.get() for _ in keys]
        done_at: list[float] = []

        async def finish(key: str, ticks: int) -> None:
            await asyncio.sleep(ticks * TICK)
            q.add(key)  # ignored: shutting down
            done_at.append(now())
            q.done(key)

        tasks = [asyncio.create_task(finish(k, t)) for k, t in zip(got, hold, strict=True)]
        for i in range(queued):
            q.add(f"queued{i}")
        assert await q.shutdown_with_drain() is True
        assert len(done_at) == len(hold)
        assert now() == max(hold) * TICK == max(done_at)
        q.add("late")
        drained = [await q.get() for _ in range(queued)]  # ready keys are still handed out
        assert drained == [f"queued{i}" for i in range(queued)]
        for key in drained:
            q.done(key)
        with pytest.raises(QueueShutDown):
            await q.get()
        await asyncio.gather(*tasks)

    run_virtual(main())


def test_shutdown_with_drain_timeout_and_plain_shutdown_release() -> None:
    async def main() -> None:
        q = new_queue()
        q.add("stuck")
        await q.get()
        assert await q.shutdown_with_drain(timeout=3.0) is False
        assert now() == 3.0
        drain = asyncio.create_task(q.shutdown_with_drain())
        await asyncio.sleep(1.0)
        assert not drain.done()
        q.shutdown()  # as client-go: a plain ShutDown stops waiting for the drain
        assert await drain is False

    run_virtual(main())


def test_shutdown_wakes_waiting_getters_and_drops_delayed() -> None:
    async def main() -> None:
        q = new_queue()
        q.add_after("later", 1.0)
        getters = [asyncio.create_task(q.get()) for _ in range(3)]
        await asyncio.sleep(0)
        q.shutdown()
        for task in getters:
            with pytest.raises(QueueShutDown):
                await task
        q.add_after("later2", 1.0)
        q.add_rate_limited("x")
        await asyncio.sleep(5.0)
        assert q.len() == 0 and q.shutting_down

    run_virtual(main())


# --- asyncio specifics -----------------------------------------------------------------------------


def test_cancelled_getter_passes_its_wakeup_on() -> None:
    async def main() -> None:
        q = new_queue()
        first = asyncio.create_task(q.get())
        second = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.add("k")  # signals `first`
        first.cancel()  # ... which is cancelled before it runs
        assert await second == "k"
        with pytest.raises(asyncio.CancelledError):
            await first

    run_virtual(main())


def test_item_context_manager_calls_done_on_error() -> None:
    async def main() -> None:
        q = new_queue()
        q.add("k")
        with pytest.raises(RuntimeError):
            async with q.item() as key:
                q.add(key)
                raise RuntimeError("reconcile failed")
        assert await q.get() == "k"  # done() ran, so the re-add was queued

    run_virtual(main())


async def test_real_event_loop_delay_smoke() -> None:
    """On the real loop and clock: a tiny delay elapses and the key arrives, within a deadline."""
    q: WorkQueue[str] = WorkQueue()
    q.add_after("k", 0.01)
    async with asyncio.timeout(2.0):
        assert await q.get() == "k"
    q.done("k")
    q.shutdown()


# --- metrics ---------------------------------------------------------------------------------------


def test_metrics_follow_controller_runtime() -> None:
    registry = CollectorRegistry()
    labels = {"name": "etcd", "controller": "etcd"}

    def sample(name: str, extra: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, {**labels, **(extra or {})})

    async def main() -> None:
        q = new_queue("etcd", registry)
        assert sample("workqueue_adds_total") == 0  # series exist from the start
        q.add("a")
        q.add("b")
        q.add("a")
        assert sample("workqueue_adds_total") == 2
        assert sample("workqueue_depth", {"priority": ""}) == 2
        await asyncio.sleep(3.0)
        assert await q.get() == "a"
        assert sample("workqueue_depth", {"priority": ""}) == 1
        assert sample("workqueue_queue_duration_seconds_sum") == 3.0
        await asyncio.sleep(0.5)
        assert await q.get() == "b"
        await asyncio.sleep(2.0)
        assert sample("workqueue_unfinished_work_seconds") == 2.0 + 2.5
        assert sample("workqueue_longest_running_processor_seconds") == 2.5
        q.done("a")
        q.done("b")
        assert sample("workqueue_work_duration_seconds_count") == 2
        assert sample("workqueue_work_duration_seconds_sum") == 4.5
        assert sample("workqueue_unfinished_work_seconds") == 0
        q.add_after("a", 1.0)
        q.add_rate_limited("a")
        q.add_after("c", 0)  # counted too, though added at once
        assert sample("workqueue_retries_total") == 3
        assert sample("workqueue_queue_duration_seconds_bucket", {"le": "9.999999999999999e-06"}) == 0
        assert sample("workqueue_queue_duration_seconds_bucket", {"le": "1000.0"}) == 2

    run_virtual(main())
    assert len(WORKQUEUE_DURATION_BUCKETS) == 12
    assert WORKQUEUE_DURATION_BUCKETS[0] == 1e-8 and WORKQUEUE_DURATION_BUCKETS[-1] == 1000.0
    assert registry.get_sample_value("workqueue_adds_created", labels) is None  # _created disabled


def test_unnamed_queue_has_no_metrics() -> None:
    registry = CollectorRegistry()

    async def main() -> None:
        q = new_queue("", registry)
        q.add("a")

    run_virtual(main())
    assert list(registry.collect()) == []
