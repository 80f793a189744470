"""The manager: runs servers, informers, leader election and controllers in controller-runtime's order.

Start: metrics and probe servers → informers on every replica (warm standbys) → wait for cache sync
(readiness turns OK) → leader election → controllers' workers (leader only).
Stop (SIGTERM / ``stop`` event), within ``graceful_shutdown_timeout``: controllers finish in-flight
work → the lease is released → informers stop → clients close → servers stop last.
Losing leadership is fatal: workers are cancelled at once and ``run`` returns 1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from druid.runtime import health
from druid.runtime.client import Kube
from druid.runtime.controller import Controller
from druid.runtime.informer import InformerFactory
from druid.runtime.leaderelection import LeaderElector
from druid.runtime.reflector import ReflectorConfig

log = structlog.get_logger(__name__)


@dataclass
class LeaderElectionOptions:
    enabled: bool = False
    namespace: str = ""
    name: str = "druid-leader-election"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True


@dataclass
class ManagerOptions:
    metrics_address: str = ""
    metrics_port: int = 8080
    probe_address: str = ""
    probe_port: int = 8081
    cache_sync_timeout: float = 120.0
    graceful_shutdown_timeout: float = 25.0  # in-flight reconciles may finish for this long after a stop
    # From SIGTERM to exit at most (druid.runtime.shutdown; below the Deployment's grace period of 40s).
    shutdown_deadline: float = 35.0
    read_header_timeout: float = health.DEFAULT_HEADER_TIMEOUT  # servers close connections slower than this
    informer_down_threshold: float = 300.0  # liveness fails when a watch keeps failing this long
    loop_lag_threshold: float = 10.0
    leader_election: LeaderElectionOptions = field(default_factory=LeaderElectionOptions)


def default_identity() -> str:
    """``<pod name or hostname>_<uuid>`` like controller-runtime: unique per process, readable in the Lease."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4()}"


class Manager:
    def __init__(
        self,
        kube: Kube,
        options: ManagerOptions | None = None,
        *,
        election_kube: Kube | None = None,
        registry: CollectorRegistry | None = None,
        reflector_config: ReflectorConfig | None = None,
    ) -> None:
        self.kube = kube
        self.options = options or ManagerOptions()
        self.election_kube = election_kube
        self.registry = registry
        self.informers = InformerFactory(kube, registry=registry, config=reflector_config)
        self.controllers: list[Controller] = []
        self.liveness = health.Checks()
        self.readiness = health.Checks()
        self.lag = health.LoopLagMonitor(threshold=self.options.loop_lag_threshold)
        self.elector: LeaderElector | None = None
        self._servers: list[web.AppRunner] = []
        self._extra_servers: list[tuple[web.Application, str, int, ssl.SSLContext | None]] = []
        self._leader_tasks: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[Callable[[], Awaitable[None]]] = []
        self.metrics_port: int | None = None
        self.probe_port: int | None = None
        self.server_ports: list[int] = []  # bound ports of the add_server servers, in registration order
        self.is_leader = asyncio.Event()

    # ------------------------------------------------------------------ registration

    def add(self, controller: Controller) -> None:
        self.controllers.append(controller)

    def add_server(
        self, app: web.Application, address: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Another server run on every replica (e.g. a webhook; HTTPS with ``ssl_context``), started with the others."""
        self._extra_servers.append((app, address, port, ssl_context))

    def add_task(self, factory: Callable[[], Awaitable[None]]) -> None:
        """A coroutine run on every replica from start-up until shutdown (cancelled then)."""
        self._tasks.append(factory)

    def add_leader_task(self, factory: Callable[[], Awaitable[None]]) -> None:
        """A coroutine run only while leading (cancelled on shutdown)."""
        self._leader_tasks.append(factory)

    # ------------------------------------------------------------------ health

    def _informers_synced(self) -> str | None:
        pending = [str(i.resource) for i in self.informers if not i.has_synced()]
        return f"not synced: {', '.join(pending)}" if pending else None

    def _informers_healthy(self) -> str | None:
        bad = [str(i.resource) for i in self.informers if not i.healthy(self.options.informer_down_threshold)]
        return f"watch down: {', '.join(bad)}" if bad else None

    def _election_healthy(self) -> str | None:
        if self.elector is None or self.elector.healthy():
            return None
        return "leader lease not renewed in time"

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set (returns 0) or leadership is lost / caches never sync (returns 1)."""
        self.liveness.add("loop-lag", self.lag.check)
        self.liveness.add("informers", self._informers_healthy)
        self.liveness.add("leader-election", self._election_healthy)
        self.readiness.add("informer-sync", self._informers_synced)
        leader_tasks: list[asyncio.Task[None]] = []
        waits: list[asyncio.Future[Any]] = []
        code = 0
        try:
            await self._start_servers()
            leader_tasks = [asyncio.create_task(_run(f)) for f in self._tasks]
            self.lag.start()
            self.informers.start_all()
            if not await _until(stop, self.informers.wait_for_cache_sync(self.options.cache_sync_timeout)):
                if stop.is_set():
                    return 0
                log.error("caches did not sync in time", timeout=self.options.cache_sync_timeout)
                return 1
            log.info("caches synced", informers=len(list(self.informers)))
            lost = asyncio.Event()
            renew: asyncio.Task[None] | None = None
            if self.options.leader_election.enabled:
                self.elector = self._make_elector(lost)
                if not await self.elector.acquire(stop):
                    return 0
                renew = asyncio.create_task(self.elector.renew_loop(), name="leader-renew")
            self.is_leader.set()
            for c in self.controllers:
                c.start()
            log.info("leader work started", identity=self.elector.identity if self.elector else None)
            leader_tasks += [asyncio.create_task(_run(f)) for f in self._leader_tasks]
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            if renew is not None:
                waits.append(renew)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if lost.is_set() or (renew is not None and renew.done()):
                log.error("leadership lost; stopping workers at once and exiting")
                code = 1
                await self._stop_controllers(timeout=0)
                log.info("leader work stopped", reason="leadership lost")
                return code
            # Keep renewing while in-flight reconciles finish, so no standby takes over under our feet;
            # release() then stops the renew loop and hands the lease over.
            await self._stop_controllers(timeout=self.options.graceful_shutdown_timeout)
            log.info("leader work stopped", reason="shutdown")
            if self.elector is not None:
                if self.options.leader_election.release_on_cancel:
                    try:
                        await asyncio.wait_for(self.elector.release(), timeout=5)
                    except Exception as e:
                        log.warning("could not release the leader lease", error=str(e))
            return code
        finally:
            for t in [*leader_tasks, *waits]:
                t.cancel()
            await asyncio.gather(*leader_tasks, *waits, return_exceptions=True)
            await self._stop_controllers(timeout=0)
            await self.informers.stop_all()
            await self.lag.stop()
            await self.kube.close()
            if self.election_kube is not None:
                await self.election_kube.close()
            for runner in reversed(self._servers):
                await runner.cleanup()
            log.info("manager stopped", exit_code=code)

    def _make_elector(self, lost: asyncio.Event) -> LeaderElector:
        le = self.options.leader_election
        if not le.namespace:
            raise ValueError("leader election needs a namespace")
        return LeaderElector(
            self.election_kube or self.kube,
            le.namespace,
            le.name,
            le.identity or default_identity(),
            lease_duration=le.lease_duration,
            renew_deadline=le.renew_deadline,
            retry_period=le.retry_period,
            on_stopped_leading=lost.set,
            registry=self.registry,
        )

    async def _start_servers(self) -> None:
        o = self.options
        timeout = o.read_header_timeout
        metrics_runner = await health.serve(
            health.metrics_app(self.registry), o.metrics_address, o.metrics_port, header_timeout=timeout
        )
        self._servers.append(metrics_runner)
        self.metrics_port = health.bound_port(metrics_runner)
        probe_runner = await health.serve(
            health.probe_app(self.liveness, self.readiness), o.probe_address, o.probe_port, header_timeout=timeout
        )
        self._servers.append(probe_runner)
        self.probe_port = health.bound_port(probe_runner)
        for app, address, port, context in self._extra_servers:
            runner = await health.serve(app, address, port, ssl_context=context, header_timeout=timeout)
            self._servers.append(runner)
            self.server_ports.append(health.bound_port(runner))
        log.info("servers started", metrics_port=self.metrics_port, probe_port=self.probe_port)

    async def _stop_controllers(self, timeout: float) -> None:
        await asyncio.gather(*(c.stop(timeout=timeout) for c in self.controllers))


async def _run(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


async def _until(stop: asyncio.Event, work: Awaitable[bool]) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it and return False)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    return bool(task.result())
