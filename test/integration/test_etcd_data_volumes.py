"""E42 against the real control plane: a data volume that cannot bind shows up in DataVolumesReady.

The Etcd asks for a StorageClass that does not exist, so kube-controller-manager's PV controller leaves
the PVC Pending and records a Warning event on it; druid reads those events and reports them.
"""

from __future__ import annotations

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.testing.etcds import condition, etcd_manifest, get_etcd
from druid.testing.operator import Operator
from druid.testing.wait import eventually


async def test_e42_unbound_data_volume_with_warning_events(operator: Operator, kube: Kube, namespace: str) -> None:
    ns, n = namespace, "novol"
    await kube.create(ETCDS, etcd_manifest(n, ns, 1, storageClass="does-not-exist"), ns)
    await kube.create(ETCDS, etcd_manifest("okvol", ns, 1), ns)

    async def volumes_condition(name: str, status: str) -> dict | None:
        cond = condition(await get_etcd(kube, ns, name), c.CONDITION_DATA_VOLUMES_READY)
        return cond if cond.get("status") == status else None

    bad = await eventually(lambda: volumes_condition(n, "False"), timeout=60, what="DataVolumesReady=False")
    assert bad["reason"] == "FoundWarningsForDataVolumes"
    assert f"{n}-{n}-0" in bad["message"] and "does-not-exist" in bad["message"]
    good = await eventually(lambda: volumes_condition("okvol", "True"), timeout=60, what="DataVolumesReady=True")
    assert good["reason"] == "NoWarningsFoundForDataVolumes"
