"""Deleting a real Etcd removes everything druid made for it and keeps the data volumes."""

from __future__ import annotations

import pytest

from druid.api import names
from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    PDBS,
    PODS,
    PVCS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
)
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, backed_up_etcd
from druid.testing.wait import eventually

pytestmark = pytest.mark.e2e

MANAGED = (STATEFULSETS, SERVICES, CONFIGMAPS, LEASES, PDBS, SERVICEACCOUNTS, ROLES, ROLEBINDINGS, PODS)


async def test_delete_removes_what_druid_made_and_keeps_the_volumes(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-delete"
    store, _ = await backed_up_etcd(real_cluster, rkube, ns, name)
    selector = names.selector_string(names.default_labels(name))
    before = {res.kind: len((await rkube.list(res, ns, label_selector=selector))["items"]) for res in MANAGED}
    assert before["StatefulSet"] == 1 and before["Pod"] == 1 and before["Lease"] >= 3, before

    clock = Stopwatch()
    await rkube.delete(ETCDS, name, ns)

    async def all_gone() -> bool:
        if await rkube.get_or_none(ETCDS, name, ns) is not None:
            return False
        for res in MANAGED:
            if (await rkube.list(res, ns, label_selector=selector))["items"]:
                return False
        return True

    await eventually(all_gone, timeout=180, what=f"everything of {name} gone", interval=1)
    figures["delete 1-member Etcd -> all managed objects and pods gone, s"] = clock()
    pvcs = (await rkube.list(PVCS, ns))["items"]
    assert [p["metadata"]["name"] for p in pvcs] == [f"{name}-{name}-0"]
    assert store.snapshots("Full"), "the bucket keeps its snapshots"
