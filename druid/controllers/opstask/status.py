"""The EtcdOpsTask state machine as pure functions on the status dict (upstream ``etcdopstask/utils.go``).

``state``: (none) → Pending → InProgress → Succeeded | Failed, or Pending → Rejected. Every state change
sets ``lastTransitionTime``; the first change to InProgress sets ``startedAt``. ``lastOperation`` records the
phase (Admit, Execution, Cleanup) and its state (InProgress, Completed, Failed) with the reconcile's runID.
``lastErrors`` keeps the three most recent errors, oldest first.

Multi-step tasks (druid's own configs) also return status fields of their own with each result (``steps``,
written with :func:`record_step`, and a result object named like their config); they are set as given, next
to the fields above. A result may ask to be looked at again after its own delay instead of the controller's
``requeueInterval`` (a step that waits for pods polls faster than a snapshot).

:func:`outcome` maps a handler's :class:`Result` in a phase to the status update and what the reconciler does
next (upstream ``handleTaskResult``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from druid.api import constants as c
from druid.components.errors import DruidError
from druid.runtime.clock import parse_time, rfc3339

MAX_LAST_ERRORS = 3
Status = dict[str, Any]
Next = Literal["continue", "requeue", "retry", "ttl", "fail"]
"""After writing: go on with the next step; requeue after the requeue interval; retry with backoff; requeue
when the TTL expires; retry with backoff because the phase failed (Cleanup)."""


@dataclass(frozen=True)
class Result:
    """What a handler's Admit, Execute or Cleanup returns."""

    description: str
    error: DruidError | None = None
    requeue: bool = False
    status: Mapping[str, Any] | None = None
    """Status fields of the task's own (e.g. ``steps``) to set as given."""
    requeue_after: float | None = None
    """With ``requeue`` and no error: look again after this many seconds instead of the requeue interval."""


@dataclass(frozen=True)
class Operation:
    type: str
    state: str
    description: str = ""


@dataclass(frozen=True)
class Update:
    """Changes to the status: the lastOperation, a new state, an error to append (each optional)."""

    operation: Operation | None = None
    state: str | None = None
    error: DruidError | None = None
    fields: Mapping[str, Any] | None = None


def set_last_operation(status: Status, op: Operation, *, task_name: str, run_id: str, now: dt.datetime) -> None:
    description = op.description or f"{op.type} is in state {op.state} for task {task_name}"
    status["lastOperation"] = {
        "type": op.type,
        "state": op.state,
        "description": description,
        "runID": run_id,
        "lastUpdateTime": rfc3339(now),
    }


def set_state(status: Status, state: str, now: dt.datetime) -> None:
    """Change the state (a no-op when unchanged): lastTransitionTime, and startedAt on the first InProgress."""
    if status.get("state") == state:
        return
    if state == c.TASK_IN_PROGRESS and not status.get("startedAt"):
        status["startedAt"] = rfc3339(now)
    status["state"] = state
    status["lastTransitionTime"] = rfc3339(now)


def append_error(status: Status, error: DruidError, now: dt.datetime) -> None:
    """Append ``error`` (observed now) to lastErrors, dropping the oldest beyond three."""
    entry = {"code": error.code, "description": error.description(), "observedAt": rfc3339(now)}
    errors = list(status.get("lastErrors") or ())[-(MAX_LAST_ERRORS - 1) :]
    status["lastErrors"] = [*errors, entry]


def apply(status: Status | None, update: Update, *, task_name: str, run_id: str, now: dt.datetime) -> Status:
    """A new status dict with ``update`` applied (``status`` is not modified)."""
    out: Status = copy.deepcopy(status or {})
    if update.operation is not None:
        set_last_operation(out, update.operation, task_name=task_name, run_id=run_id, now=now)
    if update.state is not None:
        set_state(out, update.state, now)
    if update.error is not None:
        append_error(out, update.error, now)
    for key, value in (update.fields or {}).items():
        out[key] = copy.deepcopy(value)
    return out


def record_step(
    steps: list[dict[str, Any]] | None,
    name: str,
    state: str,
    now: dt.datetime,
    message: str | None = None,
    details: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A new steps list in which step ``name`` has ``state``: the last entry of that name is updated (its
    startedAt kept, finishedAt set once it is no longer InProgress; message and details replaced when given),
    or a new entry is appended. Recording the same state again changes nothing but message and details."""
    out = [dict(step) for step in steps or ()]
    entry = next((step for step in reversed(out) if step.get("name") == name), None)
    if entry is None:
        entry = {"name": name, "startedAt": rfc3339(now)}
        out.append(entry)
    entry["state"] = state
    if state != "InProgress":
        entry.setdefault("finishedAt", rfc3339(now))
    else:
        entry.pop("finishedAt", None)
    if message is not None:
        entry["message"] = message
    if details is not None:
        entry["details"] = {**(entry.get("details") or {}), **details}
    return out


def outcome(phase: str, result: Result) -> tuple[Update, Next]:
    """The status update for ``result`` in ``phase`` and the next step (upstream handleTaskResult)."""
    fields = result.status
    if result.requeue:
        op = Operation(phase, c.OPERATION_STATE_IN_PROGRESS, result.description)
        return Update(op, error=result.error, fields=fields), "retry" if result.error is not None else "requeue"
    if result.error is not None:
        state = {c.OPERATION_TYPE_ADMIT: c.TASK_REJECTED, c.OPERATION_TYPE_EXECUTION: c.TASK_FAILED}.get(phase)
        op = Operation(phase, c.OPERATION_STATE_FAILED, result.description)
        return Update(op, state, result.error, fields), "ttl" if state is not None else "fail"
    if phase == c.OPERATION_TYPE_CLEANUP:
        return Update(Operation(phase, c.OPERATION_STATE_IN_PROGRESS, result.description), fields=fields), "continue"
    op = Operation(phase, c.OPERATION_STATE_COMPLETED, result.description)
    if phase == c.OPERATION_TYPE_EXECUTION:
        return Update(op, c.TASK_SUCCEEDED, fields=fields), "ttl"
    return Update(op, fields=fields), "continue"


def completed(status: Status | None) -> bool:
    return (status or {}).get("state") in c.TASK_COMPLETED_STATES


def time_to_expiry(status: Status | None, ttl_seconds: int, now: dt.datetime) -> float:
    """Seconds until lastTransitionTime + TTL (zero once expired, or without a transition)."""
    transition = (status or {}).get("lastTransitionTime")
    if not transition:
        return 0.0
    remaining = parse_time(transition) + dt.timedelta(seconds=ttl_seconds) - now
    return max(remaining.total_seconds(), 0.0)
