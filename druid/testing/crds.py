"""Install druid's CRDs (manifests/crds) into a cluster and wait until they are served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from druid.runtime import patch
from druid.testing.binaries import REPO
from druid.testing.controlplane import ControlPlane, wait_until
from druid.testing.wait import eventually

CRD_DIR = REPO / "manifests" / "crds"


def load_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


async def install_crds(api: client.ApiClient, directory: Path = CRD_DIR, timeout: float = 30) -> list[str]:
    ext = client.ApiextensionsV1Api(api)
    names = []
    for crd in load_crds(directory):
        name = crd["metadata"]["name"]
        await ext.patch_custom_resource_definition(name, crd, **patch.apply("druid-tests"))
        names.append(name)

    async def established() -> bool:
        for name in names:
            got = await ext.read_custom_resource_definition(name)
            conds = {c.type: c.status for c in (got.status.conditions or [])}
            if conds.get("Established") != "True":
                return False
        return True

    await eventually(established, timeout=timeout, what=f"CRDs established: {names}")
    return names


def install_crds_sync(cp: ControlPlane, directory: Path = CRD_DIR, timeout: float = 30) -> list[str]:
    """:func:`install_crds` for synchronous callers (a launcher outside any event loop), through ``cp.request``."""
    names = []
    for crd in load_crds(directory):
        cp.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        names.append(crd["metadata"]["name"])

    def established() -> bool:
        for name in names:
            got = cp.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
            if conds.get("Established") != "True":
                return False
        return True

    wait_until(established, timeout, f"CRDs established: {names}")
    return names
