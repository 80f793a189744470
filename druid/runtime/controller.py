"""A controller: informer events → keys on a rate-limited workqueue → N workers calling a reconciler.

Build one with ``Controller(name, reconciler, informers).for_(primary).owns(child).watches(kind, mapper)``.
Event handlers only enqueue keys, so they run on standby replicas too (warm caches, a ready backlog);
workers start only when ``run()`` is called, i.e. once this replica leads.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from druid.runtime import metrics
from druid.runtime.client import ApiError
from druid.runtime.objects import Obj, ObjectKey, ResourceRef, Tombstone, controller_owner
from druid.runtime.ratelimit import RateLimiter
from druid.runtime.reconcile import Action, Reconciler, TerminalError
from druid.runtime.workqueue import QueueShutDown, WorkQueue

log = structlog.get_logger(__name__)

Predicate = Callable[[Obj, Obj], bool]
"""Decides on an update (old, new) whether the key is enqueued. Adds and deletes always enqueue."""

Mapper = Callable[[Obj], Iterable[ObjectKey]]

RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip
RESULTS = ("success", "error", "requeue", "requeue_after")
# Errors that are part of normal operation (API conflicts, outages); anything else also counts as a "panic".
_EXPECTED: tuple[type[Exception], ...] = (ApiError,)


# ---------------------------------------------------------------------------------------------- predicates


def generation_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("metadata", {}).get("generation") != new.get("metadata", {}).get("generation"))


def deletion_started(old: Obj, new: Obj) -> bool:
    return "deletionTimestamp" in new.get("metadata", {}) and "deletionTimestamp" not in old.get("metadata", {})


def finalizers_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("metadata", {}).get("finalizers") != new.get("metadata", {}).get("finalizers"))


def annotations_changed(*keys: str) -> Predicate:
    """True when any of ``keys`` was added, removed or changed (all annotations when no keys are given)."""

    def changed(old: Obj, new: Obj) -> bool:
        a = old.get("metadata", {}).get("annotations") or {}
        b = new.get("metadata", {}).get("annotations") or {}
        if not keys:
            return bool(a != b)
        return any(a.get(k) != b.get(k) for k in keys)

    return changed


def labels_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("metadata", {}).get("labels") != new.get("metadata", {}).get("labels"))


def any_of(*predicates: Predicate) -> Predicate:
    def either(old: Obj, new: Obj) -> bool:
        return any(p(old, new) for p in predicates)

    return either


def resource_version_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("metadata", {}).get("resourceVersion") != new.get("metadata", {}).get("resourceVersion"))


# ---------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class ControllerMetrics:
    total: Counter
    errors: Counter
    terminal_errors: Counter
    panics: Counter
    timeouts: Counter
    time: Histogram
    max_concurrent: Gauge
    active_workers: Gauge


def _create_controller_metrics(registry: CollectorRegistry) -> ControllerMetrics:
    c = ("controller",)
    return ControllerMetrics(
        total=Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            (*c, "result"),
            registry=registry,
        ),
        errors=Counter(
            "controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller", c,
            registry=registry,
        ),
        terminal_errors=Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", c, registry=registry,
        ),
        panics=Counter(
            "controller_runtime_reconcile_panics_total", "Total number of reconciliation panics per controller", c,
            registry=registry,
        ),
        timeouts=Counter(
            "controller_runtime_reconcile_timeouts_total", "Total number of reconciliation timeouts per controller", c,
            registry=registry,
        ),
        time=Histogram(
            "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller", c,
            registry=registry, buckets=RECONCILE_BUCKETS,
        ),
        max_concurrent=Gauge(
            "controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per controller", c,
            registry=registry,
        ),
        active_workers=Gauge(
            "controller_runtime_active_workers", "Number of currently used workers per controller", c,
            registry=registry,
        ),
    )  # fmt: skip


def controller_metrics(registry: CollectorRegistry | None = None) -> ControllerMetrics:
    return metrics.families(registry, _create_controller_metrics)


# ---------------------------------------------------------------------------------------------- controller


class Store(Protocol):
    def get(self, key: ObjectKey) -> Obj | None: ...


class Informer(Protocol):
    @property
    def store(self) -> Any: ...

    def add_handler(self, handler: Any) -> None: ...


class InformerSource(Protocol):
    def get(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Any: ...


class _Handler:
    """Turns informer events into keys on the queue; synchronous and cheap."""

    def __init__(self, enqueue: Callable[[ObjectKey], None], keys: Mapper, predicate: Predicate | None) -> None:
        self._enqueue = enqueue
        self._keys = keys
        self._predicate = predicate

    def _push(self, obj: Obj) -> None:
        for key in self._keys(obj):
            self._enqueue(key)

    def on_add(self, obj: Obj) -> None:
        self._push(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._predicate is None or self._predicate(old, new):
            self._push(new)

    def on_delete(self, obj: Obj | Tombstone) -> None:
        self._push(obj.last_known if isinstance(obj, Tombstone) else obj)


class Controller:
    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        informers: InformerSource,
        *,
        workers: int = 1,
        rate_limiter: RateLimiter | None = None,
        reconcile_timeout: float | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.reconciler = reconciler
        self.informers = informers
        self.workers = workers
        self.reconcile_timeout = reconcile_timeout
        self.queue: WorkQueue[ObjectKey] = WorkQueue(name, rate_limiter=rate_limiter, registry=registry)
        self.primary: Any = None
        self._primary_ref: ResourceRef | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        m = controller_metrics(registry)
        self._m_total = {r: m.total.labels(name, r) for r in RESULTS}  # pre-initialised to 0 like controller-runtime
        self._m_errors = m.errors.labels(name)
        self._m_terminal = m.terminal_errors.labels(name)
        self._m_panics = m.panics.labels(name)
        self._m_timeouts = m.timeouts.labels(name)
        self._m_time = m.time.labels(name)
        self._m_active = m.active_workers.labels(name)
        m.max_concurrent.labels(name).set(workers)

    # ------------------------------------------------------------------ wiring

    def for_(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        predicate: Predicate | None = None,
    ) -> Controller:
        """The primary kind: its own key is enqueued."""
        if self.primary is not None:
            raise ValueError(f"controller {self.name} already has a primary kind")
        self._primary_ref = resource
        self.primary = self.informers.get(resource, namespace=namespace, label_selector=label_selector)
        self.primary.add_handler(_Handler(self.queue.add, lambda o: [ObjectKey.of(o)], predicate))
        return self

    def owns(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        predicate: Predicate | None = None,
    ) -> Controller:
        """A child kind: the key of its controller owner (when that owner is of the primary kind) is enqueued."""
        primary = self._primary_ref
        if primary is None:
            raise ValueError("call for_() before owns()")

        def owner_key(obj: Obj) -> list[ObjectKey]:
            ref = controller_owner(obj)
            if ref is None or ref.get("kind") != primary.kind or ref.get("apiVersion") != primary.api_version:
                return []
            return [ObjectKey(obj["metadata"].get("namespace") if primary.namespaced else None, ref["name"])]

        return self.watches(
            resource, owner_key, namespace=namespace, label_selector=label_selector, predicate=predicate
        )

    def watches(
        self,
        resource: ResourceRef,
        mapper: Mapper,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        predicate: Predicate | None = None,
    ) -> Controller:
        """Any kind: ``mapper(obj)`` names the primary keys to enqueue."""
        informer = self.informers.get(resource, namespace=namespace, label_selector=label_selector)
        informer.add_handler(_Handler(self.queue.add, mapper, predicate))
        return self

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start the workers (call once this replica leads)."""
        if self._tasks:
            return
        if self.primary is None:
            raise ValueError(f"controller {self.name} has no primary kind")
        self._tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        log.info("controller workers started", controller=self.name, workers=self.workers)

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop taking new keys, let in-flight reconciles finish (up to ``timeout``), shut the queue down.

        Returns False when in-flight work had to be cancelled.
        """
        self._stopping = True
        self.queue.shutdown()
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("controller workers stopped", controller=self.name, cancelled=len(pending))
        return not pending

    async def _worker(self) -> None:
        while not self._stopping:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                if self._stopping:
                    continue  # shutting down: leave the key for the next leader
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: ObjectKey) -> None:
        """Reconcile one key and translate the outcome into queue operations and metrics."""
        obj = self.primary.store.get(key)
        reconcile_id = str(uuid.uuid4())
        self._m_active.inc()
        start = time.monotonic()
        with structlog.contextvars.bound_contextvars(
            controller=self.name, namespace=key.namespace, name=key.name, reconcile_id=reconcile_id
        ):
            try:
                if self.reconcile_timeout is not None:
                    async with asyncio.timeout(self.reconcile_timeout):
                        action = await self.reconciler.reconcile(key, obj)
                else:
                    action = await self.reconciler.reconcile(key, obj)
            except TerminalError as e:
                self._m_errors.inc()
                self._m_terminal.inc()
                self._m_total["error"].inc()
                self.queue.forget(key)
                log.error("reconcile failed terminally; not retrying", error=str(e))
            except TimeoutError as e:
                self._m_errors.inc()
                self._m_total["error"].inc()
                if self.reconcile_timeout is not None and time.monotonic() - start >= self.reconcile_timeout:
                    self._m_timeouts.inc()
                self.queue.add_rate_limited(key)
                log.warning("reconcile timed out; retrying with backoff", error=str(e) or "timeout")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._m_errors.inc()
                self._m_total["error"].inc()
                if not isinstance(e, _EXPECTED):
                    self._m_panics.inc()
                self.queue.add_rate_limited(key)
                log.warning(
                    "reconcile failed; retrying with backoff",
                    error=f"{type(e).__name__}: {e}",
                    requeues=self.queue.num_requeues(key),
                    exc_info=not isinstance(e, _EXPECTED),
                )
            else:
                self._handle(key, action)
            finally:
                self._m_time.observe(time.monotonic() - start)
                self._m_active.dec()

    def _handle(self, key: ObjectKey, action: Action) -> None:
        if action.rate_limited:
            self._m_total["requeue"].inc()
            self.queue.add_rate_limited(key)
        elif action.requeue_after is not None:
            self._m_total["requeue_after"].inc()
            self.queue.forget(key)
            self.queue.add_after(key, action.requeue_after)
        else:
            self._m_total["success"].inc()
            self.queue.forget(key)
