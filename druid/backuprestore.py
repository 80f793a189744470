"""The HTTP client of etcd-backup-restore's API, shared by the compaction controller and the ops task.

Contract:

- **Endpoint.** An :data:`Endpoint` maps an Etcd to the base URL (``scheme://host:port``, no path) of its
  backup-restore server. The default is the client Service inside the cluster, https when
  ``spec.backup.tls`` is set, on the backup port. etcd-druid spells the host two ways and druid keeps
  both, since the URL shows in error messages: the compaction controller uses the cluster-local name
  (:func:`service_endpoint`, ``<etcd>-client.<ns>.svc.cluster.local``), the ops task the short one
  (:func:`short_service_endpoint`, ``<etcd>-client.<ns>``). Tests inject their own (a fake on 127.0.0.1).
- **TLS.** :func:`ca_context` turns the CA bundle in a Secret's data (key ``dataKey`` of ``spec.backup.tls``,
  default ``bundle.crt``) into a client context that verifies the server against it, TLS ≥ 1.2. Which
  Secret holds the bundle is the caller's business (compaction reads ``tlsCASecretRef``, the ops task the
  Secret mounted as the StatefulSet's CA volume, as etcd-druid does); both errors say which Secret failed.
- **One session.** A :class:`BackupRestoreClient` keeps one aiohttp session, opened on first use and reused
  for every request (connections are pooled per host and TLS context). :meth:`BackupRestoreClient.close`
  closes it; :meth:`BackupRestoreClient.hold_open` is a task that closes it when cancelled, so a manager
  that cancels its leader tasks on shutdown closes the session with them. A session belongs to the event
  loop that opened it: used from another loop (tests run one loop each), the client opens a new one.
- **Timeouts.** Every request carries its own total timeout (the caller's, from the Etcd or the task).
- **Errors.** A request that gets no answer raises :class:`BackupRestoreError` with ``status`` 0 and a
  message like Go's ``*url.Error``: ``<Method> "<url>": <cause>``. An answer, whatever its status, is
  returned; reading its body may still fail (``status`` is then the answer's, reason ``ReadBody``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from druid.api import defaults, names
from druid.api.etcd import Etcd

Endpoint = Callable[[Etcd], str]
"""Base URL (``scheme://host:port``, no path) of an Etcd's backup-restore server."""


class BackupRestoreError(Exception):
    """A failed call to backup-restore's HTTP API: a non-200 answer, or ``status`` 0 when it could not be made.

    Not an API-server error: each controller's error policy decides how it is treated.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class CAKeyNotFound(ValueError):
    """The CA Secret has no data under the expected key."""


class CAAppendFailed(ValueError):
    """The CA Secret's data is not a PEM bundle of certificates."""


def _service_url(etcd: Etcd, host: str) -> str:
    scheme = "https" if etcd.spec.backup.tls is not None else "http"
    return f"{scheme}://{host}:{defaults.backup_port(etcd.spec.backup)}"


def service_endpoint(etcd: Etcd) -> str:
    """``<scheme>://<etcd>-client.<ns>.svc.cluster.local:<backup port>`` (etcd-druid's compaction controller)."""
    return _service_url(etcd, f"{names.client_service_name(etcd.name)}.{etcd.namespace}.svc.cluster.local")


def short_service_endpoint(etcd: Etcd) -> str:
    """``<scheme>://<etcd>-client.<ns>:<backup port>`` (etcd-druid's ops task handlers)."""
    return _service_url(etcd, f"{names.client_service_name(etcd.name)}.{etcd.namespace}")


def ca_data_key(etcd: Etcd) -> str:
    """The key of the CA bundle in the CA Secret: ``spec.backup.tls...dataKey`` or ``bundle.crt``."""
    tls = etcd.spec.backup.tls
    assert tls is not None
    return defaults.ca_data_key(tls, defaults.DEFAULT_CA_BUNDLE_DATA_KEY)


def ca_context(secret: Mapping[str, Any], key: str, where: str) -> ssl.SSLContext:
    """Client TLS (≥ 1.2) trusting the base64 PEM bundle at ``data[key]`` of Secret ``where`` (``ns/name``).

    Raises :class:`CAKeyNotFound` or :class:`CAAppendFailed`.
    """
    data = (secret.get("data") or {}).get(key)
    if data is None:
        raise CAKeyNotFound(f'CA cert data key "{key}" not found in secret {where}')
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cadata=base64.b64decode(data).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError):
        raise CAAppendFailed(f"failed to append CA certs from secret {where}") from None
    return context


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes | None  # None unless asked for


class BackupRestoreClient:
    """Requests to backup-restore servers over one reused aiohttp session (see the module docstring)."""

    def __init__(self, endpoint: Endpoint = service_endpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def url(self, etcd: Etcd, path: str) -> str:
        """``path`` (starting with ``/``) on the Etcd's backup-restore server."""
        return self.endpoint(etcd).rstrip("/") + path

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session, self._loop = aiohttp.ClientSession(), loop
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        tls: ssl.SSLContext | None,
        timeout: float,
        read_body: bool = False,
        json: Any = None,
        server_hostname: str | None = None,
    ) -> Response:
        """One request with a total ``timeout`` (seconds); raises :class:`BackupRestoreError` without an answer.

        ``json``: a JSON body; ``server_hostname``: the name TLS verifies when the URL's host is an address
        (the etcd JSON gateway of one member, :mod:`druid.etcdgateway`, shares this session)."""
        session = self._open()
        try:
            response = await session.request(
                method,
                url,
                ssl=tls if tls is not None else True,
                timeout=aiohttp.ClientTimeout(total=timeout),
                json=json,
                server_hostname=server_hostname,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            detail = str(e) or type(e).__name__
            raise BackupRestoreError(0, type(e).__name__, f'{method.capitalize()} "{url}": {detail}') from e
        async with response:
            try:
                body = await response.read() if read_body else None
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                raise BackupRestoreError(response.status, "ReadBody", str(e) or type(e).__name__) from e
            return Response(response.status, body)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    async def hold_open(self) -> None:
        """Wait until cancelled, then close the session (a manager leader task: ``add_leader_task(hold_open)``)."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()
