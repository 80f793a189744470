"""``etcddruid_compaction_*`` metrics (upstream ``internal/controller/compaction/metrics.go``).

Names, help texts (typos included), label names and buckets are upstream's. Upstream's ``init`` tries to
pre-create every label combination but, as ``etcd_namespace`` has no listed values, creates none: series
appear when first written, here too. ``compaction_metrics(registry)`` registers the families (once per
registry); call it at startup to have them registered even while the controller is disabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from druid.controllers.compaction import outcome as o
from druid.runtime import metrics

LABEL_SUCCEEDED = "succeeded"
LABEL_FAILURE_REASON = "failureReason"
LABEL_ETCD_NAMESPACE = "etcd_namespace"
_BASE = 60.0
DURATION_BUCKETS = (_BASE, 5 * _BASE, 10 * _BASE, 15 * _BASE, 20 * _BASE, 30 * _BASE)


@dataclass(frozen=True)
class CompactionMetrics:
    jobs_total: Counter
    full_snapshot_triggered_total: Counter
    jobs_current: Gauge
    job_duration_seconds: Histogram
    num_delta_events: Gauge

    def job_finished(self, namespace: str, result: o.Outcome) -> None:
        """Count a finished job and observe its duration (success: if known; failure: if positive)."""
        succeeded = o.SUCCEEDED_TRUE if result.succeeded else o.SUCCEEDED_FALSE
        self.jobs_total.labels(succeeded, result.metric_reason, namespace).inc()
        d = result.duration
        if d is not None and (result.succeeded or d > 0):
            self.job_duration_seconds.labels(succeeded, result.metric_reason, namespace).observe(d)

    def full_snapshot_triggered(self, namespace: str, succeeded: bool) -> None:
        self.full_snapshot_triggered_total.labels(o.SUCCEEDED_TRUE if succeeded else o.SUCCEEDED_FALSE, namespace).inc()


def _create(registry: CollectorRegistry) -> CompactionMetrics:
    ns, sub = "etcddruid", "compaction"
    outcome_labels = (LABEL_SUCCEEDED, LABEL_FAILURE_REASON, LABEL_ETCD_NAMESPACE)
    return CompactionMetrics(
        jobs_total=Counter(
            "jobs_total", "Total number of compaction jobs initiated by compaction controller.", outcome_labels,
            namespace=ns, subsystem=sub, registry=registry,
        ),
        full_snapshot_triggered_total=Counter(
            "full_snapshot_triggered_total", "Total number of full snapshot triggered by compaction controller.",
            (LABEL_SUCCEEDED, LABEL_ETCD_NAMESPACE), namespace=ns, subsystem=sub, registry=registry,
        ),
        jobs_current=Gauge(
            "jobs_current", "Number of currently running comapction job.", (LABEL_ETCD_NAMESPACE,),
            namespace=ns, subsystem=sub, registry=registry,
        ),
        job_duration_seconds=Histogram(
            "job_duration_seconds", "Total time taken in seconds to finish a running compaction job.", outcome_labels,
            namespace=ns, subsystem=sub, registry=registry, buckets=DURATION_BUCKETS,
        ),
        num_delta_events=Gauge(
            "num_delta_events", "Total number of etcd events to be compacted by a compaction job.",
            (LABEL_ETCD_NAMESPACE,), namespace=ns, subsystem=sub, registry=registry,
        ),
    )  # fmt: skip


def compaction_metrics(registry: CollectorRegistry | None = None) -> CompactionMetrics:
    """The compaction metric families in ``registry`` (default: the process registry served at /metrics)."""
    return metrics.families(registry, _create)
