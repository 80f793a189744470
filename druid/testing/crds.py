"""Install druid's CRDs (manifests/crds) into a cluster and wait until they are served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from druid.runtime import patch
from druid.testing.binaries import REPO
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
