"""SharedInformer / Reflector against a real kube-apiserver: no lost updates across broken watches,
the 410 relist path with tombstones, a 30 s outage without spinning, liveness, and the factory.

Tests that kill the API server start their own ``ControlPlane(mode="apiserver")``. A small TCP proxy
in front of the API server lets a test cut or refuse the informer's connections while the test's own
writer keeps talking to the API server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s

from druid.runtime.client import ApiError, Kube
from druid.runtime.informer import FuncHandler, InformerFactory, SharedInformer
from druid.runtime.objects import CONFIGMAPS, NAMESPACES, SECRETS, Obj, ObjectKey, Tombstone
from druid.runtime.reflector import ReflectorConfig
from druid.testing.controlplane import ControlPlane
from druid.testing.wait import eventually

pytestmark = pytest.mark.apiserver

NS = "informer-test"
FAST = ReflectorConfig(backoff_max=2.0)


# ---------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def apiserver(*extra_args: str) -> AsyncIterator[ControlPlane]:
    """A private etcd + kube-apiserver (about 3 s to start), always stopped afterwards."""
    cp = ControlPlane(mode="apiserver", extra_args={"kube-apiserver": list(extra_args)})
    await asyncio.to_thread(cp.start)
    try:
        yield cp
    finally:
        await asyncio.to_thread(cp.stop)


async def restart_apiserver(cp: ControlPlane) -> None:
    """SIGKILL and start again: every watch breaks at once. (A graceful stop with open watches takes
    ControlPlane.stop_component its full 10 s before it kills anyway.)"""
    await asyncio.to_thread(cp.processes["kube-apiserver"].kill)
    await asyncio.to_thread(cp.start_component, "kube-apiserver")


class Proxy:
    """A TCP forwarder on 127.0.0.1 (TLS passes through untouched) whose connections can be cut
    (reset) and refused, to break an informer's watch without touching the API server."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 443
        self.blocked = False
        self.url = ""
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Reset every open connection (both sides)."""
        for down, up in list(self._pairs):
            down.transport.abort()
            up.transport.abort()
        self._pairs.clear()

    def block(self) -> None:
        """Cut, and reset new connections until :meth:`unblock`."""
        self.blocked = True
        self.cut()

    def unblock(self) -> None:
        self.blocked = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        pumps = [asyncio.create_task(_pump(reader, up_writer)), asyncio.create_task(_pump(up_reader, writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in pumps:
                t.cancel()
                self._tasks.discard(t)
            self._pairs.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()


async def connect(cp: ControlPlane, via: Proxy | None = None) -> Kube:
    kube = await Kube.connect(str(cp.kubeconfig), timeout=5)
    if via is not None:
        kube.api.configuration.host = via.url
    return kube


class Recorder:
    """Remembers the last state each handler call reported, and every delete."""

    def __init__(self) -> None:
        self.last: dict[ObjectKey, Obj] = {}
        self.deleted: list[ObjectKey] = []
        self.tombstones: list[ObjectKey] = []
        self.calls: Counter[str] = Counter()

    def on_add(self, obj: Obj) -> None:
        self.calls["add"] += 1
        self.last[ObjectKey.of(obj)] = obj

    def on_update(self, old: Obj, new: Obj) -> None:
        self.calls["update"] += 1
        assert ObjectKey.of(old) == ObjectKey.of(new)
        self.last[ObjectKey.of(new)] = new

    def on_delete(self, obj: Obj | Tombstone) -> None:
        self.calls["delete"] += 1
        key = obj.key if isinstance(obj, Tombstone) else ObjectKey.of(obj)
        if isinstance(obj, Tombstone):
            self.tombstones.append(key)
        self.deleted.append(key)
        self.last.pop(key, None)


def state(objs: Any) -> dict[ObjectKey, tuple[str, Any]]:
    return {ObjectKey.of(o): (o["metadata"]["resourceVersion"], o.get("data")) for o in objs}


async def server_state(kube: Kube, namespace: str) -> dict[ObjectKey, tuple[str, Any]]:
    listed = await kube.list(CONFIGMAPS, namespace)
    return state(o for o in listed["items"] if o["metadata"]["name"] != "kube-root-ca.crt")


async def matches_server(kube: Kube, recorder: Recorder, informer: SharedInformer) -> bool:
    """The handler's view and the informer's cache both equal the server (every resourceVersion and data)."""
    want = await server_state(kube, NS)
    return state(recorder.last.values()) == want and state(informer.store.list(NS)) == want


async def retrying(call: Callable[[], Awaitable[Any]]) -> Any:
    """Retry transport errors and 5xx/429 (the API server may be restarting); 409 on create means done."""
    while True:
        try:
            return await call()
        except ApiError as e:
            if e.conflict:
                return None
            if not e.retryable:
                raise
            await asyncio.sleep(0.1)  # writer's retry pause, not a wait for a condition


def configmap(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}


async def create_namespace(kube: Kube) -> None:
    await retrying(lambda: kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))


async def for_all(names: list[str], op: Callable[[str], Awaitable[Any]], progress: list[int], limit: int = 24) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(name: str) -> None:
        async with sem:
            await retrying(lambda: op(name))
            progress[0] += 1

    await asyncio.gather(*(one(n) for n in names))


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    async def probe() -> bool:
        return predicate()

    await eventually(probe, timeout=timeout, what=what)


def etcd_revision(cp: ControlPlane) -> int:
    return int(_etcd(cp, "/v3/kv/range", {"key": "AA=="})["header"]["revision"])


def compact_etcd(cp: ControlPlane, revision: int) -> None:
    _etcd(cp, "/v3/kv/compaction", {"revision": str(revision), "physical": True})


def _etcd(cp: ControlPlane, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(cp.etcd_url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# ---------------------------------------------------------------------------- tests


async def test_no_lost_updates_across_broken_watches_and_deletes_while_disconnected() -> None:
    """1000 ConfigMaps created then updated while the informer's watch is broken 4 times (two API
    server kills, two connection resets): the handler ends with the final resourceVersion and data of
    every object. Then 100 deletes while the informer is cut off arrive as exactly 100 deletes."""
    async with apiserver() as cp, Proxy(cp.server) as proxy:
        writer, kube = await connect(cp), await connect(cp, via=proxy)
        informer = SharedInformer(kube, CONFIGMAPS, NS, config=FAST)
        recorder = Recorder()
        try:
            await create_namespace(writer)
            informer.add_handler(recorder)
            informer.start()
            assert await informer.wait_for_sync(30)

            names = [f"cm-{i:04d}" for i in range(1000)]
            halves = [names[:500], names[500:]]
            segments: list[tuple[list[str], Callable[[str], Awaitable[Any]], str]] = [
                *((h, lambda n: writer.create(CONFIGMAPS, configmap(n, v="1")), "kill") for h in halves),
                *((h, lambda n: writer.merge_patch(CONFIGMAPS, n, {"data": {"v": "2"}}, NS), "cut") for h in halves),
            ]
            for batch, op, breaker in segments:
                # Break a live watch a little way into each batch of 500 writes; the rest of the batch
                # lands while the informer is disconnected, backing off, relisting or resuming.
                await until(lambda: informer.reflector.watching, 30, "the informer watching")
                progress = [0]
                writes = asyncio.create_task(for_all(batch, op, progress))

                def underway(p: list[int] = progress, w: asyncio.Task[None] = writes) -> bool:
                    return p[0] >= 100 or w.done()

                await until(underway, 60, "100 writes")
                assert not writes.done()
                if breaker == "kill":
                    await restart_apiserver(cp)
                else:
                    proxy.cut()
                await writes

            await eventually(
                lambda: matches_server(writer, recorder, informer), timeout=60, what="informer = server state"
            )
            stats = informer.reflector.stats
            assert stats.watch_ends["broken"] + stats.watch_ends["closed"] >= 4, stats
            # At least some breaks were healed by resuming the watch from the last resourceVersion, with
            # no relist. (After a kill the new API server sometimes answers the resumed watch with 410,
            # as its fresh watch cache starts at the current revision, and sometimes serves it from etcd
            # while the cache initialises; the 410 path is pinned down by the compaction test below.)
            assert stats.watches > sum(stats.lists.values()), stats
            assert all(o["data"] == {"v": "2"} for o in recorder.last.values())
            assert recorder.calls["delete"] == 0

            # 100 deletes while the informer is disconnected (its reconnects are refused).
            proxy.block()
            await until(lambda: informer.reflector.failing_since is not None, 30, "informer disconnected")
            doomed = names[::10]
            await for_all(doomed, lambda n: writer.delete(CONFIGMAPS, n, NS), [0])
            proxy.unblock()
            await retrying(lambda: writer.create(CONFIGMAPS, configmap("sentinel")))
            # Events arrive in order, so once the sentinel is seen every delete before it has been too.
            await until(lambda: ObjectKey(NS, "sentinel") in recorder.last, 60, "the sentinel after reconnect")
            assert sorted(recorder.deleted) == sorted(ObjectKey(NS, n) for n in doomed)
            assert recorder.calls["delete"] == 100
            assert await matches_server(writer, recorder, informer)
        finally:
            await informer.stop()
            await kube.close()
            await writer.close()


async def test_watch_from_compacted_revision_relists_and_reports_deletes_as_tombstones() -> None:
    """A watch resuming from a resourceVersion etcd has compacted gets 410 Gone; the informer relists,
    deletes during the gap come out as tombstones, updates and adds as such, and nothing is lost.

    The API server's watch cache would hide this: it serves watches from its own in-memory history,
    which etcd compaction does not touch, and it only answers 410 when the resourceVersion is older than
    that history (after an API server restart, or once more than its capacity / ~75 s of events went
    by). With ``--watch-cache=false`` each watch goes to etcd, whose ``ErrCompacted`` the API server
    turns into an ERROR event with code 410 ("The resourceVersion for the provided watch is too old").
    """
    async with apiserver("--watch-cache=false") as cp, Proxy(cp.server) as proxy:
        writer, kube = await connect(cp), await connect(cp, via=proxy)
        informer = SharedInformer(kube, CONFIGMAPS, NS, config=FAST)
        recorder = Recorder()
        try:
            await create_namespace(writer)
            for i in range(30):
                await writer.create(CONFIGMAPS, configmap(f"cm-{i:02d}", v="1"))
            informer.add_handler(recorder)
            informer.start()
            assert await informer.wait_for_sync(30)
            await eventually(lambda: matches_server(writer, recorder, informer), timeout=30, what="initial state")
            watched_from = int(informer.reflector.resource_version or 0)

            proxy.block()
            await until(lambda: informer.reflector.failing_since is not None, 30, "informer disconnected")
            for i in range(10):
                await writer.delete(CONFIGMAPS, f"cm-{i:02d}", NS)
                await writer.merge_patch(CONFIGMAPS, f"cm-{i + 10:02d}", {"data": {"v": "2"}}, NS)
                await writer.create(CONFIGMAPS, configmap(f"new-{i:02d}", v="1"))
            revision = await asyncio.to_thread(etcd_revision, cp)
            assert revision > watched_from
            await asyncio.to_thread(compact_etcd, cp, revision)
            proxy.unblock()

            await eventually(lambda: matches_server(writer, recorder, informer), timeout=60, what="relisted state")
            stats = informer.reflector.stats
            assert stats.lists == Counter({"initial": 1, "expired": 1}), stats
            assert stats.watch_ends["expired"] == 1, stats
            gone = sorted(ObjectKey(NS, f"cm-{i:02d}") for i in range(10))
            assert sorted(recorder.tombstones) == gone and sorted(recorder.deleted) == gone
            assert recorder.calls == Counter({"add": 40, "update": 10, "delete": 10}), recorder.calls
        finally:
            await informer.stop()
            await kube.close()
            await writer.close()


async def test_30s_apiserver_outage_no_spin_then_resumes() -> None:
    """The API server is down for 30 s: the informer task stays alive, retries with backoff instead of
    spinning (under 1 s of process CPU over the 30 s), and delivers new events once it is back."""
    async with apiserver() as cp:
        writer, kube = await connect(cp), await connect(cp)
        # Default timings except the backoff cap, so the reconnect after the outage is quick.
        informer = SharedInformer(kube, CONFIGMAPS, NS, config=ReflectorConfig(backoff_max=5.0))
        recorder = Recorder()
        try:
            await create_namespace(writer)
            informer.add_handler(recorder)
            informer.start()
            assert await informer.wait_for_sync(30)

            await asyncio.to_thread(cp.processes["kube-apiserver"].kill)
            failures_before = informer.reflector.stats.failures
            cpu0, t0 = time.process_time(), time.monotonic()
            while time.monotonic() - t0 < 30:  # watch the informer through the whole outage
                assert informer.running and informer.healthy(), informer.status()
                await asyncio.sleep(0.5)
            cpu = time.process_time() - cpu0
            failures = informer.reflector.stats.failures - failures_before
            assert not informer.healthy(max_down_seconds=20), informer.status()
            assert cpu < 1.0, f"{cpu:.2f}s CPU during a 30 s outage"
            # 0.8 s doubling to the 5 s cap (with jitter): roughly 8 attempts in 30 s; a spin makes thousands.
            assert 3 <= failures <= 25, informer.status()

            await asyncio.to_thread(cp.start_component, "kube-apiserver")
            await retrying(lambda: writer.create(CONFIGMAPS, configmap("after-outage")))
            await until(lambda: ObjectKey(NS, "after-outage") in recorder.last, 30, "an event after the outage")
            assert informer.healthy(max_down_seconds=1), informer.status()
        finally:
            await informer.stop()
            await kube.close()
            await writer.close()


@pytest.fixture(scope="module")
async def shared_apiserver() -> AsyncIterator[ControlPlane]:
    """One private API server for the tests below, which only cut their own connections."""
    async with apiserver() as cp:
        kube = await connect(cp)
        try:
            await create_namespace(kube)
        finally:
            await kube.close()
        yield cp


async def test_healthy_turns_false_when_failing_beyond_threshold_or_crashed_or_dead(
    shared_apiserver: ControlPlane,
) -> None:
    cp = shared_apiserver

    def fragile(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("poisoned object")
        return obj

    async with Proxy(cp.server) as proxy:
        writer, kube = await connect(cp), await connect(cp, via=proxy)
        informer = SharedInformer(
            kube, SECRETS, NS, transform=fragile, config=ReflectorConfig(backoff_initial=0.1, backoff_max=0.5)
        )
        try:
            assert not informer.healthy()  # not started yet
            informer.start()
            assert await informer.wait_for_sync(30)
            assert informer.healthy(max_down_seconds=1)

            # Unreachable: healthy with a generous threshold, unhealthy once failing for longer than 1 s.
            proxy.block()
            await until(lambda: not informer.healthy(max_down_seconds=1), 15, "unhealthy after 1 s of failures")
            assert informer.healthy(max_down_seconds=60) and informer.running
            assert informer.status()["last_error"]
            proxy.unblock()
            await until(lambda: informer.healthy(max_down_seconds=1), 15, "healthy again after reconnect")

            # A bug (here: a transform that raises) crashes the loop; it is restarted again and again
            # (each time with a fresh list) and reported unhealthy until the cause goes away.
            await writer.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "poison"}}, NS)
            await until(lambda: informer.crashes >= 3, 15, "repeated crashes and restarts")
            await until(lambda: not informer.healthy(max_down_seconds=1), 15, "unhealthy while crash-looping")
            assert informer.running
            await writer.delete(SECRETS, "poison", NS)
            await until(lambda: informer.healthy(max_down_seconds=1), 15, "healthy after the poison is gone")
            assert informer.store.get(ObjectKey(NS, "poison")) is None
        finally:
            await informer.stop()
            assert not informer.healthy(max_down_seconds=1e9)
            await kube.close()

        # A dead task is unhealthy whatever the threshold.
        other = SharedInformer(writer, SECRETS, NS)
        task = asyncio.create_task(other.run())
        assert await other.wait_for_sync(30) and other.healthy()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not other.healthy(max_down_seconds=1e9)
        await writer.close()


async def test_factory_shares_informers_and_replays_the_cache_to_late_handlers(
    shared_apiserver: ControlPlane,
) -> None:
    kube = await connect(shared_apiserver)
    factory = InformerFactory(kube)
    try:
        labelled_cm = configmap("labelled")
        labelled_cm["metadata"]["labels"] = {"a": "b"}
        await kube.create(CONFIGMAPS, labelled_cm)
        cms = factory.get(CONFIGMAPS, NS)
        assert factory.get(CONFIGMAPS, NS) is cms
        labelled = factory.get(CONFIGMAPS, NS, label_selector="a=b")
        assert labelled is not cms and len(factory) == 2
        with pytest.raises(ValueError):
            factory.get(CONFIGMAPS, NS, transform=lambda o: o)
        early: list[str] = []
        cms.add_handler(FuncHandler(add=lambda o: early.append(o["metadata"]["name"])))

        factory.start_all()
        assert await factory.wait_for_cache_sync(30) and factory.all_synced()
        assert "labelled" in early
        assert [o["metadata"]["name"] for o in labelled.store.list()] == ["labelled"]

        late: list[str] = []
        cms.add_handler(FuncHandler(add=lambda o: late.append(o["metadata"]["name"])))
        assert sorted(late) == sorted(o["metadata"]["name"] for o in cms.store.list())  # replayed at once

        # An informer created after start_all is started by the factory.
        secrets = factory.get(SECRETS, NS)
        assert not factory.all_synced() or secrets.has_synced()
        assert await factory.wait_for_cache_sync(30) and secrets.has_synced()
        assert {i.name for i in factory} == {cms.name, labelled.name, secrets.name}
        assert all(i.healthy() for i in factory)
    finally:
        await factory.stop_all()
        assert not any(i.running for i in factory)
        await kube.close()


# ---------------------------------------------------------------------------- scripted fake API server
# Bookmarks, Retry-After and idle connections are hard to provoke on a real API server on demand
# (bookmarks come once a minute), so these paths run against a small aiohttp server that answers
# LIST pages and plays one script entry per WATCH request.

Script = list[tuple[str, Any]]  # ("event", {...}) | ("status", (code, retry_after)) | ("hang", None)


class FakeApiServer:
    def __init__(self, pages: list[list[Obj]], watches: list[Script]) -> None:
        self.pages, self.watches = pages, watches
        self.lists: list[dict[str, str]] = []
        self.watch_requests: list[tuple[float, dict[str, str]]] = []
        self.expire_next_continue = False
        self.list_rv = "10"
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Kube:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/fake/configmaps", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.kube = Kube(k8s.ApiClient(configuration=k8s.Configuration(host=f"http://127.0.0.1:{port}")), timeout=5)
        return self.kube

    async def __aexit__(self, *exc: object) -> None:
        await self.kube.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        if query.get("watch") != "true":
            return self._list(query)
        self.watch_requests.append((time.monotonic(), query))
        script: Script = self.watches.pop(0) if self.watches else [("hang", None)]
        if script and script[0][0] == "status":
            code, retry_after = script[0][1]
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.json_response({"kind": "Status", "code": code, "reason": "x"}, status=code, headers=headers)
        resp = web.StreamResponse()
        await resp.prepare(request)
        for step, arg in script:
            if step == "event":
                await resp.write(json.dumps(arg).encode() + b"\n")
            elif step == "hang":
                await asyncio.Event().wait()  # cancelled when the client goes away
        return resp

    def _list(self, query: dict[str, str]) -> web.Response:
        self.lists.append(query)
        index = int(query.get("continue") or 0)
        if index and self.expire_next_continue:
            self.expire_next_continue = False
            return web.json_response({"kind": "Status", "code": 410, "reason": "Expired"}, status=410)
        limit = int(query["limit"])
        items = [o for page in self.pages for o in page]
        more = index + limit < len(items)
        meta = {"resourceVersion": self.list_rv, **({"continue": str(index + limit)} if more else {})}
        return web.json_response({"kind": "ConfigMapList", "metadata": meta, "items": items[index : index + limit]})


def fake_cm(name: str, rv: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "fake", "resourceVersion": rv}}


def event(kind: str, obj: Obj) -> tuple[str, Obj]:
    return ("event", {"type": kind, "object": obj})


async def test_reflector_bookmarks_retry_after_idle_timeout_and_410_against_scripted_server() -> None:
    bookmark = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "50"}}
    fake = FakeApiServer(
        pages=[[fake_cm("a", "1"), fake_cm("b", "2"), fake_cm("c", "3")]],
        watches=[
            [event("BOOKMARK", bookmark)],  # then the server closes the stream: re-watch from 50
            [("status", (429, 1))],  # throttled: wait at least the Retry-After second
            [event("ADDED", fake_cm("d", "51")), ("hang", None)],  # then silence: the idle timeout fires
            [event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})],
        ],
    )
    fake.expire_next_continue = True  # the first list's continue token expires: list again from scratch
    config = ReflectorConfig(page_size=2, idle_timeout=0.5, backoff_initial=0.01, backoff_max=0.05, short_watch=0)
    async with fake as kube:
        informer = SharedInformer(kube, CONFIGMAPS, "fake", config=config)
        recorder = Recorder()
        informer.add_handler(recorder)
        informer.start()
        try:
            assert await informer.wait_for_sync(10)
            assert [q.get("continue") for q in fake.lists] == [None, "2", None, "2"]
            assert all(q["limit"] == "2" and "resourceVersion" not in q for q in fake.lists)
            assert sorted(k.name for k in recorder.last) == ["a", "b", "c"]

            fake.pages = [[fake_cm("a", "1"), fake_cm("c", "33"), fake_cm("d", "51")]]  # b vanished, c changed
            fake.list_rv = "60"
            await until(lambda: len(fake.watch_requests) >= 5, 15, "five watch requests")
            rvs = [q["resourceVersion"] for _, q in fake.watch_requests]
            assert rvs == ["10", "50", "50", "51", "60"]  # list RV, bookmark, (429 retry), event, relist RV
            times = [t for t, _ in fake.watch_requests]
            assert times[2] - times[1] >= 1.0  # Retry-After honoured over the tiny backoff
            assert times[3] - times[2] >= 0.5  # the hung stream was given up after the idle timeout
            for _, q in fake.watch_requests:
                assert q["allowWatchBookmarks"] == "true" and 300 <= int(q["timeoutSeconds"]) < 600
            stats = informer.reflector.stats
            assert stats.watch_ends == Counter({"closed": 1, "error": 1, "idle": 1, "expired": 1}), stats
            assert stats.lists == Counter({"initial": 1, "expired": 1})
            assert recorder.tombstones == [ObjectKey("fake", "b")]  # bookmarks never reach handlers
            assert recorder.calls == Counter({"add": 4, "update": 1, "delete": 1}), recorder.calls
            cached = informer.store.get(ObjectKey("fake", "d"))
            assert cached is not None and cached["metadata"]["resourceVersion"] == "51"
            assert (cached["apiVersion"], cached["kind"]) == ("v1", "ConfigMap")  # filled in for list items
        finally:
            await informer.stop()
