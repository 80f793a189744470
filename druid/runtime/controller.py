"""A controller: informer events → keys on a rate-limited workqueue → N workers calling a reconciler.

Build one with ``Controller(name, reconciler, informers).for_(primary).owns(child).watches(kind, mapper)``.
Each watch names its informer's options (namespace, label/field selector, transform, metadata-only,
managedFields kept) and its event filter: a plain ``(old, new)`` predicate filters updates only; a
:class:`Predicates` filters creates, updates, deletes and generic events separately.
Event handlers only enqueue keys, so they run on standby replicas too (warm caches, a ready backlog);
workers start only when ``run()`` is called, i.e. once this replica leads.

Errors: ``error_policy(e)`` tells whether an exception a reconcile raised is part of normal operation
(default: API errors); any other exception is also counted as a panic and logged with its traceback.
Either way the key is retried with backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from druid.runtime import metrics
from druid.runtime.client import METADATA_ONLY, ApiError
from druid.runtime.objects import Obj, ObjectKey, ResourceRef, Tombstone, controller_owner
from druid.runtime.ratelimit import RateLimiter
from druid.runtime.reconcile import Action, Reconciler, TerminalError
from druid.runtime.store import Transform
from druid.runtime.workqueue import QueueShutDown, WorkQueue

log = structlog.get_logger(__name__)

Predicate = Callable[[Obj, Obj], bool]
"""Decides on an update (old, new) whether the key is enqueued. Adds and deletes always enqueue."""
ObjPredicate = Callable[[Obj], bool]


@dataclass(frozen=True)
class Predicates:
    """An event filter per event type; None lets every event of that type through."""

    create: ObjPredicate | None = None
    update: Predicate | None = None
    delete: ObjPredicate | None = None  # gets the last known state for a tombstone
    generic: ObjPredicate | None = None

    @classmethod
    def of(cls, predicate: Predicate | Predicates | None) -> Predicates:
        if predicate is None:
            return cls()
        return predicate if isinstance(predicate, Predicates) else cls(update=predicate)


def never(*_: Obj) -> bool:
    """A filter that drops every event of its type (fits any event type's signature)."""
    return False


ErrorPolicy = Callable[[Exception], bool]
"""True when a reconcile error is expected (normal operation: conflicts, outages), False for a panic."""


def api_errors_expected(error: Exception) -> bool:
    """The default policy: API errors are part of normal operation, anything else is a bug."""
    return isinstance(error, ApiError)


Mapper = Callable[[Obj], Iterable[ObjectKey]]

RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip
RESULTS = ("success", "error", "requeue", "requeue_after")


# ---------------------------------------------------------------------------------------------- predicates


def generation_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("metadata", {}).get("generation") != new.get("metadata", {}).get("generation"))


def deletion_started(old: Obj, new: Obj) -> bool:
    return "deletionTimestamp" in new.get("metadata", {}) and "deletionTimestamp" not in old.get("metadata", {})


def annotations_changed(*keys: str) -> Predicate:
    """True when any of ``keys`` was added, removed or changed (all annotations when no keys are given)."""

    def changed(old: Obj, new: Obj) -> bool:
        a = old.get("metadata", {}).get("annotations") or {}
        b = new.get("metadata", {}).get("annotations") or {}
        if not keys:
            return bool(a != b)
        return any(a.get(k) != b.get(k) for k in keys)

    return changed


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
        transform: Transform | None = None,
        keep_managed_fields: str | None = None,
        accept: str | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class WatchOptions:
    """How the informer behind one watch lists, watches and caches (see ``InformerFactory.get``)."""

    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    transform: Transform | None = None
    metadata_only: bool = False
    keep_managed_fields: str | None = None

    def informer(self, source: InformerSource, resource: ResourceRef) -> Any:
        return source.get(
            resource,
            self.namespace,
            self.label_selector,
            self.field_selector,
            self.transform,
            keep_managed_fields=self.keep_managed_fields,
            accept=METADATA_ONLY if self.metadata_only else None,
        )


def _options(options: WatchOptions | None, fields: dict[str, Any]) -> WatchOptions:
    return dataclasses.replace(options or WatchOptions(), **fields)


class _Handler:
    """Turns informer events into keys on the queue; synchronous and cheap."""

    def __init__(self, enqueue: Callable[[ObjectKey], None], keys: Mapper, predicates: Predicates) -> None:
        self._enqueue = enqueue
        self._keys = keys
        self._p = predicates

    def _push(self, obj: Obj) -> None:
        for key in self._keys(obj):
            self._enqueue(key)

    def on_add(self, obj: Obj) -> None:
        if self._p.create is None or self._p.create(obj):
            self._push(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._p.update is None or self._p.update(old, new):
            self._push(new)

    def on_delete(self, obj: Obj | Tombstone) -> None:
        last = obj.last_known if isinstance(obj, Tombstone) else obj
        if self._p.delete is None or self._p.delete(last):
            self._push(last)

    def on_generic(self, obj: Obj) -> None:
        if self._p.generic is None or self._p.generic(obj):
            self._push(obj)


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
        error_policy: ErrorPolicy = api_errors_expected,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.reconciler = reconciler
        self.informers = informers
        self.workers = workers
        self.reconcile_timeout = reconcile_timeout
        self.error_policy = error_policy
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
        predicate: Predicate | Predicates | None = None,
        options: WatchOptions | None = None,
        **fields: Any,
    ) -> Controller:
        """The primary kind: its own key is enqueued.

        The informer's options are ``options``, with any :class:`WatchOptions` field given as a keyword on top.
        """
        if self.primary is not None:
            raise ValueError(f"controller {self.name} already has a primary kind")
        self._primary_ref = resource
        self.primary = _options(options, fields).informer(self.informers, resource)
        self._add_handler(self.primary, lambda o: [ObjectKey.of(o)], predicate)
        return self

    def owns(
        self,
        resource: ResourceRef,
        *,
        predicate: Predicate | Predicates | None = None,
        options: WatchOptions | None = None,
        **fields: Any,
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

        return self.watches(resource, owner_key, predicate=predicate, options=_options(options, fields))

    def watches(
        self,
        resource: ResourceRef,
        mapper: Mapper,
        *,
        predicate: Predicate | Predicates | None = None,
        options: WatchOptions | None = None,
        **fields: Any,
    ) -> Controller:
        """Any kind: ``mapper(obj)`` names the primary keys to enqueue."""
        self._add_handler(_options(options, fields).informer(self.informers, resource), mapper, predicate)
        return self

    def _add_handler(self, informer: Any, mapper: Mapper, predicate: Predicate | Predicates | None) -> None:
        informer.add_handler(_Handler(self.queue.add, mapper, Predicates.of(predicate)))

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
                expected = self.error_policy(e)
                if not expected:
                    self._m_panics.inc()
                self.queue.add_rate_limited(key)
                log.warning(
                    "reconcile failed; retrying with backoff",
                    error=f"{type(e).__name__}: {e}",
                    requeues=self.queue.num_requeues(key),
                    exc_info=not expected,
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
