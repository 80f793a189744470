"""Leader election on a coordination.k8s.io/v1 Lease, following client-go ``tools/leaderelection``.

Algorithm (client-go ``tryAcquireOrRenew``): a leader whose lease is still valid by local observation
first PUTs the cached Lease (fast path); otherwise GET it (create it when absent), note the local
*monotonic* time whenever its spec changed, give up while another holder's lease has not expired by
that observation, then PUT with the observed resourceVersion (a concurrent writer makes it a 409, and
the next try re-observes). Remote timestamps are never compared with the local clock.

Lifecycle for a manager: ``acquire()`` → start leader-only work → ``renew_loop()`` (returns when
leadership is lost: exit non-zero) → on shutdown stop that work, then ``release()`` (client-go
ReleaseOnCancel), which also stops the renew loop. ``run(stop)`` chains them for simple callers.

Deviations from client-go, all on the safe side: release writes only if the server copy still names
us; the renew loop gives up as soon as it sees another holder, and never later than one lease
duration after the last successful renew (event-loop stalls); a standby retries right at the
observed expiry if that comes before its jittered retry; ``on_stopped_leading`` runs only after we led.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Gauge

from druid.runtime import metrics
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock, micro_time
from druid.runtime.objects import LEASES, Obj
from druid.runtime.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

JITTER_FACTOR = 1.2
HEALTH_CHECK_NAME = "leaderElection"
Hook = Callable[[], Awaitable[None] | None]
LeaderHook = Callable[[str], Awaitable[None] | None]


def _create_metrics(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "leader_election_master_status",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates "
        "master. 'name' is the string used to identify the lease. Please make sure to group by name.",
        ["name"],
        registry=registry,
    )


def master_status(registry: CollectorRegistry | None = None) -> Gauge:
    """The ``leader_election_master_status{name}`` gauge in ``registry`` (default the process registry)."""
    return metrics.families(registry, _create_metrics)


def validate_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """client-go ``NewLeaderElector`` checks; the lease needs ≥ 1 s because the Lease holds whole seconds."""
    if lease_duration <= renew_deadline:
        raise ValueError("lease_duration must be greater than renew_deadline")
    if renew_deadline <= JITTER_FACTOR * retry_period:
        raise ValueError("renew_deadline must be greater than retry_period*1.2")
    if lease_duration < 1:
        raise ValueError("lease_duration must be at least 1 second")
    if renew_deadline <= 0 or retry_period <= 0:
        raise ValueError("renew_deadline and retry_period must be greater than zero")


def lease_spec(holder: str, duration: int, acquire: str, renew: str, transitions: int) -> Obj:
    """client-go ``LeaderElectionRecordToLeaseSpec`` (no preferredHolder/strategy: the whole spec is replaced)."""
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": acquire,
        "renewTime": renew,
        "leaseTransitions": transitions,
    }


def release_spec(observed: Obj, now: str) -> Obj:
    """client-go ``release``: no holder, 1 s duration, acquire = renew = now, transitions kept."""
    return lease_spec("", 1, now, now, int(observed.get("leaseTransitions") or 0))


class LeaderElector:
    """One candidate for the lease ``namespace/name``. Give it its own :class:`Kube` (own connection pool)."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Clock | None = None,
        on_started_leading: Hook | None = None,
        on_stopped_leading: Hook | None = None,
        on_new_leader: LeaderHook | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        validate_timings(lease_duration, renew_deadline, retry_period)
        if not identity:
            raise ValueError("identity must not be empty")
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.lease_seconds = int(lease_duration)
        self.call_timeout = max(renew_deadline / 2, 1.0)
        self.clock: Clock = clock or SystemClock()
        self.on_started_leading, self.on_stopped_leading = on_started_leading, on_stopped_leading
        self.on_new_leader = on_new_leader
        self._gauge = master_status(registry).labels(name)
        self._gauge.set(0)
        self._lease: Obj | None = None  # last Lease read or written (its resourceVersion is the precondition)
        self._observed: Obj | None = None  # its spec
        self._observed_at = 0.0  # monotonic time the spec was last seen to change
        self._reported = ""
        self._leading = False
        self.last_renew_monotonic = 0.0  # when the last successful acquire/renew write was sent
        self._renew_task: asyncio.Task[Any] | None = None
        self._hook_tasks: set[asyncio.Future[None]] = set()
        self._log = log.bind(lease=f"{namespace}/{name}", identity=identity)

    # ------------------------------------------------------------------ state

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The last observed holder ("" when none)."""
        return str((self._observed or {}).get("holderIdentity") or "")

    def healthy(self, tolerance: float = 20.0) -> bool:
        """client-go HealthzAdaptor: unhealthy if leading but not renewed for lease_duration + tolerance."""
        return (
            not self._leading or self.clock.monotonic() - self.last_renew_monotonic <= self.lease_duration + tolerance
        )

    def _lease_valid(self, mono: float) -> bool:
        duration = int((self._observed or {}).get("leaseDurationSeconds") or 0)
        return self._observed_at + duration > mono

    # ------------------------------------------------------------------ API calls

    async def _call(self, method: str, body: Obj | None = None, *, collection: bool = False) -> Obj:
        path = LEASES.path(self.namespace, None if collection else self.name)
        try:
            async with asyncio.timeout(self.call_timeout):
                result: Obj = await self.kube.request(method, path, body=body, timeout=self.call_timeout)
        except TimeoutError as e:
            raise ApiError(0, "Timeout", f"{method} lease timed out after {self.call_timeout}s") from e
        return result

    async def _put(self, spec: Obj) -> Obj:
        assert self._lease is not None
        return await self._call("PUT", {**self._lease, "spec": spec})

    def _observe(self, lease: Obj) -> None:
        """Cache ``lease``; restart the expiry clock when its spec differs from the last one seen."""
        self._lease = lease
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed = spec
            self._observed_at = self.clock.monotonic()

    # ------------------------------------------------------------------ algorithm

    async def try_acquire_or_renew(self) -> bool:
        """One client-go ``tryAcquireOrRenew``; True when we hold the lease afterwards."""
        sent = self.clock.monotonic()
        now = micro_time(self.clock.now())
        # 1. Fast path: the leader updates its cached copy optimistically.
        if self.leader == self.identity and self._lease is not None and self._lease_valid(sent):
            assert self._observed is not None
            spec = lease_spec(
                self.identity,
                self.lease_seconds,
                self._observed.get("acquireTime") or now,
                now,
                int(self._observed.get("leaseTransitions") or 0),
            )
            try:
                return self._written(await self._put(spec), sent)
            except ApiError as e:
                self._log.debug("optimistic renew failed, falling back to slow path", error=str(e))
        # 2. Read the lease, or create it.
        try:
            lease = await self._call("GET")
        except ApiError as e:
            if not e.not_found:
                self._log.warning("error retrieving lease", error=str(e))
                return False
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": lease_spec(self.identity, self.lease_seconds, now, now, 0),
            }
            try:
                return self._written(await self._call("POST", body, collection=True), sent)
            except ApiError as e2:
                self._log.warning("error creating lease", error=str(e2))
                return False
        # 3. Observe it; a lease held by another is respected until it expires by our observation.
        self._observe(lease)
        observed = self._observed or {}
        holder = str(observed.get("holderIdentity") or "")
        if holder and holder != self.identity and self._lease_valid(sent):
            return False
        # 4. Take it over (or renew on the slow path).
        transitions = int(observed.get("leaseTransitions") or 0)
        if holder == self.identity:
            spec = lease_spec(self.identity, self.lease_seconds, observed.get("acquireTime") or now, now, transitions)
        else:
            spec = lease_spec(self.identity, self.lease_seconds, now, now, transitions + 1)
        try:
            return self._written(await self._put(spec), sent)
        except ApiError as e:
            self._log.warning("failed to update lease", error=str(e), conflict=e.conflict)
            return False

    def _written(self, lease: Obj, sent: float) -> bool:
        self._observe(lease)
        self._observed_at = self.clock.monotonic()
        self.last_renew_monotonic = sent
        return True

    def _report_transition(self) -> None:
        if self.leader == self._reported:
            return
        self._reported = self.leader
        self._log.info("new leader observed", leader=self._reported)
        if self.on_new_leader is not None:
            self._hook("on_new_leader", self.on_new_leader, self._reported)

    def _hook(self, what: str, fn: Callable[..., Awaitable[None] | None], *args: str) -> None:
        """Call a hook; an async one runs in the background (client-go runs callbacks in goroutines)."""
        try:
            result = fn(*args)
        except Exception as e:
            self._log.exception("leader election hook failed", hook=what, error=repr(e))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._hook_tasks.add(task)
            task.add_done_callback(lambda t: self._hook_done(what, t))

    def _hook_done(self, what: str, task: asyncio.Future[None]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("leader election hook failed", hook=what, error=repr(task.exception()))

    def _start_leading(self) -> None:
        self._leading = True
        self._gauge.set(1)
        self._log.info("started leading")
        if self.on_started_leading is not None:
            self._hook("on_started_leading", self.on_started_leading)

    def _stop_leading(self, reason: str) -> None:
        if not self._leading:
            return
        self._leading = False
        self._gauge.set(0)
        self._log.info("stopped leading", reason=reason)
        if self.on_stopped_leading is not None:
            self._hook("on_stopped_leading", self.on_stopped_leading)

    # ------------------------------------------------------------------ loops

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Try every retry_period·[1, 2.2) until we lead (True) or ``stop`` is set (False)."""
        self._log.info("attempting to acquire leader lease")
        while not (stop is not None and stop.is_set()):
            ok = await self.try_acquire_or_renew()
            self._report_transition()
            if ok:
                self._start_leading()
                return True
            delay = self.retry_period * (1 + random.random() * JITTER_FACTOR)
            if self.leader and self._observed is not None:  # retry right at the observed expiry if sooner
                expiry = self._observed_at + int(self._observed.get("leaseDurationSeconds") or 0)
                delay = min(delay, max(expiry - self.clock.monotonic(), 0.0) + 0.05)
            await _sleep_unless(self.clock, delay, stop)
        return False

    async def renew_loop(self) -> None:
        """Renew every retry_period while leading; return once leadership is lost (callers exit non-zero)."""
        self._renew_task = asyncio.current_task()
        try:
            while self._leading:
                if not await self._renew_round():
                    self._stop_leading("failed to renew lease")
                    return
                await self.clock.sleep(self.retry_period)
        finally:
            self._renew_task = None

    async def _renew_round(self) -> bool:
        """client-go: poll every retry_period up to renew_deadline; we also stop at the lease's own end."""
        start = self.clock.monotonic()
        deadline = min(start + self.renew_deadline, self.last_renew_monotonic + self.lease_seconds)
        while (remaining := deadline - self.clock.monotonic()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    ok = await self.try_acquire_or_renew()
            except TimeoutError:
                ok = False
            self._report_transition()
            if ok:
                return True
            if self.leader not in ("", self.identity):
                self._log.warning("lease taken by another candidate", leader=self.leader)
                return False
            await self.clock.sleep(min(self.retry_period, max(deadline - self.clock.monotonic(), 0.0)))
        self._log.warning("lease not renewed within the deadline", renew_deadline=self.renew_deadline)
        return False

    async def release(self) -> bool:
        """Stop renewing and hand the lease over (client-go ReleaseOnCancel); call after leader work stopped."""
        task = self._renew_task
        if task is not asyncio.current_task():
            await cancel_and_wait(task)
        self._stop_leading("releasing lease")
        try:
            async with asyncio.timeout(self.renew_deadline):
                while True:
                    try:
                        lease = await self._call("GET")
                        self._observe(lease)
                        if (self._observed or {}).get("holderIdentity") != self.identity:
                            return True  # not ours (any more): nothing to release
                        written = await self._put(release_spec(self._observed or {}, micro_time(self.clock.now())))
                    except ApiError as e:
                        if e.conflict:
                            continue  # raced with an in-flight renew: re-read and retry
                        self._log.warning("failed to release lease", error=str(e))
                        return False
                    self._observe(written)
                    self._report_transition()
                    self._log.info("lease released")
                    return True
        except TimeoutError:
            self._log.warning("failed to release lease within the renew deadline")
            return False

    async def run(self, stop: asyncio.Event, *, release_on_cancel: bool = True) -> bool:
        """acquire → renew until ``stop`` (True; lease released) or loss (False). Guarded work must have
        stopped before ``stop`` is set."""
        if not await self.acquire(stop):
            return True
        renew = asyncio.create_task(self.renew_loop())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({renew, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if renew.done():
                renew.result()
                return False
            if release_on_cancel:
                await self.release()
            else:
                renew.cancel()
                self._stop_leading("stopped")
            return True
        finally:
            for t in (renew, stopper):
                t.cancel()
            await asyncio.gather(renew, stopper, return_exceptions=True)


async def _sleep_unless(clock: Clock, seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await clock.sleep(seconds)
        return
    sleeper, stopper = asyncio.ensure_future(clock.sleep(seconds)), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopper.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)


# ---------------------------------------------------------------------- process entry point (tests, debugging)
