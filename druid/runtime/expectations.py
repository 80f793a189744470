"""Read-your-writes for reconcilers: what the informer cache must show before a cached object can be trusted.

A reconciler that wrote an object knows the cache lags behind: for a moment it still shows the version the
write replaced. :meth:`Expectations.wrote` records that version as *superseded* (resourceVersions are
opaque, so druid never compares them by size: it only remembers the ones it has seen replaced) together
with the object the API server returned. Later reconciles ask:

- :meth:`stale`: does the cache still show a superseded version? The reconciler then requeues shortly
  instead of acting on old state (no worker ever sleeps waiting for the cache);
- :meth:`freshest`: the cached object, or the one druid wrote last while the cache is stale.

A deletion is recorded the same way (the deleted version is superseded: the cache moves past it with the
delete event or with the update setting ``deletionTimestamp``). When versions written by others may come in
between, :meth:`expect` states what the cached object must show instead (a condition, a field). An
expectation the cache never meets (a missed event, another writer's version in between) expires after
``ttl`` seconds, so nothing waits forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from druid.runtime.clock import Clock, SystemClock
from druid.runtime.objects import Obj

K = TypeVar("K")

DEFAULT_TTL = 300.0


def resource_version(obj: Obj | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


@dataclass
class _Expectation:
    superseded: set[str] = field(default_factory=set)
    written: Obj | None = None
    since: float = 0.0
    satisfied: Callable[[Obj | None], bool] | None = None


class Expectations(Generic[K]):
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Clock | None = None) -> None:
        self.ttl = ttl
        self.clock: Clock = clock or SystemClock()
        self._pending: dict[K, _Expectation] = {}

    def wrote(self, key: K, before: Obj | str | None, after: Obj | None = None) -> None:
        """``before`` (an object or its resourceVersion) was replaced by ``after`` (None: deleted)."""
        rv = before if isinstance(before, str) or before is None else resource_version(before)
        entry = self._pending.setdefault(key, _Expectation())
        if rv:
            entry.superseded.add(rv)
        entry.written = after
        entry.since = self.clock.monotonic()

    def expect(self, key: K, satisfied: Callable[[Obj | None], bool]) -> None:
        """The cache is stale for ``key`` until ``satisfied(cached)``."""
        self._pending[key] = _Expectation(since=self.clock.monotonic(), satisfied=satisfied)

    def stale(self, key: K, cached: Obj | None) -> bool:
        """True while ``cached`` is a version this process has replaced (and the expectation has not expired).
        A cache that has moved on clears the expectation."""
        entry = self._pending.get(key)
        if entry is None:
            return False
        if self.clock.monotonic() - entry.since > self.ttl:
            del self._pending[key]
            return False
        if entry.satisfied is not None:
            if not entry.satisfied(cached):
                return True
        elif (rv := resource_version(cached)) is not None and rv in entry.superseded:
            return True
        del self._pending[key]
        return False

    def freshest(self, key: K, cached: Obj) -> Obj:
        """``cached``, or the object written last when the cache still shows a version it replaced."""
        entry = self._pending.get(key)
        if entry is not None and entry.written is not None and self.stale(key, cached):
            return entry.written
        return cached

    def forget(self, key: K) -> None:
        self._pending.pop(key, None)

    def __len__(self) -> int:
        return len(self._pending)
