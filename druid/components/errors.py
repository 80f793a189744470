"""DruidError: an error with a stable code and the operation it happened in (upstream ``internal/errors``).

The Etcd controller turns DruidErrors into ``status.lastErrors`` entries; a DruidError with code
``ERR_REQUEUE_AFTER`` (:class:`RequeueAfter`) is not a failure but "try again in a while" (upstream's
``syncRetryInterval``, 10 s).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from druid.gocompat.fmt import error_text
from druid.runtime.clock import rfc3339

ERR_REQUEUE_AFTER = "ERR_REQUEUE_AFTER"

# Operations (upstream internal/component/types.go)
OPERATION_PRE_SYNC = "PreSync"
OPERATION_SYNC = "Sync"
OPERATION_TRIGGER_DELETE = "TriggerDelete"
OPERATION_GET_EXISTING_RESOURCE_NAMES = "GetExistingResourceNames"


class DruidError(Exception):
    def __init__(
        self,
        code: str,
        operation: str,
        message: str,
        cause: BaseException | None = None,
        observed_at: dt.datetime | None = None,
    ) -> None:
        self.code = code
        self.operation = operation
        self.message = message
        self.cause = cause
        self.observed_at = observed_at or dt.datetime.now(dt.UTC)
        super().__init__(str(self))

    def __str__(self) -> str:
        detail = self.cause if self.cause is not None else self.message
        return f"[Operation: {self.operation}, Code: {self.code}] {detail}"

    def description(self) -> str:
        """``[Operation: <op>, Code: <code>] message: <msg>[, cause: <err>]`` (upstream ``MapToLastErrors``); the
        cause printed as Go prints an error (an API error without its HTTP status prefix)."""
        text = f"[Operation: {self.operation}, Code: {self.code}] message: {self.message}"
        return text if self.cause is None else f"{text}, cause: {error_text(self.cause)}"

    def last_error(self) -> dict[str, Any]:
        """A ``status.lastErrors`` entry in wire form."""
        return {"code": self.code, "description": self.description(), "observedAt": rfc3339(self.observed_at)}


class RequeueAfter(DruidError):
    """Not an error: the step has to wait (for a rollout, for members) and is retried after an interval."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(ERR_REQUEUE_AFTER, operation, message)
