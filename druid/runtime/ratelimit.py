"""Workqueue rate limiters with client-go semantics (`util/workqueue/default_rate_limiters.go`).

All delays are in seconds (floats). Limiters are synchronous and meant to be used from one event
loop; they hold no locks. Time comes from an injectable monotonic clock so tests are deterministic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

Monotonic = Callable[[], float]
"""A monotonic clock function returning seconds: `time.monotonic`, `loop.time`, or the bound
`monotonic` method of a `druid.runtime.clock.Clock`."""

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Record one more failure of `item` and return how long to wait before retrying it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking `item`: its failure history is cleared."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many failures of `item` are on record."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-item exponential backoff: the n-th failure (from 0) waits `base * 2**n`, capped at `max_delay`."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        try:
            backoff = math.ldexp(self.base_delay, exp)  # base * 2**exp, exact for powers of two
        except OverflowError:
            return self.max_delay
        return min(backoff, self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """A global token bucket shared by all items, with `golang.org/x/time/rate` `Reserve()` semantics.

    The bucket starts full (`burst` tokens) and refills at `qps` tokens per second up to `burst`.
    Every `when` takes one token, even when none is left: the balance goes negative and the returned
    delay is the time until the debt is paid off. A burst of N > `burst` retries therefore gets
    delays 0 (x `burst`), 1/qps, 2/qps, ... `qps = math.inf` disables limiting.
    """

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, clock: Monotonic = time.monotonic) -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def _advance(self, now: float) -> float:
        """Tokens available at `now` (refilled since the last update, capped at burst)."""
        last = min(self._last, now)  # a clock that goes backwards refills nothing
        return min(self._tokens + (now - last) * self.qps, float(self.burst))

    def when(self, item: Hashable) -> float:
        if math.isinf(self.qps):
            return 0.0
        now = self._clock()
        tokens = self._advance(now) - 1.0
        self._tokens = tokens
        self._last = now
        return -tokens / self.qps if tokens < 0 else 0.0

    def tokens(self) -> float:
        """The token balance right now (negative while future tokens are reserved)."""
        return self._advance(self._clock())

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """Asks every child; `when` and `num_requeues` return the largest answer, `forget` goes to all."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("at least one limiter is required")
        self.limiters: tuple[RateLimiter, ...] = limiters

    def when(self, item: Hashable) -> float:
        return max([limiter.when(item) for limiter in self.limiters])  # every child must see the call

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(
    *,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    clock: Monotonic = time.monotonic,
) -> MaxOfRateLimiter:
    """client-go `DefaultTypedControllerRateLimiter`: max(per-item 5 ms..1000 s, global bucket 10 qps/100).

    The cap is configurable because of kubernetes/kubernetes#132805 (spurious triggers reach it fast).
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay, max_delay),
        BucketRateLimiter(qps, burst, clock),
    )
