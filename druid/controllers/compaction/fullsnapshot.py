"""Asking backup-restore for a full snapshot over its HTTP API (upstream ``compaction/snapshot.go``).

``GET <endpoint>/snapshot/full``; only 200 counts as success. The endpoint defaults to the client Service,
``<scheme>://<etcd>-client.<ns>.svc.cluster.local:<backup port>`` (https when ``spec.backup.tls`` is set), and
can be replaced (tests point it at a fake on 127.0.0.1). With ``spec.backup.tls`` the server is verified
against the CA bundle in ``tlsCASecretRef`` (key ``dataKey``, default ``bundle.crt``), TLS ≥ 1.2. The request
times out after ``spec.backup.etcdSnapshotTimeout`` (default 900 s).

Error texts follow upstream's wrapping, e.g. ``error while triggering full snapshot: failed to take full
snapshot, received status code: 500``.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from collections.abc import Callable

import aiohttp

from druid.api import defaults, names
from druid.api.etcd import Etcd
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import SECRETS

Endpoint = Callable[[Etcd], str]
"""Base URL (``scheme://host:port``, no path) of an Etcd's backup-restore server."""


class BackupRestoreError(Exception):
    """A failed call to backup-restore's HTTP API: a non-200 answer, or ``status`` 0 when it could not be made."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


def service_endpoint(etcd: Etcd) -> str:
    """The in-cluster URL of backup-restore behind the client Service (upstream's only choice)."""
    backup = etcd.spec.backup
    scheme = "https" if backup.tls is not None else "http"
    host = f"{names.client_service_name(etcd.name)}.{etcd.namespace}.svc.cluster.local"
    return f"{scheme}://{host}:{defaults.backup_port(backup)}"


async def ssl_context(kube: Kube, etcd: Etcd) -> ssl.SSLContext | None:
    """Client TLS trusting the CA bundle of ``spec.backup.tls``; None without TLS. Raises ``ValueError``."""
    tls = etcd.spec.backup.tls
    if tls is None:
        return None
    ns, name = etcd.namespace, tls.tls_ca_secret_ref.name or ""
    key = defaults.ca_data_key(tls, defaults.DEFAULT_CA_BUNDLE_DATA_KEY)
    try:
        secret = await kube.get(SECRETS, name, ns)
    except ApiError as e:
        raise ValueError(f"failed to get etcdbr CA secret {ns}/{name}: {e}") from e
    data = (secret.get("data") or {}).get(key)
    if data is None:
        raise ValueError(f'CA cert data key "{key}" not found in secret {ns}/{name}')
    try:
        context = ssl.create_default_context(cadata=base64.b64decode(data).decode("ascii"))
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError):
        raise ValueError(f"failed to append CA certs from secret {ns}/{name}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def take_full_snapshot(kube: Kube, etcd: Etcd, endpoint: Endpoint = service_endpoint) -> None:
    """Trigger a full snapshot; raises :class:`BackupRestoreError` (message as upstream's error chain)."""
    prefix = "error while triggering full snapshot: "
    try:
        context = await ssl_context(kube, etcd)
    except ValueError as e:
        raise BackupRestoreError(
            0, "ClientSetup", f"{prefix}failed to create http client for full snapshot: {e}"
        ) from e
    url = endpoint(etcd).rstrip("/") + "/snapshot/full"
    timeout = aiohttp.ClientTimeout(total=defaults.full_snapshot_request_timeout_seconds(etcd.spec.backup))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, ssl=context or True) as resp:
            status = resp.status
            await resp.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        detail = str(e) or type(e).__name__
        message = f'{prefix}failed to trigger full snapshot: Get "{url}": {detail}'
        raise BackupRestoreError(0, type(e).__name__, message) from e
    if status != 200:
        raise BackupRestoreError(
            status, "FullSnapshotFailed", f"{prefix}failed to take full snapshot, received status code: {status}"
        )
