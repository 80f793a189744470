"""druid.backuprestore: one reused session, per-request timeouts, Go-like errors, TLS from a CA Secret."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from druid.api.etcd import Etcd
from druid.backuprestore import (
    BackupRestoreClient,
    BackupRestoreError,
    CAAppendFailed,
    CAKeyNotFound,
    ca_context,
    service_endpoint,
    short_service_endpoint,
)
from druid.testing.fake_backup_restore import FakeBackupRestore
from druid.testing.pki import CertificateAuthority


class Server:
    """A loopback server that records the client port of every request (one port: one reused connection)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        self.ports.append(request.transport.get_extra_info("peername")[1])
        await asyncio.sleep(self.delay)
        return web.Response(text="null", status=int(request.query.get("status", "200")))


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield srv
    await runner.cleanup()


def etcd(**backup: Any) -> Etcd:
    return Etcd.model_validate(
        {
            "metadata": {"name": "main", "namespace": "ns"},
            "spec": {"replicas": 1, "labels": {}, "etcd": {}, "backup": backup},
        }
    )


def test_endpoints_name_the_client_service() -> None:
    assert service_endpoint(etcd()) == "http://main-client.ns.svc.cluster.local:8080"
    tls = etcd(port=9999, tls={"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "s"}})
    assert short_service_endpoint(tls) == "https://main-client.ns:9999"
    assert BackupRestoreClient(lambda e: "http://x/").url(etcd(), "/snapshot/full") == "http://x/snapshot/full"


async def test_requests_reuse_one_session_and_connection(server: Server) -> None:
    client = BackupRestoreClient()
    try:
        for _ in range(3):
            response = await client.request("POST", f"{server.url}/snapshot/delta", tls=None, timeout=5, read_body=True)
            assert (response.status, response.body) == (200, b"null")
        assert len(server.ports) == 3 and len(set(server.ports)) == 1
        answer = await client.request("GET", f"{server.url}/snapshot/full?status=500", tls=None, timeout=5)
        assert (answer.status, answer.body) == (500, None)  # an answer is returned, whatever its status
    finally:
        await client.close()


async def test_hold_open_closes_the_session_when_cancelled(server: Server) -> None:
    client = BackupRestoreClient()
    holder = asyncio.create_task(client.hold_open())
    await client.request("GET", server.url, tls=None, timeout=5)
    session = client._session
    assert session is not None and not session.closed
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert session.closed
    await client.request("GET", server.url, tls=None, timeout=5)  # used again: a new session
    assert client._session is not session
    await client.close()


async def test_timeout_and_refused_connection_raise_go_like_errors(server: Server) -> None:
    client = BackupRestoreClient()
    server.delay = 2.0
    try:
        with pytest.raises(BackupRestoreError) as err:
            await client.request("POST", f"{server.url}/snapshot/full", tls=None, timeout=0.2)
        assert err.value.status == 0
        assert err.value.message == f'Post "{server.url}/snapshot/full": TimeoutError'
        with pytest.raises(BackupRestoreError) as err:
            await client.request("GET", "http://127.0.0.1:1/snapshot/full", tls=None, timeout=5)
        assert err.value.status == 0 and err.value.message.startswith('Get "http://127.0.0.1:1/snapshot/full": ')
    finally:
        await client.close()


async def test_tls_verifies_the_server_against_the_secret_bundle(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    bundle = base64.b64encode(ca.pair.cert.read_bytes()).decode()
    context = ca_context({"data": {"bundle.crt": bundle}}, "bundle.crt", "ns/ca")
    async with FakeBackupRestore.https(ca) as fake:
        client = BackupRestoreClient()
        try:
            response = await client.request("GET", f"{fake.url}/snapshot/full", tls=context, timeout=5)
            assert response.status == 200
            with pytest.raises(BackupRestoreError):  # the system trust store does not know the CA
                await client.request("GET", f"{fake.url}/snapshot/full", tls=None, timeout=5)
        finally:
            await client.close()


def test_ca_context_errors_name_the_secret() -> None:
    with pytest.raises(CAKeyNotFound, match=re.escape('CA cert data key "ca.crt" not found in secret ns/ca')):
        ca_context({"data": {"bundle.crt": ""}}, "ca.crt", "ns/ca")
    with pytest.raises(CAAppendFailed, match="failed to append CA certs from secret ns/ca"):
        ca_context({"data": {"bundle.crt": base64.b64encode(b"not a pem").decode()}}, "bundle.crt", "ns/ca")
