"""Shared informers: one cache and one list/watch per (resource, namespace, selectors), many handlers.

Handlers are called synchronously, in order, after the store (and its indexes) reflect the change, so
a handler that looks the key up in the store sees at least that state. Handlers must only do cheap,
non-blocking work (enqueue a key); an exception in one is logged and does not affect the others.

The watch runs in a supervised task: an unexpected exception is logged and counted, and the loop is
restarted after a backoff with a fresh list. :meth:`SharedInformer.healthy` is the liveness signal
(False when the task is dead or has been failing for too long); :meth:`SharedInformer.has_synced` is
the readiness signal.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from druid.runtime import metrics
from druid.runtime.client import METADATA_ONLY, Kube
from druid.runtime.clock import Clock, SystemClock
from druid.runtime.objects import Obj, ResourceRef, Tombstone
from druid.runtime.reflector import Backoff, Reflector, ReflectorConfig
from druid.runtime.store import Delta, DeltaType, IndexFunc, Store, Transform
from druid.runtime.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

DEFAULT_MAX_DOWN_SECONDS = 300.0


class EventHandler(Protocol):
    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | Tombstone) -> None: ...


@dataclass(frozen=True)
class FuncHandler:
    """An :class:`EventHandler` from optional functions (client-go ``ResourceEventHandlerFuncs``)."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj | Tombstone], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add is not None:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update is not None:
            self.update(old, new)

    def on_delete(self, obj: Obj | Tombstone) -> None:
        if self.delete is not None:
            self.delete(obj)


@dataclass(frozen=True)
class InformerMetrics:
    synced: Gauge
    objects: Gauge
    crashes: Counter
    handler_errors: Counter


def _create_informer_metrics(registry: CollectorRegistry) -> InformerMetrics:
    labels = ["informer"]
    return InformerMetrics(
        synced=Gauge(
            "druid_informer_synced", "1 once the informer's cache holds its first list.", labels, registry=registry
        ),
        objects=Gauge("druid_informer_objects", "Objects in the informer's cache.", labels, registry=registry),
        crashes=Counter(
            "druid_informer_crashes_total",
            "Unexpected exceptions that restarted an informer.",
            labels,
            registry=registry,
        ),
        handler_errors=Counter(
            "druid_informer_handler_errors_total", "Exceptions raised by event handlers.", labels, registry=registry
        ),
    )


def informer_metrics(registry: CollectorRegistry | None = None) -> InformerMetrics:
    return metrics.families(registry, _create_informer_metrics)


def informer_name(
    resource: ResourceRef,
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None,
    accept: str | None = None,
) -> str:
    """A short, stable description used in logs, metrics and health check names."""
    parts = [str(resource) + (" (metadata)" if accept == METADATA_ONLY else "")]
    if namespace:
        parts.append(f"ns={namespace}")
    if label_selector:
        parts.append(f"labels={label_selector}")
    if field_selector:
        parts.append(f"fields={field_selector}")
    return " ".join(parts)


class SharedInformer:
    def __init__(
        self,
        kube: Kube,
        resource: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform | None = None,
        *,
        keep_managed_fields: str | None = None,
        accept: str | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        config: ReflectorConfig | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.resource, self.namespace = resource, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.transform = transform
        self.keep_managed_fields = keep_managed_fields
        self.accept = accept
        self.name = informer_name(resource, namespace, label_selector, field_selector, accept)
        self.clock: Clock = clock or SystemClock()
        self.store = Store(indexers, transform, keep_managed_fields=keep_managed_fields)
        self.reflector = Reflector(
            kube,
            resource,
            self.store,
            self._dispatch,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            accept=accept,
            config=config,
            clock=self.clock,
            name=self.name,
            registry=registry,
        )
        self._metrics = informer_metrics(registry)
        self._log = log.bind(informer=self.name)
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.crashes = 0
        self._metrics.synced.labels(self.name).set(0)

    # ------------------------------------------------------------------ handlers

    def add_handler(self, handler: EventHandler) -> None:
        """Register a handler; once synced, it first gets an add for every cached object."""
        self._handlers.append(handler)
        if self.has_synced():
            for obj in self.store.list():
                self._call(handler.on_add, obj)

    def remove_handler(self, handler: EventHandler) -> None:
        self._handlers.remove(handler)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.store.add_indexer(name, fn)

    def _dispatch(self, deltas: list[Delta]) -> None:
        handlers = tuple(self._handlers)
        for d in deltas:
            for h in handlers:
                if d.type is DeltaType.ADDED:
                    self._call(h.on_add, d.obj)
                elif d.type is DeltaType.UPDATED:
                    self._call(h.on_update, d.old, d.obj)
                else:
                    self._call(h.on_delete, d.obj)
        self._metrics.objects.labels(self.name).set(len(self.store))
        if not self._synced.is_set():
            self._synced.set()  # the first dispatch is always the initial list
            self._metrics.synced.labels(self.name).set(1)
            self._log.info("synced", objects=len(self.store))

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            self._metrics.handler_errors.labels(self.name).inc()
            self._log.exception("event handler failed", handler=getattr(fn, "__qualname__", repr(fn)))

    # ------------------------------------------------------------------ sync

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True once synced; False if ``timeout`` seconds pass first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run in a background task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"informer {self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        """True while :meth:`run` is executing (in the :meth:`start` task or a caller's own)."""
        return self._running

    async def run(self) -> None:
        """List and watch until cancelled, restarting after unexpected exceptions."""
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        backoff = Backoff(self.reflector.config, self.clock, random.Random())
        try:
            while True:
                try:
                    await self.reflector.run()
                    raise RuntimeError("reflector returned")  # it only ever ends by raising
                except Exception as e:
                    self.crashes += 1
                    self._metrics.crashes.labels(self.name).inc()
                    self.reflector.mark_failing(f"crashed: {type(e).__name__}: {e}")
                    delay = backoff.next()
                    self._log.exception("informer crashed, restarting", delay=round(delay, 2))
                    await self.clock.sleep(delay)
        finally:
            self._running = False

    # ------------------------------------------------------------------ health

    def healthy(self, max_down_seconds: float = DEFAULT_MAX_DOWN_SECONDS) -> bool:
        """Liveness: False when the watch task is not running (never started, died or was cancelled)
        or list/watch has kept failing for more than ``max_down_seconds``."""
        if not self.running:
            return False
        since = self.reflector.failing_since
        return since is None or self.clock.monotonic() - since <= max_down_seconds

    def status(self) -> dict[str, Any]:
        """What a verbose health check or a debug endpoint would show."""
        r = self.reflector
        since = r.failing_since
        return {
            "informer": self.name,
            "running": self.running,
            "synced": self.has_synced(),
            "objects": len(self.store),
            "resource_version": r.resource_version,
            "failing_for": None if since is None else round(self.clock.monotonic() - since, 3),
            "last_error": r.last_error,
            "crashes": self.crashes,
            "lists": dict(r.stats.lists),
            "watch_ends": dict(r.stats.watch_ends),
        }


InformerKey = tuple[ResourceRef, str | None, str | None, str | None, str | None]


class InformerFactory:
    """One :class:`SharedInformer` per (resource, namespace, label selector, field selector, accept).

    ``accept=client.METADATA_ONLY`` makes a metadata-only informer: it lists and watches
    PartialObjectMetadata, so e.g. Secrets are cached without their data.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        config: ReflectorConfig | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.kube = kube
        self._config, self._clock, self._registry = config, clock, registry
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started = False

    def get(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform | None = None,
        keep_managed_fields: str | None = None,
        accept: str | None = None,
    ) -> SharedInformer:
        """The shared informer for this scope, created on first use (and started if the factory is).

        ``transform`` and ``keep_managed_fields`` (see :class:`Store`) apply when the informer is created;
        asking for different ones later is an error.
        """
        key: InformerKey = (
            resource,
            namespace if resource.namespaced else None,
            label_selector,
            field_selector,
            accept,
        )
        informer = self._informers.get(key)
        if informer is None:
            informer = SharedInformer(
                self.kube,
                resource,
                key[1],
                label_selector,
                field_selector,
                transform,
                keep_managed_fields=keep_managed_fields,
                accept=accept,
                config=self._config,
                clock=self._clock,
                registry=self._registry,
            )
            self._informers[key] = informer
            if self._started:
                informer.start()
        elif transform is not None and transform is not informer.transform:
            raise ValueError(f"informer {informer.name} already exists with another transform")
        elif keep_managed_fields is not None and keep_managed_fields != informer.keep_managed_fields:
            raise ValueError(f"informer {informer.name} already exists keeping other managedFields")
        return informer

    def start_all(self) -> None:
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def stop_all(self) -> None:
        self._started = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))

    def all_synced(self) -> bool:
        return all(i.has_synced() for i in self._informers.values())

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once every informer (including ones created while waiting) has synced."""
        try:
            async with asyncio.timeout(timeout):
                while not self.all_synced():
                    await asyncio.gather(*(i.wait_for_sync() for i in list(self._informers.values())))
        except TimeoutError:
            return False
        return True

    def __iter__(self) -> Iterator[SharedInformer]:
        return iter(list(self._informers.values()))

    def __len__(self) -> int:
        return len(self._informers)
