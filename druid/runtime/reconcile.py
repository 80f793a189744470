"""The reconcile contract: a reconciler gets a key and the cached object and returns an Action or raises.

| outcome                        | queue                              | result label    |
|--------------------------------|------------------------------------|-----------------|
| ``Action.done()``              | forget                             | success         |
| ``Action.requeue(after=d)``    | forget, then add_after(d)          | requeue_after   |
| ``Action.retry()``             | add_rate_limited                   | requeue         |
| raise ``TerminalError``        | forget (no retry)                  | error           |
| raise any other exception      | add_rate_limited                   | error           |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from druid.runtime.objects import Obj, ObjectKey


@dataclass(frozen=True)
class Action:
    requeue_after: float | None = None
    rate_limited: bool = False

    @classmethod
    def done(cls) -> Action:
        """Nothing more to do until something changes."""
        return cls()

    @classmethod
    def requeue(cls, after: float) -> Action:
        """Look again after ``after`` seconds (drift correction, waiting for something external)."""
        if after <= 0:
            raise ValueError("requeue delay must be positive; use Action.retry() for an immediate rate-limited retry")
        return cls(requeue_after=after)

    @classmethod
    def retry(cls) -> Action:
        """Requeue with the rate limiter's backoff, without counting an error."""
        return cls(rate_limited=True)


class TerminalError(Exception):
    """A failure retrying cannot fix (e.g. an invalid spec); the key is not requeued."""


class Reconciler(Protocol):
    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        """Drive the world towards ``obj``'s desired state. ``obj`` is None when it no longer exists.

        ``obj`` comes from the shared cache and must not be mutated; copy it first.
        """
        ...
