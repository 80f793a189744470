"""A fake etcd-backup-restore HTTP server on 127.0.0.1 for tests of druid's calls to backup-restore.

It serves the snapshot trigger endpoints of backup-restore's HTTP API (``pkg/server/httpAPI.go``):

- ``GET``/``POST /snapshot/full``: a full snapshot;
- ``GET``/``POST /snapshot/delta``, optionally ``?final=true``: a (final) delta snapshot.

Every request is recorded (:attr:`FakeBackupRestore.requests`, also the ones answered with an error). The answer
is switchable at any time:

- :meth:`respond_ok` (the default): 200 with a JSON snapshot like backup-restore's (``kind``, ``startRevision``,
  ``lastRevision``, ``createdOn``, ``snapDir``, ``snapName``, ``isChunk``, ``compressionSuffix``, ``isFinal``);
  revisions grow by ``revision_step`` per snapshot, starting after :attr:`last_revision`;
- :meth:`respond_error`: any status (default 500) with a text body;
- :meth:`stop`: the port is closed, so calls fail with "connection refused"; :meth:`start` again re-binds
  the same port.

Plain HTTP by default; for HTTPS pass ``ssl_context`` or use :meth:`FakeBackupRestore.https`, which issues a
serving certificate for 127.0.0.1/localhost from a :class:`~druid.testing.pki.CertificateAuthority` (put
``ca.pair.cert``'s PEM into the Etcd's ``tlsCASecretRef`` secret). Use as ``async with FakeBackupRestore() as fake``
and point the code under test at :attr:`url`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from druid.testing.pki import CertificateAuthority

LOOPBACK = "127.0.0.1"
KIND_FULL, KIND_DELTA = "Full", "Incr"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]
    at: float = field(default_factory=time.time)

    @property
    def final(self) -> bool:
        return self.query.get("final") == "true"


def snapshot_body(kind: str, start: int, last: int, *, final: bool = False, compression: str = ".gz") -> dict[str, Any]:
    """A snapshot as backup-restore's ``brtypes.Snapshot`` JSON."""
    created = dt.datetime.now(dt.UTC)
    stamp = int(created.timestamp())
    return {
        "kind": kind,
        "startRevision": start,
        "lastRevision": last,
        "createdOn": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "snapDir": "",
        "snapName": f"{kind}-{start:08d}-{last:08d}-{stamp}{compression}",
        "isChunk": False,
        "compressionSuffix": compression,
        "isFinal": final,
    }


class FakeBackupRestore:
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, host: str = LOOPBACK, port: int = 0) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.status = 200
        self.error_body = ""
        self.delay = 0.0  # seconds to wait before answering (timeout tests)
        self.last_revision = 0
        self.revision_step = 1
        self._runner: web.AppRunner | None = None
        self.request_seen = asyncio.Event()

    @classmethod
    def https(cls, ca: CertificateAuthority) -> FakeBackupRestore:
        """HTTPS with a serving certificate for 127.0.0.1 and localhost signed by ``ca``."""
        pair = ca.issue("fake-backup-restore", "fake-backup-restore", dns=("localhost",), ips=(LOOPBACK,), server=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        return cls(ssl_context=context)

    # ------------------------------------------------------------------ answers

    def respond_ok(self) -> None:
        self.status, self.error_body = 200, ""

    def respond_error(self, status: int = 500, body: str = "fake backup-restore failure") -> None:
        self.status, self.error_body = status, body

    # ------------------------------------------------------------------ lifecycle

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid once started)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> FakeBackupRestore:
        if self._runner is not None:
            return self
        app = web.Application()
        for path, kind in (("/snapshot/full", KIND_FULL), ("/snapshot/delta", KIND_DELTA)):
            app.router.add_route("GET", path, self._handler(kind))
            app.router.add_route("POST", path, self._handler(kind))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context, reuse_address=True)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Close the port: further calls are refused until :meth:`start`."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeBackupRestore:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ inspection

    def calls(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if (path is None or r.path == path) and (method is None or r.method == method)]

    async def wait_for_request(self, count: int = 1, *, path: str | None = None, timeout: float = 10.0) -> None:
        """Until at least ``count`` requests (to ``path``) have been recorded."""
        async with asyncio.timeout(timeout):
            while len(self.calls(path)) < count:
                self.request_seen.clear()
                await self.request_seen.wait()

    # ------------------------------------------------------------------ serving

    def _handler(self, kind: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, dict(request.query), await request.read(), dict(request.headers)
                )
            )
            self.request_seen.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.status != 200:
                return web.Response(status=self.status, text=self.error_body)
            start = self.last_revision + 1 if kind == KIND_DELTA else 0
            self.last_revision += self.revision_step
            final = kind == KIND_DELTA and request.query.get("final") == "true"
            return web.json_response(snapshot_body(kind, start, self.last_revision, final=final))

        return handle
