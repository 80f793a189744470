"""Spec auto-reconcile (checklist B13; also C18 with disableEtcdServiceAccountAutomount)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import CONFIGMAPS, SERVICEACCOUNTS, SERVICES
from druid.testing.controlplane import ControlPlane
from druid.testing.etcds import etcd_manifest, wait_for_operation
from druid.testing.operator import Operator, fast_config
from druid.testing.wait import eventually


@pytest.fixture(scope="module")
async def operator(control_plane: ControlPlane, crds: list[str]) -> AsyncIterator[Operator]:
    config = fast_config(enableEtcdSpecAutoReconcile=True, disableEtcdServiceAccountAutomount=True)
    op = await Operator.start(control_plane.kubeconfig, config)
    yield op
    await op.stop()


@pytest.fixture(scope="module")
async def kube(control_plane: ControlPlane) -> AsyncIterator[Kube]:
    async with await Kube.connect(str(control_plane.kubeconfig), timeout=10) as k:
        yield k


async def test_b13_auto_reconcile_applies_changes_and_resyncs(operator: Operator, kube: Kube, namespace: str) -> None:
    await kube.create(ETCDS, etcd_manifest("b13", namespace))
    await wait_for_operation(kube, namespace, "b13", c.OPERATION_STATE_SUCCEEDED, generation=1)
    sa = await kube.get(SERVICEACCOUNTS, "b13", namespace)
    assert sa["automountServiceAccountToken"] is False  # C18 with disableEtcdServiceAccountAutomount
    await kube.merge_patch(ETCDS, "b13", {"spec": {"etcd": {"quota": "1Gi"}}}, namespace)
    await wait_for_operation(kube, namespace, "b13", c.OPERATION_STATE_SUCCEEDED, generation=2)
    config_map = await kube.get(CONFIGMAPS, "b13-config", namespace)
    assert "quota-backend-bytes: 1073741824" in config_map["data"]["etcd.conf.yaml"]
    # Spec sync re-runs on every periodic reconcile: a deleted component comes back without any trigger.
    await kube.delete(SERVICES, "b13-client", namespace)

    async def recreated() -> bool:
        return await kube.get_or_none(SERVICES, "b13-client", namespace) is not None

    await eventually(recreated, timeout=15, what="client service re-created by the periodic spec sync")
