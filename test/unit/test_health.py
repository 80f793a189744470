"""Health endpoint semantics (controller-runtime healthz), served for real on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from druid.runtime.health import Checks, bound_port, probe_app, serve


@pytest.fixture
async def probes() -> AsyncIterator[tuple[str, Checks, Checks]]:
    live, ready = Checks(), Checks()
    runner = await serve(probe_app(live, ready), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}", live, ready
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_success_is_plain_ok_and_verbose_lists_checks(probes: tuple[str, Checks, Checks]) -> None:
    base, live, _ = probes
    live.add("informers", lambda: None)
    assert await get(f"{base}/healthz") == (200, "ok")
    status, body = await get(f"{base}/healthz?verbose")
    assert status == 200
    assert body.splitlines() == ["[+]ping ok", "[+]informers ok", "healthz check passed"]


async def test_failure_withholds_the_reason(probes: tuple[str, Checks, Checks]) -> None:
    base, _, ready = probes
    synced = {"value": False}
    ready.add("informer-sync", lambda: None if synced["value"] else "etcds not synced")
    status, body = await get(f"{base}/readyz")
    assert status == 500
    assert body.splitlines() == ["[+]ping ok", "[-]informer-sync failed: reason withheld", "readyz check failed"]
    assert "etcds" not in body
    # The single-check endpoint names the error.
    assert await get(f"{base}/readyz/informer-sync") == (500, "internal server error: etcds not synced\n")
    synced["value"] = True
    assert await get(f"{base}/readyz") == (200, "ok")
    assert await get(f"{base}/readyz/informer-sync") == (200, "ok")


async def test_exclude_and_unknown(probes: tuple[str, Checks, Checks]) -> None:
    base, live, _ = probes
    live.add("broken", lambda: "down")
    assert (await get(f"{base}/healthz"))[0] == 500
    status, body = await get(f"{base}/healthz?exclude=broken&verbose")
    assert status == 200 and "[+]broken excluded: ok" in body
    assert (await get(f"{base}/healthz/nope"))[0] == 404


async def test_a_crashing_check_fails(probes: tuple[str, Checks, Checks]) -> None:
    base, live, _ = probes

    def boom() -> str | None:
        raise RuntimeError("x")

    live.add("boom", boom)
    assert (await get(f"{base}/healthz"))[0] == 500
    with pytest.raises(ValueError):
        live.add("boom", boom)
