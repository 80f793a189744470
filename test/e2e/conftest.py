"""End-to-end tier: real etcd pods on a real local node, driven by unmodified ``druid run``.

One :class:`RealCluster` per run of this package (control plane, real node, druid with the local image
vector). Each test gets a fresh namespace (its Etcds deleted and their pods gone afterwards, so the next test
has the machine to itself). Skipped, loudly, only where the machine cannot run a node.

Figures (times to Ready, fault-to-status times, memory) are collected with the ``figures`` fixture and printed
at the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import NAMESPACES, PODS
from druid.testing.binaries import Binaries
from druid.testing.node import node_unsupported
from druid.testing.realcluster import RealCluster
from druid.testing.wait import eventually

FIGURES: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("e2e figures (real etcd pods)")
        for key, value in FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def figures() -> dict[str, object]:
    return FIGURES


def _unavailable() -> str | None:
    reason = node_unsupported()
    if reason is not None:
        return reason
    try:
        Binaries.from_env().check(full=True, node=True)
    except FileNotFoundError as e:
        return str(e)
    return None


@pytest.fixture(scope="package")
def real_cluster() -> Iterator[RealCluster]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(f"REAL NODE UNAVAILABLE, end-to-end tier skipped: {reason}")
    cluster = RealCluster().start()
    FIGURES["cluster up (control plane + node + druid), s"] = round(cluster.timings["druid"], 1)
    try:
        yield cluster
    finally:
        cluster.stop()
    assert cluster.host_differences == [], f"the host differs after tear-down: {cluster.host_differences}"


@pytest.fixture(scope="package")
async def rkube(real_cluster: RealCluster) -> AsyncIterator[Kube]:
    async with await Kube.connect(str(real_cluster.kubeconfig), timeout=15) as k:
        yield k


@pytest.fixture
async def ns(rkube: Kube) -> AsyncIterator[str]:
    """A fresh namespace; afterwards its Etcds are deleted and no pod of it runs any more before the namespace
    goes (finished Job pods may stay until the namespace takes them)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    await rkube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    for etcd in (await rkube.list(ETCDS, name))["items"]:
        try:
            await rkube.delete(ETCDS, etcd["metadata"]["name"], name)
        except ApiError:
            pass

    async def nothing_running() -> bool:
        pods = (await rkube.list(PODS, name))["items"]
        return not [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    try:
        await eventually(nothing_running, timeout=120, what=f"running pods in {name} gone", interval=1)
    finally:
        await rkube.delete(NAMESPACES, name)
