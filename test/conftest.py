"""Shared fixtures: one real local control plane per test session, API clients, throw-away namespaces.

Tiers and markers (applied at collection, so ``-m "not controlplane and not apiserver"`` is the unit tier alone):

- ``test/unit``: in-process only. A unit test that asks for the control plane (directly or through ``kube``,
  ``api``, ``namespace``, ``operator``, ...) or carries a tier marker is a collection error.
- ``test/integration``: a test that uses the session's ``control_plane`` carries ``controlplane``; one that only
  starts its own etcd + kube-apiserver is marked ``apiserver`` in its module; every other integration test
  (it starts real processes of its own: a demo, etcd behind the wrapper, containerd) defaults to ``controlplane``.
- ``test/e2e`` and ``test/node`` (marker ``e2e``): a full control plane plus a real node, so also
  ``controlplane``, and a longer time limit (:data:`E2E_TIMEOUT`) than the suite's default in pyproject.toml.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from druid.runtime.client import Kube
from druid.testing.controlplane import ControlPlane
from druid.testing.crds import install_crds
from druid.testing.kube import make_api_client
from druid.testing.operator import Operator, fast_config
from druid.testing.pki import CertificateAuthority
from druid.testing.wait import eventually

TEST_ROOT = Path(__file__).parent
TIERS = ("controlplane", "apiserver")
E2E_TIMEOUT = 1800
"""Seconds per e2e/node test (setup of the package's real cluster included). Their own waits add up to at most
~20 minutes (e.g. a 480 s wait for Ready plus a 600 s roll-out, after a cluster start of a few minutes); they
usually take up to ~7 minutes."""


def _tier(item: pytest.Item) -> str:
    try:
        return Path(item.path).relative_to(TEST_ROOT).parts[0]
    except ValueError:
        return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        tier = _tier(item)
        marks = {m.name for m in item.iter_markers()}
        uses_plane = "control_plane" in getattr(item, "fixturenames", ())
        if tier == "unit":
            if uses_plane or marks & {*TIERS, "e2e"}:
                misplaced.append(item.nodeid)
            continue
        if "e2e" in marks:
            item.add_marker(pytest.mark.controlplane)
            if "timeout" not in marks:
                item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
        elif uses_plane or not marks & set(TIERS):
            item.add_marker(pytest.mark.controlplane)
    if misplaced:
        raise pytest.UsageError(
            "unit tests must not need a control plane (move them to test/integration): " + ", ".join(misplaced)
        )


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


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a serverCertDir with ``tls.crt``/``tls.key`` for 127.0.0.1, the CA certificate that signed it), no cluster."""
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"))
    pair = ca.issue("webhook", "webhook", ips=("127.0.0.1",), server=True)
    cert_dir = tmp_path_factory.mktemp("certs")
    (cert_dir / "tls.crt").write_bytes(pair.cert.read_bytes())
    (cert_dir / "tls.key").write_bytes(pair.key.read_bytes())
    return cert_dir, ca.pair.cert
