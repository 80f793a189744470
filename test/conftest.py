"""Shared fixtures: one real local control plane per test session, API clients, throw-away namespaces."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client

from druid.runtime.client import Kube
from druid.testing.controlplane import ControlPlane
from druid.testing.crds import install_crds
from druid.testing.kube import make_api_client
from druid.testing.operator import Operator, fast_config
from druid.testing.wait import eventually


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1."""
    cp = ControlPlane(mode="full")
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
async def api(control_plane: ControlPlane) -> AsyncIterator[client.ApiClient]:
    api_client = await make_api_client(str(control_plane.kubeconfig))
    async with api_client:
        yield api_client


@pytest.fixture(scope="session")
async def crds(api: client.ApiClient) -> list[str]:
    """druid's CRDs installed (once per session) into the shared control plane."""
    return await install_crds(api)


@pytest.fixture
async def namespace(api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace (with its default ServiceAccount present), deleted after the test."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    async def default_sa() -> bool:
        await core.read_namespaced_service_account("default", name)
        return True

    await eventually(default_sa, timeout=30, what=f"default ServiceAccount in {name}")
    yield name
    await core.delete_namespace(name)


@pytest.fixture(scope="session")
async def kube(control_plane: ControlPlane) -> AsyncIterator[Kube]:
    """druid's own API client against the shared control plane (admin identity)."""
    async with await Kube.connect(str(control_plane.kubeconfig), timeout=10) as k:
        yield k


@pytest.fixture(scope="module")
async def operator(control_plane: ControlPlane, crds: list[str]) -> AsyncIterator[Operator]:
    """druid's Etcd and Secret controllers in-process, one per test module, with short periods
    (``fast_config()``); a module that needs another configuration defines its own ``operator``."""
    op = await Operator.start(control_plane.kubeconfig, fast_config())
    yield op
    await op.stop()
