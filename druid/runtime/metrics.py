"""Prometheus metrics of the runtime, with the exact controller-runtime names and labels.

`REGISTRY` is the registry served at `/metrics`. Metric families are created lazily, once per
registry, by a factory function; pass another registry (tests do) to get an independent set.
To add a group of metrics, write a `_create_<group>(registry)` factory and a public accessor that
calls `families(registry, _create_<group>)`, as `workqueue_metrics` does.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Without this every counter and histogram also exports a `*_created` series.
prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
"""The process-wide registry served at /metrics."""


def add_process_collectors(registry: CollectorRegistry) -> CollectorRegistry:
    """process_* (memory, CPU, fds), python_gc_* and python_info series, as the default registry has."""
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry


add_process_collectors(REGISTRY)

_T = TypeVar("_T")
_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[Callable[..., Any], Any]] = weakref.WeakKeyDictionary()


def families(registry: CollectorRegistry | None, factory: Callable[[CollectorRegistry], _T]) -> _T:
    """The metric families `factory` registers in `registry` (default `REGISTRY`), created once."""
    reg = REGISTRY if registry is None else registry
    per_registry = _families.setdefault(reg, {})
    if factory not in per_registry:
        per_registry[factory] = factory(reg)
    result: _T = per_registry[factory]
    return result


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Go `prometheus.ExponentialBuckets`: start, start*factor, ... (count values).

    Computed by repeated multiplication as Go does, so the `le` labels match Go exporters exactly
    (for example `9.999999999999999e-06`, not `1e-05`).
    """
    buckets = []
    for _ in range(count):
        buckets.append(start)
        start *= factor
    return tuple(buckets)


# client-go / controller-runtime workqueue histograms: ExponentialBuckets(10e-9, 10, 12) = 1e-8 .. 1e3 s.
WORKQUEUE_DURATION_BUCKETS = exponential_buckets(10e-9, 10, 12)


@dataclass(frozen=True)
class WorkqueueMetrics:
    """controller-runtime `pkg/internal/metrics/workqueue.go`. `name` and `controller` carry the same
    value; `priority` on depth is "" because this queue has no priorities."""

    depth: Gauge
    adds: Counter
    queue_duration: Histogram
    work_duration: Histogram
    unfinished_work: Gauge
    longest_running_processor: Gauge
    retries: Counter


def _create_workqueue(registry: CollectorRegistry) -> WorkqueueMetrics:
    labels = ("name", "controller")
    return WorkqueueMetrics(
        depth=Gauge(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            (*labels, "priority"),
            registry=registry,
        ),
        adds=Counter("workqueue_adds_total", "Total number of adds handled by workqueue", labels, registry=registry),
        queue_duration=Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            registry=registry,
            buckets=WORKQUEUE_DURATION_BUCKETS,
        ),
        work_duration=Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            labels,
            registry=registry,
            buckets=WORKQUEUE_DURATION_BUCKETS,
        ),
        unfinished_work=Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
            "threads by observing the rate at which this increases.",
            labels,
            registry=registry,
        ),
        longest_running_processor=Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels,
            registry=registry,
        ),
        retries=Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", labels, registry=registry
        ),
    )


def workqueue_metrics(registry: CollectorRegistry | None = None) -> WorkqueueMetrics:
    """The workqueue_* families registered in `registry` (default `REGISTRY`)."""
    return families(registry, _create_workqueue)
