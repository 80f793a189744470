"""Liveness and readiness endpoints with controller-runtime's healthz semantics, and the metrics endpoint.

- ``/healthz`` and ``/readyz`` aggregate named checks; each is also served at ``/healthz/<name>``.
- Success: 200 ``ok`` (``?verbose`` lists every check). Failure: 500 with one ``[+]``/``[-]`` line per
  check, the reason withheld, ending ``healthz check failed``. ``?exclude=name`` skips a check.
- A check is a callable returning None when healthy or a short reason string when not.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from druid.runtime import metrics
from druid.runtime.tasks import cancel_and_wait

Check = Callable[[], str | None]
log = structlog.get_logger(__name__)
_TEXT = "text/plain"


def ping() -> str | None:
    return None


@dataclass
class Checks:
    checks: dict[str, Check] = field(default_factory=lambda: {"ping": ping})

    def add(self, name: str, check: Check) -> None:
        if name in self.checks:
            raise ValueError(f"health check {name!r} registered twice")
        self.checks[name] = check

    def run(self) -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        for name, check in self.checks.items():
            try:
                results[name] = check()
            except Exception as e:  # a crashing check is a failing check
                results[name] = f"check raised {type(e).__name__}: {e}"
        return results


def _aggregate(checks: Checks, request: web.Request, kind: str) -> web.Response:
    excluded = set(request.query.getall("exclude", []))
    unknown = excluded - set(checks.checks)
    if unknown:
        log.warning("health check exclusion for unknown checks", endpoint=kind, names=sorted(unknown))
    verbose = "verbose" in request.query
    lines, failed = [], False
    for name, reason in checks.run().items():
        if name in excluded:
            lines.append(f"[+]{name} excluded: ok")
        elif reason is None:
            lines.append(f"[+]{name} ok")
        else:
            failed = True
            lines.append(f"[-]{name} failed: reason withheld")
            log.info("health check failed", endpoint=kind, check=name, reason=reason)
    if failed:
        return web.Response(status=500, text="\n".join([*lines, f"{kind} check failed"]) + "\n", content_type=_TEXT)
    if verbose:
        return web.Response(text="\n".join([*lines, f"{kind} check passed"]) + "\n", content_type=_TEXT)
    return web.Response(text="ok", content_type=_TEXT)


def _single(checks: Checks, request: web.Request) -> web.Response:
    name = request.match_info["name"]
    check = checks.checks.get(name)
    if check is None:
        raise web.HTTPNotFound(text=f"no such health check: {name}\n")
    try:
        reason = check()
    except Exception as e:
        reason = f"check raised {type(e).__name__}: {e}"
    if reason is None:
        return web.Response(text="ok", content_type=_TEXT)
    return web.Response(status=500, text=f"internal server error: {reason}\n", content_type=_TEXT)


def probe_app(liveness: Checks, readiness: Checks) -> web.Application:
    app = web.Application()

    async def healthz(r: web.Request) -> web.Response:
        return _aggregate(liveness, r, "healthz")

    async def readyz(r: web.Request) -> web.Response:
        return _aggregate(readiness, r, "readyz")

    async def healthz_one(r: web.Request) -> web.Response:
        return _single(liveness, r)

    async def readyz_one(r: web.Request) -> web.Response:
        return _single(readiness, r)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz/{name}", healthz_one)
    app.router.add_get("/readyz/{name}", readyz_one)
    return app


def metrics_app(registry: CollectorRegistry | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry or metrics.REGISTRY))
    return app


class LoopLagMonitor:
    """Measures event-loop lag; the liveness check fails while the recent lag exceeds a threshold."""

    def __init__(self, threshold: float = 10.0, interval: float = 0.5) -> None:
        self.threshold = threshold
        self.interval = interval
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(self.interval)
            self.lag = max(0.0, time.monotonic() - start - self.interval)

    def check(self) -> str | None:
        if self._task is not None and self._task.done():
            return "lag monitor stopped"
        if self.lag > self.threshold:
            return f"event loop lagged {self.lag:.1f}s (threshold {self.threshold:.0f}s)"
        return None


DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_SHUTDOWN_TIMEOUT = 2.0


async def serve(
    app: web.Application,
    address: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
) -> web.AppRunner:
    """Start serving ``app`` (HTTPS with ``ssl_context``); returns the runner to clean up.

    Port 0 picks a free port (see ``bound_port``). A connection that has not sent a complete request
    ``header_timeout`` seconds after it opened (or after its previous response) is closed — a client
    sending its request line or headers slowly cannot hold connections open (aiohttp's keep-alive timer
    runs from the moment a connection is made). Cleanup waits at most ``shutdown_timeout`` seconds for
    in-flight requests.
    """
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=header_timeout, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, address or None, port, ssl_context=ssl_context)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        return int(addr[1])
    raise RuntimeError("server is not listening")
