"""``status.lastOperation`` / ``status.lastErrors`` of an Etcd (upstream ``controller/utils/etcdstatus.go``).

Descriptions are upstream's: start ``Etcd cluster reconciliation is in progress`` / ``Etcd cluster deletion
is in progress``, success ``Etcd cluster has been successfully reconciled``, an incomplete run
``<step description> Operation will be retried.`` with state ``Error`` when it failed (lastErrors from its
DruidErrors) or ``Requeue`` when it only has to wait. ``runID`` is the reconcile ID.

Druid deviation: a failed run always names its step (``Sync of component ClientService failed. Operation will
be retried.``); upstream leaves the step description empty for failures (`` Operation will be retried.``). A
result without a step description is described by its errors' operations and codes.

Druid deviation (zero writes in a steady state): a record identical to the current one (same type, state,
description and lastErrors codes/descriptions) is not written again, so an Etcd stuck on the same error,
or one that is reconciled while already in sync, does not get a status write per retry; ``runID`` and
``lastUpdateTime`` then stay those of the run that recorded the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import structlog

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.components.errors import DruidError
from druid.controllers.etcd.conditions import MANAGED_TYPES
from druid.gocompat.duration import format_seconds
from druid.runtime.client import Kube
from druid.runtime.clock import rfc3339
from druid.runtime.objects import Obj
from druid.runtime.patch import apply_merge_patch
from druid.runtime.statuswriter import merge_conditions, update_status

# Error codes of the controller itself (components have their own, see components.*.ERROR_CODES)
ERR_INVALID_SPEC = "ERR_INVALID_SPEC"  # the Etcd does not parse; nothing is written
OPERATION_RECONCILE_SPEC = "ReconcileSpec"
OPERATION_DELETE = "Delete"

DESCRIPTION_RECONCILE_STARTED = "Etcd cluster reconciliation is in progress"
DESCRIPTION_DELETE_STARTED = "Etcd cluster deletion is in progress"
DESCRIPTION_RECONCILED = "Etcd cluster has been successfully reconciled"
RETRY_SUFFIX = "Operation will be retried."

log = structlog.get_logger(__name__)


def duration_text(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (``10s``, ``1m0s``, ``500ms``)."""
    return format_seconds(seconds)


@dataclass
class StepResult:
    """How a spec or deletion run ended (upstream ``ReconcileStepResult``)."""

    errors: list[DruidError] = field(default_factory=list)  # become lastErrors
    error: bool = False  # failed (also for errors that are no DruidError, which upstream does not list)
    requeue_after: float | None = None
    description: str = ""
    done: bool = True  # ran to the end

    @classmethod
    def failed(cls, *errors: DruidError, step: str = "") -> StepResult:
        """Failed in ``step`` (what was being done, e.g. ``Sync of component Role``)."""
        return cls(errors=list(errors), error=True, done=False, description=f"{step} failed." if step else "")

    @classmethod
    def failed_with(cls, error: Exception, step: str) -> StepResult:
        """Failed in ``step`` with ``error``: listed in lastErrors when it is a DruidError (as upstream does)."""
        if isinstance(error, DruidError):
            return cls.failed(error, step=step)
        return cls(error=True, done=False, description=f"{step} failed.")

    @classmethod
    def wait(cls, after: float, description: str) -> StepResult:
        return cls(requeue_after=after, description=description, done=False)

    @property
    def needs_requeue(self) -> bool:
        return self.error or self.requeue_after is not None


def _patched(etcd: Obj, patch: dict[str, Any], owned: Collection[str] = MANAGED_TYPES) -> dict[str, Any]:
    """``etcd``'s status with the merge patch ``patch`` applied (of conditions only the ``owned`` types)."""
    live = etcd.get("status") or {}
    out: dict[str, Any] = apply_merge_patch(live, patch)
    if "conditions" in patch:
        mine = patch["conditions"] or ()
        out["conditions"] = merge_conditions(live.get("conditions"), owned, mine, sort=True)
        if not out["conditions"]:
            del out["conditions"]
    return out


class StatusWriter:
    """The Etcd controller's writes to an Etcd, keeping the freshest copy of the Etcd it has seen.

    ``/status`` goes through the runtime's resourceVersion-guarded writer (retried on conflict against the
    live object); of ``conditions`` only the types this controller owns (``conditions.MANAGED_TYPES``) are
    merged into the live list, so a condition another controller wrote (compaction's) is never erased.
    """

    def __init__(self, kube: Kube, etcd: Obj, run_id: str) -> None:
        self.kube = kube
        self.etcd = etcd
        self.run_id = run_id
        self.writes = 0
        self.superseded: list[str] = []  # resourceVersions replaced by this writer's writes (read-your-writes)
        self._held: list[tuple[dict[str, Any], Collection[str]]] | None = None  # status patches collected by hold()
        self._base: Obj | None = None  # the Etcd as it was when hold() began

    @property
    def status(self) -> dict[str, Any]:
        return self.etcd.get("status") or {}

    def _name(self) -> tuple[str, str]:
        meta = self.etcd["metadata"]
        return meta["name"], meta["namespace"]

    async def patch_status(self, patch: dict[str, Any], owned: Collection[str] = MANAGED_TYPES) -> None:
        """Apply the merge patch ``patch`` to the live ``/status``; of ``conditions`` only the ``owned`` types
        (default: the status reconcile's) are replaced.

        While :meth:`hold` is in effect the patch is only applied to :attr:`etcd` and written by :meth:`flush`.
        """
        if self._held is not None:
            self._held.append((patch, owned))
            self.etcd = {**self.etcd, "status": _patched(self.etcd, patch, owned)}
            return
        await self._write([(patch, owned)])

    def hold(self) -> None:
        """Collect the following status patches into one write, made by :meth:`flush`."""
        if self._held is None:
            self._held, self._base = [], self.etcd

    async def flush(self) -> None:
        """Write the status patches collected since :meth:`hold` at once (nothing when they change nothing)."""
        held, base = self._held, self._base
        self._held = self._base = None
        if held and base is not None:
            self.etcd = base
            await self._write(held)

    async def _write(self, patches: list[tuple[dict[str, Any], Collection[str]]]) -> None:
        def desired(etcd: Obj) -> dict[str, Any]:
            for patch, owned in patches:
                etcd = {**etcd, "status": _patched(etcd, patch, owned)}
            return etcd.get("status") or {}

        replaced: list[str] = []
        written = await update_status(self.kube, ETCDS, self.etcd, desired, superseded=replaced)
        if written is not self.etcd:
            self.superseded += replaced
            self.etcd = written
            self.writes += 1
            log.debug("patched status", fields=sorted({k for p in patches for k in p[0]}))

    async def patch_metadata(self, patch: dict[str, Any]) -> None:
        name, namespace = self._name()
        self.wrote(await self.kube.merge_patch(ETCDS, name, {"metadata": patch}, namespace))

    def wrote(self, etcd: Obj) -> None:
        """``etcd`` is the Etcd as a write by this controller returned it."""
        rv = self.etcd["metadata"].get("resourceVersion")
        if rv:
            self.superseded.append(rv)
        self.etcd = etcd
        self.writes += 1

    async def record(self, op_type: str, state: str, description: str, errors: list[DruidError] | None = None) -> None:
        last_errors = [e.last_error() for e in errors or ()]
        current = self.status.get("lastOperation") or {}
        same = (current.get("type"), current.get("state"), current.get("description")) == (op_type, state, description)
        old_errors = [(e.get("code"), e.get("description")) for e in self.status.get("lastErrors") or ()]
        if same and old_errors == [(e["code"], e["description"]) for e in last_errors]:
            return
        operation = {
            "type": op_type,
            "state": state,
            "description": description,
            "runID": self.run_id,
            "lastUpdateTime": rfc3339(dt.datetime.now(dt.UTC)),
        }
        await self.patch_status({"lastOperation": operation, "lastErrors": last_errors or None})
        log.info("recorded last operation", type=op_type, state=state, errors=[e.code for e in errors or ()])

    async def record_start(self, op_type: str) -> None:
        deleting = op_type == c.OPERATION_TYPE_DELETE
        description = DESCRIPTION_DELETE_STARTED if deleting else DESCRIPTION_RECONCILE_STARTED
        await self.record(op_type, c.OPERATION_STATE_PROCESSING, description)

    async def record_success(self, op_type: str) -> None:
        await self.record(op_type, c.OPERATION_STATE_SUCCEEDED, DESCRIPTION_RECONCILED)

    async def record_incomplete(self, op_type: str, result: StepResult) -> None:
        state = c.OPERATION_STATE_ERROR if result.error else c.OPERATION_STATE_REQUEUE
        await self.record(op_type, state, f"{step_description(result)} {RETRY_SUFFIX}", result.errors)


def step_description(result: StepResult) -> str:
    """The result's step description, else one made of its errors (``Sync failed (ERR_SYNC_ROLE).``)."""
    if result.description:
        return result.description
    steps = ", ".join(dict.fromkeys(f"{e.operation} failed ({e.code})" for e in result.errors))
    return f"{steps}." if steps else "A step failed."
