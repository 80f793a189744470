"""Rate limiters: delays follow the client-go formulas exactly (fake clock, no sleeping)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from druid.runtime.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- ItemExponentialFailureRateLimiter ----------------------------------------------------------


def test_exponential_default_sequence_and_cap() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("k") for _ in range(25)]
    assert delays[:5] == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert delays[17] == pytest.approx(655.36)  # 18th failure: 0.005 * 2**17
    assert delays[18:] == [1000.0] * 7  # capped from the 19th on
    assert sum(delays[:18]) + 1000.0 > 21 * 60  # ~21.8 min cumulative before the cap
    assert limiter.num_requeues("k") == 25


def test_exponential_forget_resets_only_that_item() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(3):
        limiter.when("a")
    limiter.when("b")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.num_requeues("b") == 1
    assert limiter.when("a") == 0.005
    assert limiter.when("b") == 0.01


def test_exponential_does_not_overflow_after_many_failures() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(3000):
        delay = limiter.when("k")
    assert delay == 1000.0


@settings(max_examples=200)
@given(
    base=st.sampled_from([0.001, 0.005, 0.1, 1.0]),
    cap=st.sampled_from([0.05, 60.0, 300.0, 1000.0]),
    ops=st.lists(st.tuples(st.sampled_from(["when", "forget"]), st.sampled_from("abc")), max_size=80),
)
def test_exponential_matches_formula(base: float, cap: float, ops: list[tuple[str, str]]) -> None:
    limiter = ItemExponentialFailureRateLimiter(base, cap)
    failures: dict[str, int] = {}
    for op, item in ops:
        if op == "when":
            n = failures.get(item, 0)
            assert limiter.when(item) == min(base * 2**n, cap)
            failures[item] = n + 1
        else:
            limiter.forget(item)
            failures.pop(item, None)
        assert limiter.num_requeues(item) == failures.get(item, 0)


# --- BucketRateLimiter --------------------------------------------------------------------------


def test_bucket_default_burst_then_ten_per_second() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(clock=clock)
    delays = [limiter.when(i) for i in range(130)]
    assert delays[:100] == [0.0] * 100
    assert delays[100:103] == [0.1, 0.2, 0.3]
    assert delays[129] == pytest.approx(3.0)
    assert limiter.num_requeues(1) == 0


@settings(max_examples=200)
@given(qps=st.sampled_from([0.5, 1.0, 3.0, 10.0, 250.0]), burst=st.integers(1, 150), n=st.integers(0, 400))
def test_bucket_burst_delays_frozen_clock(qps: float, burst: int, n: int) -> None:
    limiter = BucketRateLimiter(qps, burst, clock=FakeClock())
    for k in range(1, n + 1):  # the k-th reservation waits for the (k - burst)-th future token
        assert limiter.when("x") == max(0.0, (k - burst) / qps)


@settings(max_examples=200)
@given(qps=st.sampled_from([1.0, 10.0, 40.0]), burst=st.integers(1, 20), idle=st.floats(0, 100))
def test_bucket_refills_at_qps_up_to_burst(qps: float, burst: int, idle: float) -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps, burst, clock=clock)
    for _ in range(burst):
        assert limiter.when("x") == 0.0
    clock.advance(idle)
    refilled = min(idle * qps, burst)
    assert limiter.tokens() == pytest.approx(refilled, abs=1e-9)
    # The next reservation waits exactly for whatever fraction of a token is missing.
    assert limiter.when("x") == pytest.approx(max(0.0, (1 - refilled) / qps), abs=1e-9)


@settings(max_examples=200)
@given(
    qps=st.sampled_from([1.0, 10.0, 100.0]),
    burst=st.integers(1, 30),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_bucket_never_schedules_more_than_burst_plus_rate(qps: float, burst: int, gaps: list[float]) -> None:
    """Whatever the call pattern, retries scheduled to run by time T number at most burst + qps*(T - t0)."""
    clock = FakeClock(0.0)
    limiter = BucketRateLimiter(qps, burst, clock=clock)
    act_times = []
    for gap in gaps:
        clock.advance(gap)
        delay = limiter.when("x")
        assert delay >= 0
        act_times.append(clock.now + delay)
    assert act_times == sorted(act_times)  # reservations are served in order
    for i, t in enumerate(act_times):
        assert i + 1 <= burst + qps * t + 1e-6


def test_bucket_infinite_rate_never_waits() -> None:
    limiter = BucketRateLimiter(math.inf, 1, clock=FakeClock())
    assert [limiter.when("x") for _ in range(5)] == [0.0] * 5


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(0, 10)
    with pytest.raises(ValueError):
        BucketRateLimiter(10, 0)


# --- MaxOf and the default controller limiter ---------------------------------------------------


def test_max_of_asks_every_child_and_forgets_everywhere() -> None:
    clock = FakeClock()
    fast = ItemExponentialFailureRateLimiter(0.001, 10.0)
    slow = ItemExponentialFailureRateLimiter(0.5, 10.0)
    bucket = BucketRateLimiter(10, 1, clock=clock)
    limiter = MaxOfRateLimiter(fast, slow, bucket)
    assert limiter.when("a") == 0.5
    assert limiter.when("a") == 1.0
    assert limiter.when("b") == 0.5  # the bucket (debt 0.2 s) was consulted but is smaller
    assert bucket.tokens() == pytest.approx(-2.0)
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert fast.num_requeues("a") == slow.num_requeues("a") == 0
    assert limiter.num_requeues("b") == 1


def test_default_controller_limiter_single_key_is_exponential() -> None:
    limiter = default_controller_rate_limiter(clock=FakeClock())
    assert [limiter.when("k") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    limiter.forget("k")
    assert limiter.when("k") == 0.005


def test_default_controller_limiter_burst_of_distinct_keys_hits_bucket() -> None:
    limiter = default_controller_rate_limiter(clock=FakeClock())
    delays = [limiter.when(f"key-{i}") for i in range(150)]
    assert delays[:100] == [0.005] * 100  # first failures: per-item 5 ms dominates
    for k in range(101, 151):
        assert delays[k - 1] == pytest.approx(0.1 * (k - 100))


def test_default_controller_limiter_custom_cap() -> None:
    limiter = default_controller_rate_limiter(max_delay=30.0, clock=FakeClock())
    delays = [limiter.when("k") for _ in range(20)]
    assert max(delays) == 30.0
    assert delays[-1] == 30.0
