"""Kubernetes Events (core/v1) about objects, recorded the way client-go's event recorder does it.

``EventRecorder(kube, component)`` writes Events with source and reporting component ``component``. Like
client-go's recorder, a repeat of the same event (same object, type, reason, message) within 10 minutes
increments ``count`` and ``lastTimestamp`` of the existing Event instead of creating a new one, and a
per-object token bucket (burst 25, one token per 5 minutes: client-go's ``EventSourceObjectSpamFilter``)
drops the excess. Failures are logged, never raised. ``clock`` is injectable (tests).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog

from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock, rfc3339
from druid.runtime.objects import EVENTS, Obj

AGGREGATION_WINDOW = 600.0
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0

log = structlog.get_logger(__name__)


@dataclass
class _Seen:
    name: str
    count: int
    first: str
    at: float


class EventRecorder:
    def __init__(self, kube: Kube, component: str, clock: Clock | None = None) -> None:
        self.kube = kube
        self.component = component
        self.clock: Clock = clock or SystemClock()
        self._seen: dict[tuple[str, str, str, str], _Seen] = {}
        self._tokens: dict[str, tuple[float, float]] = {}

    def _allow(self, uid: str) -> bool:
        now = self.clock.monotonic()
        tokens, last = self._tokens.get(uid, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + (now - last) / SPAM_REFILL_SECONDS)
        if tokens < 1:
            self._tokens[uid] = (tokens, now)
            return False
        self._tokens[uid] = (tokens - 1, now)
        return True

    async def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid", "")
        if not self._allow(uid):
            return
        now = self.clock.now()
        if len(self._seen) > 1000:  # forget events outside the aggregation window
            cutoff = self.clock.monotonic() - AGGREGATION_WINDOW
            self._seen = {k: v for k, v in self._seen.items() if v.at >= cutoff}
        key = (uid, event_type, reason, message)
        seen = self._seen.get(key)
        try:
            if seen is not None and self.clock.monotonic() - seen.at < AGGREGATION_WINDOW:
                seen.count += 1
                seen.at = self.clock.monotonic()
                body = {"count": seen.count, "lastTimestamp": rfc3339(now)}
                try:
                    await self.kube.merge_patch(EVENTS, seen.name, body, meta["namespace"])
                    return
                except ApiError as e:
                    if not e.not_found:
                        raise
            name = f"{meta['name']}.{secrets.token_hex(8)}"
            stamp = rfc3339(now)
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": uid,
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": event_type,
                "source": {"component": self.component},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "eventTime": None,
                "count": 1,
                "reportingComponent": self.component,
                "reportingInstance": "",
            }
            await self.kube.create(EVENTS, event)
            self._seen[key] = _Seen(name, 1, stamp, self.clock.monotonic())
        except ApiError as e:
            log.warning("could not record event", reason=reason, error=str(e))

    async def warning(self, obj: Obj, reason: str, message: str) -> None:
        await self.event(obj, "Warning", reason, message)
