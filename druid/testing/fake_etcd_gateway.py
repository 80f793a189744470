"""Fake etcd members' JSON gateways on loopback addresses, for tests of druid's maintenance calls.

:class:`FakeEtcdMembers` serves one aiohttp app per member on ``127.0.0.<n>:<port>`` (one port for all, as
every member has the same client port), with a shared leader:

- ``POST /v3/maintenance/status``: the member's ID (``header.member_id``), the leader, ``dbSize`` and
  ``dbSizeInUse`` (decimal strings, as the gateway encodes uint64/int64);
- ``POST /v3/maintenance/defragment``: the member's ``dbSize`` shrinks to what is in use; the next
  :attr:`fail_defrag` calls answer 500 instead;
- ``POST /v3/maintenance/transfer-leadership``: only on the leader; the target becomes the leader.

Every maintenance call is logged in :attr:`calls` as ``(call, member ID, leader ID at that moment)``.
Use as ``async with FakeEtcdMembers(n) as members``; :attr:`ips` and :attr:`port` are what pods should show.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeEtcdMembers:
    count: int = 3
    size: int = 40 * MB
    in_use: int = 4 * MB
    ids: tuple[int, ...] = ()
    leader: int = 0
    sizes: dict[int, list[int]] = field(default_factory=dict)  # member ID → [dbSize, dbSizeInUse]
    calls: list[tuple[str, int, int]] = field(default_factory=list)
    fail_defrag: int = 0
    port: int = 0
    _runners: list[web.AppRunner] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ids = self.ids or tuple(101 * (i + 1) for i in range(self.count))
        self.leader = self.leader or self.ids[0]
        self.sizes = self.sizes or {i: [self.size, self.in_use] for i in self.ids}

    @property
    def ips(self) -> list[str]:
        return [f"127.0.0.{11 + i}" for i in range(self.count)]

    async def __aenter__(self) -> FakeEtcdMembers:
        self.port = self.port or _free_port()
        for ip, member_id in zip(self.ips, self.ids, strict=True):
            runner = web.AppRunner(self._app(member_id))
            await runner.setup()
            await web.TCPSite(runner, ip, self.port).start()
            self._runners.append(runner)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def _app(self, member_id: int) -> web.Application:
        async def status(_: web.Request) -> web.Response:
            size, used = self.sizes[member_id]
            body = {"header": {"member_id": str(member_id)}, "leader": str(self.leader), "dbSize": str(size)}
            return web.json_response({**body, "dbSizeInUse": str(used)})

        async def defragment(_: web.Request) -> web.Response:
            self.calls.append(("defragment", member_id, self.leader))
            if self.fail_defrag:
                self.fail_defrag -= 1
                return web.json_response({"error": "boom"}, status=500)
            self.sizes[member_id][0] = self.sizes[member_id][1]
            return web.json_response({"header": {}})

        async def transfer(request: web.Request) -> web.Response:
            target = int((await request.json())["targetID"])
            self.calls.append(("transfer", member_id, self.leader))
            if member_id != self.leader:
                return web.json_response({"error": "etcdserver: not leader"}, status=500)
            self.leader = target
            return web.json_response({"header": {}})

        app = web.Application()
        app.router.add_post("/v3/maintenance/status", status)
        app.router.add_post("/v3/maintenance/defragment", defragment)
        app.router.add_post("/v3/maintenance/transfer-leadership", transfer)
        return app
