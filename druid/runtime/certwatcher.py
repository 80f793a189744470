"""Serving certificates that follow their files: rotated ``tls.crt``/``tls.key`` are used without a restart.

Contract:

- :class:`CertWatcher` owns one server :class:`ssl.SSLContext` and the two files it was loaded from. ``check``
  compares the files' fingerprint (size and modification time of both, in nanoseconds) with the one last
  loaded; when it differs it loads the pair into the *same* context, so every handshake after that presents the
  new certificate while connections already open keep theirs. The listening sockets never close.
- A pair that cannot be loaded (one file written before the other, a key that does not match, a file missing
  for a moment during a Secret update) keeps the certificate in use and is tried again at the next check only
  if the files change again; the failure is logged and counted, never raised. A half-written pair therefore
  costs nothing, and the complete pair is picked up by the check after its last write.
- ``run`` checks every ``interval`` seconds (controller-runtime's certificate watcher also polls, every 10 s)
  until cancelled; the clock's ``sleep`` is injectable.
- A pair is first loaded into a scratch context: loading into the live one replaces the certificate before the
  key is checked, so a mismatched pair loaded there directly would break every later handshake.
- ``reloads`` and ``failures`` count what happened; ``on_reload(ok)`` is told too (for metrics).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL = 10.0
Fingerprint = tuple[int, int, int, int]


def fingerprint(cert: Path, key: Path) -> Fingerprint | None:
    """(size, mtime_ns) of both files, None while one of them is missing."""
    try:
        c, k = cert.stat(), key.stat()
    except OSError:
        return None
    return (c.st_size, c.st_mtime_ns, k.st_size, k.st_mtime_ns)


class CertWatcher:
    def __init__(
        self,
        context: ssl.SSLContext,
        cert: str | Path,
        key: str | Path,
        *,
        interval: float = DEFAULT_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.context = context
        self.cert, self.key = Path(cert), Path(key)
        self.interval = interval
        self._sleep = sleep
        self._on_reload = on_reload
        self._seen = fingerprint(self.cert, self.key)
        self.reloads = 0
        self.failures = 0

    def check(self) -> bool:
        """Load the pair into the context when the files changed since the last attempt; True when it did."""
        now = fingerprint(self.cert, self.key)
        if now is None or now == self._seen:
            return False
        self._seen = now
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(self.cert), str(self.key))
            self.context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as e:
            self.failures += 1
            log.warning(
                "rotated serving certificate not loaded; the previous one stays", file=str(self.cert), error=str(e)
            )
            if self._on_reload is not None:
                self._on_reload(False)
            return False
        self.reloads += 1
        log.info("serving certificate reloaded", file=str(self.cert))
        if self._on_reload is not None:
            self._on_reload(True)
        return True

    async def run(self) -> None:
        while True:
            await self._sleep(self.interval)
            self.check()
