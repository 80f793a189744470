"""TEMPORARY (not committed): b13 with other Etcds reconciled by the same cluster-wide operator."""
import uuid

import pytest
from test_etcd_auto_reconcile import operator  # noqa: F401
from test_etcd_auto_reconcile import test_b13_auto_reconcile_applies_changes_and_resyncs as b13

from druid.controllers.etcd.operation import ETCDS
from druid.runtime.objects import NAMESPACES
from druid.testing.etcds import etcd_manifest


@pytest.fixture(scope="module")
async def others(kube, crds):
    ns = f"o-{uuid.uuid4().hex[:6]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(6):
        await kube.create(ETCDS, etcd_manifest(f"o{i}", ns))
    yield
    await kube.delete(NAMESPACES, ns)


@pytest.mark.parametrize("i", range(8))
async def test_repro(i, others, operator, kube, namespace):  # noqa: F811
    await b13(operator, kube, namespace)
