"""An asyncio workqueue with the client-go contract (`util/workqueue`: queue, delaying, rate limiting).

* Fair: ready keys come out in FIFO order.
* Stingy: a key is never handed to two workers at once, and adds of a key that is already waiting
  collapse into one.
* A key added while a worker holds it is queued again when the worker calls `done`.

Every operation except `get` and `shutdown_with_drain` is synchronous. The queue must be used from a
single event loop (no locks); `add_after` and `add_rate_limited` need that loop to be running.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Hashable
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from druid.runtime.metrics import workqueue_metrics
from druid.runtime.ratelimit import Monotonic, RateLimiter, default_controller_rate_limiter

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and no ready key is left."""


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Gauge(Protocol):
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...


class _Histogram(Protocol):
    def observe(self, amount: float) -> None: ...


class _NoMetric:
    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


class WorkQueue(Generic[K]):
    """Rate-limited, delaying workqueue of hashable keys.

    `name` labels the workqueue_* metrics (`name` and `controller` both get it); an empty name
    disables metrics, as an unnamed client-go queue does. `clock` is monotonic seconds and drives
    delays, metrics and the default rate limiter (max of 5 ms..1000 s per key and 10 qps/100 burst).
    Delay timers are armed on the running loop for `ready_at - clock()`, so `clock` must advance at the
    loop's pace; for virtual time in tests, run a loop with a virtual `time()` and pass `loop.time`.
    """

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Monotonic = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._limiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock=clock)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> time the worker got it
        self._added_at: dict[K, float] = {}  # key -> time it became dirty, for queue latency
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shutting_down = False
        self._drain = False
        # Delayed keys: a heap of (ready_at, seq, key); `_waiting` holds the live entry per key.
        self._delayed: list[tuple[float, int, K]] = []
        self._waiting: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._init_metrics(registry)

    def _init_metrics(self, registry: CollectorRegistry | None) -> None:
        self._depth: _Gauge = _NoMetric()
        self._adds: _Counter = _NoMetric()
        self._retries: _Counter = _NoMetric()
        self._queue_duration: _Histogram = _NoMetric()
        self._work_duration: _Histogram = _NoMetric()
        if not self.name:
            return
        m = workqueue_metrics(registry)
        labels = (self.name, self.name)
        self._depth = m.depth.labels(*labels, "")
        self._adds = m.adds.labels(*labels)
        self._retries = m.retries.labels(*labels)
        self._queue_duration = m.queue_duration.labels(*labels)
        self._work_duration = m.work_duration.labels(*labels)
        # Computed at scrape time instead of client-go's 500 ms ticker: no task to manage, never stale.
        ref = weakref.ref(self)
        m.unfinished_work.labels(*labels).set_function(lambda: _in_flight_seconds(ref, longest=False))
        m.longest_running_processor.labels(*labels).set_function(lambda: _in_flight_seconds(ref, longest=True))

    # --- basic queue -------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Mark `key` as needing processing. Ignored after shutdown; collapses with a pending add."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._added_at.setdefault(key, self._clock())
        self._adds.inc()
        self._depth.inc()
        if key in self._processing:
            return  # `done` will queue it again
        self._queue.append(key)
        self._wake_one_getter()

    async def get(self) -> K:
        """Wait for a ready key and hand it to the caller, who must call `done(key)` afterwards.

        Raises `QueueShutDown` once the queue is shut down and empty.
        """
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one_getter()  # we were signalled but will not take the key: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        self._getters.remove(waiter)
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        now = self._clock()
        self._processing[key] = now
        self._depth.dec()
        self._queue_duration.observe(max(0.0, now - self._added_at.pop(key, now)))
        return key

    def done(self, key: K) -> None:
        """Finish processing `key`. If it was added meanwhile it is queued again. Unknown keys are ignored."""
        started = self._processing.pop(key, None)
        if started is None:
            return
        self._work_duration.observe(max(0.0, self._clock() - started))
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one_getter()
        elif not self._processing:
            self._wake_drain_waiters()

    @contextlib.asynccontextmanager
    async def item(self) -> AsyncIterator[K]:
        """`async with queue.item() as key:` gets a key and always calls `done(key)`, even on errors."""
        key = await self.get()
        try:
            yield key
        finally:
            self.done(key)

    def len(self) -> int:
        """Number of keys ready to be handed out (not counting in-flight or delayed keys)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self) -> None:
        """Stop accepting adds and drop delayed keys. Workers drain the ready keys, then get `QueueShutDown`."""
        self._drain = False  # as client-go: a plain ShutDown releases a pending drain
        self._begin_shutdown()
        self._wake_drain_waiters()

    async def shutdown_with_drain(self, timeout: float | None = None) -> bool:
        """Like `shutdown`, then wait until every handed-out key is `done`.

        Returns False if `timeout` (seconds) expired first or a plain `shutdown` cut the wait short.
        """
        self._drain = True
        self._begin_shutdown()
        try:
            async with asyncio.timeout(timeout):
                while self._processing and self._drain:
                    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._drain_waiters.append(waiter)
                    await waiter
        except TimeoutError:
            pass
        return not self._processing

    def _begin_shutdown(self) -> None:
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._delayed.clear()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake_one_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- delaying queue ----------------------------------------------------------------------------

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds (now if `delay <= 0`). If it is already waiting, the earlier
        time wins. Counts workqueue_retries_total on every call, as client-go does."""
        if self._shutting_down:
            return
        self._retries.inc()
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock() + delay
        current = self._waiting.get(key)
        if current is not None and current[0] <= ready_at:
            return
        seq = next(self._seq)
        self._waiting[key] = (ready_at, seq)
        heapq.heappush(self._delayed, (ready_at, seq, key))
        self._arm_timer()

    def _drop_stale_heads(self) -> None:
        while self._delayed:
            ready_at, seq, key = self._delayed[0]
            if self._waiting.get(key) == (ready_at, seq):
                return
            heapq.heappop(self._delayed)

    def _arm_timer(self) -> None:
        """Keep one timer armed for the earliest delayed key."""
        self._drop_stale_heads()
        if not self._delayed:
            return
        head = self._delayed[0][0]
        if self._timer is not None:
            if self._timer_due <= head:
                return
            self._timer.cancel()
        self._timer_due = head
        self._timer = asyncio.get_running_loop().call_later(max(0.0, head - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._clock()
        while True:
            self._drop_stale_heads()
            if not self._delayed or self._delayed[0][0] > now:
                break
            _, _, key = heapq.heappop(self._delayed)
            del self._waiting[key]
            self.add(key)
        self._arm_timer()

    # --- rate limiting queue -----------------------------------------------------------------------

    def add_rate_limited(self, key: K) -> None:
        """Add `key` after the delay the rate limiter gives it (counts one more failure)."""
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: K) -> None:
        """Clear the rate limiter's failure history of `key`. Does not call `done`."""
        self._limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._limiter.num_requeues(key)


def _in_flight_seconds(ref: weakref.ReferenceType[WorkQueue[K]], *, longest: bool) -> float:
    """Sum (or max) of the ages of the keys being processed; 0 once the queue is gone."""
    queue = ref()
    if queue is None:
        return 0.0
    now = queue._clock()
    ages = [now - started for started in list(queue._processing.values())]
    if not ages:
        return 0.0
    return max(ages) if longest else sum(ages)
