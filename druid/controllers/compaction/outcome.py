"""How a finished compaction Job ended (upstream ``getJobCompletionStateAndReason``, ``fetchFailedJobMetrics``,
``getPodFailureReasonAndLastTransitionTime``), from plain Job and Pod objects, without I/O.

- Success: a ``Complete`` or ``SuccessCriteriaMet`` condition is True (the first matching condition wins).
  Condition reason ``None``, metric reason ``none``, duration = completionTime − startTime. Deviation: while
  completionTime is not set yet (only the interim ``SuccessCriteriaMet`` of k8s ≥ 1.31, which is what the
  reconcile sees first), the condition's lastTransitionTime stands in for it; upstream observes nothing then.
- ``Failed``/``FailureTarget`` True with reason ``DeadlineExceeded``: reason ``DeadlineExceeded``
  (``deadlineExceeded``), duration = the Job's activeDeadlineSeconds.
- ... with reason ``BackoffLimitExceeded``: the job's (first) pod decides: a True ``DisruptionTarget`` condition
  gives its reason (``PreemptionByScheduler`` → ``preempted``; ``DeletionByTaintManager``,
  ``EvictionByEvictionAPI``, ``TerminationByKubelet`` → ``evicted``; anything else → ``unknown``) and time;
  else a terminated container gives ``ProcessFailure`` (``processFailure``) and its finishedAt; else (or without
  a pod) ``Unknown`` (``unknown``) and now. Duration = that time − startTime.
- Any other failure reason: ``Unknown`` / ``unknown``, duration = now − startTime.

Metrics observe a success duration whenever it is known, a failure duration only when positive.
Where upstream would dereference a missing startTime (and panic), the duration is None (not observed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.runtime.clock import parse_time
from druid.runtime.objects import Obj

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

SUCCEEDED_TRUE, SUCCEEDED_FALSE = "true", "false"
METRIC_PREEMPTED = "preempted"
METRIC_EVICTED = "evicted"
METRIC_DEADLINE_EXCEEDED = "deadlineExceeded"
METRIC_PROCESS_FAILURE = "processFailure"
METRIC_UNKNOWN = "unknown"
METRIC_NONE = "none"
METRIC_FAILURE_REASONS = (
    METRIC_PREEMPTED, METRIC_EVICTED, METRIC_DEADLINE_EXCEEDED, METRIC_PROCESS_FAILURE, METRIC_UNKNOWN, METRIC_NONE,
)  # fmt: skip

_SUCCESS_TYPES = ("Complete", "SuccessCriteriaMet")
_FAILURE_TYPES = ("Failed", "FailureTarget")
_POD_METRIC_REASONS = {
    c.REASON_PREEMPTION_BY_SCHEDULER: METRIC_PREEMPTED,
    c.REASON_DELETION_BY_TAINT_MANAGER: METRIC_EVICTED,
    c.REASON_EVICTION_BY_EVICTION_API: METRIC_EVICTED,
    c.REASON_TERMINATION_BY_KUBELET: METRIC_EVICTED,
    c.REASON_PROCESS_FAILURE: METRIC_PROCESS_FAILURE,
}


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    job_reason: str  # reason of the Job's finishing condition (goes into the Etcd condition's message)
    reason: str  # reason of the Etcd condition: None, DeadlineExceeded, ProcessFailure, a disruption reason, Unknown
    metric_reason: str  # failureReason label
    duration: float | None  # seconds to observe in job_duration_seconds, None: nothing to observe


def _status(obj: Obj) -> dict[str, Any]:
    return obj.get("status") or {}


def active(job: Obj) -> int:
    return int(_status(job).get("active") or 0)


def _finishing_condition(job: Obj) -> dict[str, Any] | None:
    for cond in _status(job).get("conditions") or ():
        if cond.get("status") == c.CONDITION_TRUE and cond.get("type") in (*_SUCCESS_TYPES, *_FAILURE_TYPES):
            return dict(cond)
    return None


def finished(job: Obj) -> tuple[bool, str] | None:
    """``(succeeded, condition reason)`` from the first True finishing condition; None when there is none."""
    cond = _finishing_condition(job)
    return None if cond is None else (cond.get("type") in _SUCCESS_TYPES, cond.get("reason") or "")


def needs_pod(job: Obj) -> bool:
    """A failure whose reason only the job's pod can tell (BackoffLimitExceeded)."""
    done = finished(job)
    return done is not None and not done[0] and done[1] == c.REASON_BACKOFF_LIMIT_EXCEEDED


def _time(value: object) -> dt.datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def pod_failure(pod: Obj | None, now: dt.datetime) -> tuple[str, str, dt.datetime | None]:
    """``(reason, metric reason, when)`` of a failed job pod."""
    if pod is None:
        return c.REASON_UNKNOWN, METRIC_UNKNOWN, now
    status = _status(pod)
    for cond in status.get("conditions") or ():
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == c.CONDITION_TRUE:
            reason = cond.get("reason") or ""
            return reason, _POD_METRIC_REASONS.get(reason, METRIC_UNKNOWN), _time(cond.get("lastTransitionTime"))
    for cs in status.get("containerStatuses") or ():
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated is not None:
            return c.REASON_PROCESS_FAILURE, METRIC_PROCESS_FAILURE, _time(terminated.get("finishedAt"))
    return c.REASON_UNKNOWN, METRIC_UNKNOWN, now


def _since_start(job: Obj, end: dt.datetime | None) -> float | None:
    start = _time(_status(job).get("startTime"))
    return None if start is None or end is None else (end - start).total_seconds()


def outcome(job: Obj, pod: Obj | None, now: dt.datetime) -> Outcome:
    """The outcome of a finished ``job`` (see :func:`finished`); ``pod`` is its first pod when :func:`needs_pod`.

    A job without a finishing condition counts as failed with an empty reason, as upstream.
    """
    succeeded, job_reason = finished(job) or (False, "")
    status = _status(job)
    if succeeded:
        # completionTime comes with Complete, after the interim SuccessCriteriaMet (k8s >= 1.31) the reconcile
        # usually sees: then that condition's time (druid; upstream observes nothing without completionTime)
        cond = _finishing_condition(job) or {}
        completed = _time(status.get("completionTime")) or _time(cond.get("lastTransitionTime"))
        return Outcome(True, job_reason, c.REASON_NONE, METRIC_NONE, _since_start(job, completed))
    if job_reason == c.REASON_DEADLINE_EXCEEDED:
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        seconds = None if deadline is None else float(deadline)
        return Outcome(False, job_reason, c.REASON_DEADLINE_EXCEEDED, METRIC_DEADLINE_EXCEEDED, seconds)
    if job_reason == c.REASON_BACKOFF_LIMIT_EXCEEDED:
        reason, metric, when = pod_failure(pod, now)
        return Outcome(False, job_reason, reason or c.REASON_UNKNOWN, metric, _since_start(job, when))
    return Outcome(False, job_reason, c.REASON_UNKNOWN, METRIC_UNKNOWN, _since_start(job, now))
