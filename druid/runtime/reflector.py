"""List-then-watch for one resource, feeding a :class:`Store` (client-go ``tools/cache/reflector.go``).

The loop (:meth:`Reflector.run`):

1. LIST without a resourceVersion (a consistent read) in pages of 500; a 410 on a continue token
   restarts the list from scratch. The result replaces the store; the deltas, including tombstone
   deletes for objects that vanished since the previous list, go to the sink.
2. WATCH from the list's resourceVersion with ``allowWatchBookmarks=true`` and ``timeoutSeconds``
   random in [300, 600); the client gives up on a connection that sends nothing for 90 s (the API
   server sends a bookmark every minute, so silence that long means a dead connection).
3. Every event moves the resourceVersion on; a BOOKMARK does nothing else. A stream that ends (server
   timeout, idle timeout, broken connection) is re-watched from the last resourceVersion at once.
4. "Too old resource version" (an ERROR event with code 410, or a 410 answer to the watch request)
   means relist: step 1 again.
5. Failed requests (transport errors, 5xx, 429 with its Retry-After honoured, anything else) back off
   0.8 s doubling to 30 s with jitter; the backoff resets after 2 min without failures. A watch that
   ends within 1 s without delivering anything also counts as a failure, so nothing can spin.

Unexpected exceptions (bugs) propagate out of :meth:`run`; the informer's supervisor restarts it,
which starts with a fresh list.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import structlog
from prometheus_client import CollectorRegistry, Counter

from druid.runtime import jsonc, metrics
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock
from druid.runtime.objects import Obj, ObjectKey, ResourceRef
from druid.runtime.store import Delta, DeltaType, Store

log = structlog.get_logger(__name__)

Sink = Callable[[list[Delta]], None]


@dataclass(frozen=True)
class ReflectorConfig:
    """Timings and sizes; the defaults are client-go's. Tests shorten them."""

    page_size: int = 500
    min_watch_timeout: float = 300.0  # server-side timeoutSeconds is random in [min, 2*min)
    connect_timeout: float = 10.0
    idle_timeout: float = 90.0  # client-side socket read timeout of a watch
    list_timeout: float = 60.0  # per page
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    backoff_factor: float = 2.0
    backoff_jitter: float = 1.0  # delay is base * (1 + jitter * U[0, 1)), never above backoff_max
    backoff_reset: float = 120.0  # a failure after this long without one starts from backoff_initial
    short_watch: float = 1.0  # a watch ending sooner than this with no events counts as a failure
    max_list_restarts: int = 5  # restarts of a paginated list whose continue token expired


class Backoff:
    """client-go's exponential backoff manager: initial, ×factor up to cap, jitter, reset when quiet."""

    def __init__(self, config: ReflectorConfig, clock: Clock, rng: random.Random) -> None:
        self._config, self._clock, self._rng = config, clock, rng
        self._step = config.backoff_initial
        self._last: float | None = None

    def next(self) -> float:
        c = self._config
        now = self._clock.monotonic()
        if self._last is not None and now - self._last >= c.backoff_reset:
            self._step = c.backoff_initial
        base = self._step
        self._step = min(self._step * c.backoff_factor, c.backoff_max)
        self._last = now
        return min(base * (1 + c.backoff_jitter * self._rng.random()), c.backoff_max)


class Expired(Exception):
    """The watch's resourceVersion is no longer available (410 Gone / Expired): relist."""


@dataclass
class ReflectorStats:
    """Counts for tests and health reports (the same facts go to metrics and logs)."""

    lists: Tally[str] = field(default_factory=Tally)  # by reason: initial, expired, error, ...
    watch_ends: Tally[str] = field(default_factory=Tally)  # by reason: closed, broken, idle, expired, error
    watches: int = 0  # watch requests answered 200
    failures: int = 0  # failed requests (each followed by a backoff)
    events: int = 0  # watch events applied (bookmarks excluded)


@dataclass(frozen=True)
class ReflectorMetrics:
    lists: Counter
    watch_restarts: Counter


def _create_reflector_metrics(registry: CollectorRegistry) -> ReflectorMetrics:
    return ReflectorMetrics(
        lists=Counter(
            "druid_informer_lists_total",
            "LIST calls that (re)filled an informer cache, by informer and reason (initial, expired, error, restart).",
            ["informer", "reason"],
            registry=registry,
        ),
        watch_restarts=Counter(
            "druid_informer_watch_restarts_total",
            "Watches of an informer that ended and were restarted, by informer and reason.",
            ["informer", "reason"],
            registry=registry,
        ),
    )


def reflector_metrics(registry: CollectorRegistry | None = None) -> ReflectorMetrics:
    return metrics.families(registry, _create_reflector_metrics)


def _status_error(status: Obj) -> Exception:
    """The exception for a watch ERROR event (a metav1.Status)."""
    code = int(status.get("code") or 500)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    if code == 410 or reason in ("Expired", "Gone"):
        return Expired(message or reason)
    return ApiError(code, reason, message, status)


class Reflector:
    def __init__(
        self,
        kube: Kube,
        resource: ResourceRef,
        store: Store,
        sink: Sink,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        accept: str | None = None,
        config: ReflectorConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.kube, self.resource, self.store = kube, resource, store
        self.namespace, self.label_selector, self.field_selector = namespace, label_selector, field_selector
        self.accept = accept  # e.g. client.METADATA_ONLY: cache PartialObjectMetadata only
        self.config = config or ReflectorConfig()
        self.clock: Clock = clock or SystemClock()
        self.name = name or str(resource)
        self._sink = sink
        self._rng = rng or random.Random()
        self._backoff = Backoff(self.config, self.clock, self._rng)
        self._metrics = reflector_metrics(registry)
        self._log = log.bind(informer=self.name)
        self.resource_version: str | None = None
        self.stats = ReflectorStats()
        self.failing_since: float | None = None  # monotonic time of the first failure since the last success
        self.last_error: str | None = None
        self.watching = False  # a watch stream is open
        self._watch_started = 0.0
        self._watch_events = 0
        self._listed_at = float("-inf")

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """List, then watch forever (until cancelled)."""
        relist: str | None = "initial" if not self.stats.lists else "restart"
        while True:
            if relist is not None:
                try:
                    await self.list_and_replace(relist)
                except ApiError as e:
                    relist = "error"
                    await self._fail("list", e)
                    continue
                relist = None
            try:
                end = await self.watch()
            except (Expired, ApiError) as e:
                expired = isinstance(e, Expired) or (isinstance(e, ApiError) and e.gone)
                self._watch_ended("expired" if expired else "error", str(e))
                if expired:
                    self._log.info("watch expired, relisting", reason=str(e), resource_version=self.resource_version)
                    relist = "expired"
                    if self.clock.monotonic() - self._listed_at < self.config.short_watch:
                        await self._fail("watch", e)  # expired right after a list: back off rather than loop
                    continue
                if isinstance(e, ApiError) and e.status and not e.retryable:
                    relist = "error"  # e.g. 403/404: client-go returns from ListAndWatch and relists
                await self._fail("watch", e)
                continue
            self._watch_ended(end, None)
            if self._short_watch():
                await self._fail("watch", f"very short watch ({end}) without events")

    async def list_and_replace(self, reason: str) -> None:
        """One complete (paginated) LIST; replaces the store and passes the deltas to the sink."""
        self._log.info("listing", reason=reason, resource_version=self.resource_version)
        self.stats.lists[reason] += 1
        self._metrics.lists.labels(self.name, reason).inc()
        items, rv = await self._list_pages()
        for item in items:  # list items carry no kind; watch events do. Cache them alike.
            item.setdefault("apiVersion", self.resource.api_version)
            item.setdefault("kind", self.resource.kind)
        # (metadata-only lists carry kind PartialObjectMetadata on every item, like their watch events)
        deltas = self.store.replace(items)
        self.resource_version = rv
        self._listed_at = self.clock.monotonic()
        self._healthy()
        self._log.debug("listed", objects=len(items), deltas=len(deltas), resource_version=rv)
        self._sink(deltas)

    async def _list_pages(self) -> tuple[list[Obj], str]:
        restarts = 0
        while True:
            items: list[Obj] = []
            token: str | None = None
            try:
                while True:
                    page = await self.kube.list(
                        self.resource,
                        self.namespace,
                        label_selector=self.label_selector,
                        field_selector=self.field_selector,
                        limit=self.config.page_size,
                        continue_=token,
                        timeout=self.config.list_timeout,
                        accept=self.accept,
                    )
                    items.extend(page.get("items") or [])
                    meta = page.get("metadata") or {}
                    token = meta.get("continue") or None
                    if token is None:
                        return items, str(meta.get("resourceVersion") or "")
                    await asyncio.sleep(0)  # let the loop breathe between pages
            except ApiError as e:
                if not (e.gone and token is not None and restarts < self.config.max_list_restarts):
                    raise
                restarts += 1
                self._log.info("list continue token expired, listing from scratch", attempt=restarts)

    async def watch(self) -> str:
        """One watch from :attr:`resource_version` until the stream ends; returns why it ended
        (``closed``, ``broken``, ``idle``). Raises :class:`Expired` or :class:`ApiError`."""
        c = self.config
        query = {
            "watch": True,
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": max(1, int(self._rng.uniform(c.min_watch_timeout, 2 * c.min_watch_timeout))),
            "labelSelector": self.label_selector,
            "fieldSelector": self.field_selector,
        }
        self._watch_started = self.clock.monotonic()
        self._watch_events = 0
        try:
            async with self.kube.stream(
                self.resource.path(self.namespace),
                query,
                connect_timeout=c.connect_timeout,
                idle_timeout=c.idle_timeout,
                accept=self.accept,
            ) as resp:
                self.stats.watches += 1
                self._healthy()
                self._log.debug("watching", resource_version=self.resource_version)
                self.watching = True
                try:
                    return await self._read(resp)
                finally:
                    self.watching = False
        except (aiohttp.ClientError, TimeoutError) as e:  # while reading an error answer's body
            raise ApiError(0, type(e).__name__, str(e) or type(e).__name__) from e

    async def _read(self, resp: aiohttp.ClientResponse) -> str:
        while True:
            try:
                line = await resp.content.readline()
            except TimeoutError:
                return "idle"
            except (aiohttp.ClientError, OSError):
                return "broken"
            if not line:
                return "closed"
            if line.isspace():
                continue
            self._apply(jsonc.loads(line))
            if self._watch_events % 64 == 0:
                await asyncio.sleep(0)  # a burst of buffered lines must not starve the loop

    def _apply(self, event: Obj) -> None:
        kind = event.get("type")
        obj: Obj = event.get("object") or {}
        if kind == "ERROR":
            raise _status_error(obj)
        self._watch_events += 1
        rv = obj.get("metadata", {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if rv:
                self.resource_version = str(rv)
            return
        delta: Delta | None = None
        if kind in ("ADDED", "MODIFIED"):
            old, new = self.store.put(obj)
            key = ObjectKey.of(new)
            delta = Delta(DeltaType.ADDED, key, new) if old is None else Delta(DeltaType.UPDATED, key, new, old)
        elif kind == "DELETED":
            key = ObjectKey.of(obj)
            old = self.store.remove(key)
            # Not cached means the relist already reported it gone (client-go's DeltaFIFO skips it too).
            if old is not None:
                delta = Delta(DeltaType.DELETED, key, self.store.prepare(obj), old)
        else:
            self._log.warning("unknown watch event type", type=kind)
        if rv:
            self.resource_version = str(rv)
        if delta is not None:
            self.stats.events += 1
            self._sink([delta])

    # ------------------------------------------------------------------ health and backoff

    def _healthy(self) -> None:
        self.failing_since = None
        self.last_error = None

    def mark_failing(self, error: object) -> None:
        """Record a failure (also used by the informer's supervisor for crashes)."""
        if self.failing_since is None:
            self.failing_since = self.clock.monotonic()
        self.last_error = str(error)

    def _short_watch(self) -> bool:
        return self._watch_events == 0 and self.clock.monotonic() - self._watch_started < self.config.short_watch

    def _watch_ended(self, reason: str, detail: str | None) -> None:
        self.stats.watch_ends[reason] += 1
        self._metrics.watch_restarts.labels(self.name, reason).inc()
        self._log.debug(
            "watch ended",
            reason=reason,
            detail=detail,
            events=self._watch_events,
            resource_version=self.resource_version,
        )

    async def _fail(self, what: str, error: object) -> None:
        self.stats.failures += 1
        self.mark_failing(error)
        delay = self._backoff.next()
        if isinstance(error, ApiError) and error.retry_after:
            delay = max(delay, error.retry_after)
        self._log.warning(f"{what} failed, backing off", error=str(error), delay=round(delay, 2))
        await self.clock.sleep(delay)
