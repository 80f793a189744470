"""druid's servers (metrics, probes, the HTTPS webhook) close connections whose request does not arrive in
time (issue 13, finding 9): a client sending half a request line cannot hold a connection open."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

from kubernetes_asyncio import client

from druid.runtime.client import Kube
from druid.runtime.health import Checks, bound_port, probe_app, serve
from druid.runtime.manager import Manager, ManagerOptions
from druid.testing.wait import eventually
from druid.webhook.protection import Policy
from druid.webhook.server import server_ssl_context, webhook_app

TIMEOUT = 1.0


async def closed_after(port: int, context: ssl.SSLContext | None = None, data: bytes = b"GET /heal") -> float:
    """Seconds until the server closes a connection that sent ``data`` and then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    try:
        rest = await asyncio.wait_for(reader.read(), timeout=TIMEOUT + 5)
    finally:
        writer.close()
    assert rest == b"", rest  # closed without an answer
    return time.monotonic() - started


async def test_half_a_request_line_is_cut_off() -> None:
    runner = await serve(probe_app(Checks(), Checks()), "127.0.0.1", 0, header_timeout=TIMEOUT)
    try:
        took = await closed_after(bound_port(runner))
        assert TIMEOUT * 0.5 <= took < TIMEOUT + 3, took
        took = await closed_after(bound_port(runner), data=b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # half the headers
        assert took < TIMEOUT + 3, took
    finally:
        await runner.cleanup()


async def test_every_manager_server_times_slow_clients_out(pki: tuple[Path, Path]) -> None:
    kube = Kube(client.ApiClient(configuration=client.Configuration(host="https://127.0.0.1:1")))  # never called
    options = ManagerOptions(metrics_address="127.0.0.1", metrics_port=0, probe_address="127.0.0.1", probe_port=0)
    options.read_header_timeout = TIMEOUT
    manager = Manager(kube, options)

    class NoLookups:
        def synced(self) -> bool:
            return False

        def etcd(self, namespace: str, name: str) -> None:
            return None

        def statefulset(self, namespace: str, name: str) -> None:
            return None

    manager.add_server(webhook_app(Policy("druid"), NoLookups()), "127.0.0.1", 0, server_ssl_context(pki[0]))
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    try:

        async def serving() -> bool:
            return bool(manager.server_ports)

        await eventually(serving, timeout=10, what="the manager's servers")
        assert manager.metrics_port is not None and manager.probe_port is not None
        context = ssl.create_default_context(cafile=str(pki[1]))
        took = await asyncio.gather(
            closed_after(manager.metrics_port),
            closed_after(manager.probe_port),
            closed_after(manager.server_ports[0], context, b"POST /webhooks/etcdcomponents HT"),
        )
        assert all(t < TIMEOUT + 3 for t in took), took
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
