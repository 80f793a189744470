"""Asking backup-restore for a full snapshot over its HTTP API (upstream ``compaction/snapshot.go``).

``GET <endpoint>/snapshot/full`` through the shared :class:`~druid.backuprestore.BackupRestoreClient`; only
200 counts as success. The endpoint defaults to the client Service,
``<scheme>://<etcd>-client.<ns>.svc.cluster.local:<backup port>`` (https when ``spec.backup.tls`` is set), and
can be replaced (tests point it at a fake on 127.0.0.1). With ``spec.backup.tls`` the server is verified
against the CA bundle in ``tlsCASecretRef`` (key ``dataKey``, default ``bundle.crt``), TLS ≥ 1.2. The request
times out after ``spec.backup.etcdSnapshotTimeout`` (default 900 s).

Error texts follow upstream's wrapping, e.g. ``error while triggering full snapshot: failed to take full
snapshot, received status code: 500``.
"""

from __future__ import annotations

import ssl

from druid.api import defaults
from druid.api.etcd import Etcd
from druid.backuprestore import (
    BackupRestoreClient,
    BackupRestoreError,
    Endpoint,
    ca_context,
    ca_data_key,
    service_endpoint,
)
from druid.gocompat.fmt import error_text
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import SECRETS

__all__ = ["BackupRestoreError", "Endpoint", "service_endpoint", "ssl_context", "take_full_snapshot"]

_PREFIX = "error while triggering full snapshot: "


async def ssl_context(kube: Kube, etcd: Etcd) -> ssl.SSLContext | None:
    """Client TLS trusting the CA bundle of ``spec.backup.tls``; None without TLS. Raises ``ValueError``."""
    tls = etcd.spec.backup.tls
    if tls is None:
        return None
    ns, name = etcd.namespace, tls.tls_ca_secret_ref.name or ""
    try:
        secret = await kube.get(SECRETS, name, ns)
    except ApiError as e:
        raise ValueError(f"failed to get etcdbr CA secret {ns}/{name}: {error_text(e)}") from e
    return ca_context(secret, ca_data_key(etcd), f"{ns}/{name}")


async def take_full_snapshot(kube: Kube, etcd: Etcd, client: BackupRestoreClient) -> None:
    """Trigger a full snapshot; raises :class:`BackupRestoreError` (message as upstream's error chain)."""
    try:
        context = await ssl_context(kube, etcd)
    except ValueError as e:
        raise BackupRestoreError(
            0, "ClientSetup", f"{_PREFIX}failed to create http client for full snapshot: {e}"
        ) from e
    url = client.url(etcd, "/snapshot/full")
    timeout = defaults.full_snapshot_request_timeout_seconds(etcd.spec.backup)
    try:
        response = await client.request("GET", url, tls=context, timeout=timeout, read_body=True)
    except BackupRestoreError as e:
        if e.status == 0:
            raise BackupRestoreError(0, e.reason, f"{_PREFIX}failed to trigger full snapshot: {e.message}") from e
        message = f'{_PREFIX}failed to trigger full snapshot: Get "{url}": {e.message}'
        raise BackupRestoreError(0, e.reason, message) from e
    if response.status != 200:
        raise BackupRestoreError(
            response.status,
            "FullSnapshotFailed",
            f"{_PREFIX}failed to take full snapshot, received status code: {response.status}",
        )
