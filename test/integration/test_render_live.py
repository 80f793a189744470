"""`druid render` output equals the objects the controller created for the same Etcd (one test per sample).

The controller runs in-process; after it reports a successful reconcile, every rendered object must be
contained in its live counterpart: each field druid renders has the same value on the server, and the
only differences allowed are fields the API server adds (defaults, uid, resourceVersion, status, ...).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.gocompat.quantity import parse_quantity
from druid.render import render_objects
from druid.runtime.client import Kube
from druid.runtime.objects import (
    CONFIGMAPS,
    LEASES,
    PDBS,
    ROLEBINDINGS,
    ROLES,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    Obj,
    ResourceRef,
)
from druid.testing.binaries import REPO
from druid.testing.etcds import get_etcd, wait_for_operation
from druid.testing.operator import Operator
from druid.testing.samples import tls_secrets

SAMPLES = REPO / "manifests" / "samples"
RESOURCES: dict[str, ResourceRef] = {
    r.kind: r for r in (SERVICEACCOUNTS, ROLES, ROLEBINDINGS, LEASES, PDBS, SERVICES, CONFIGMAPS, STATEFULSETS)
}


def _same_scalar(live: Any, want: Any) -> bool:
    if live == want:
        return True
    if isinstance(live, str) and isinstance(want, str):  # quantities the server canonicalised (e.g. 1000m → 1)
        try:
            return parse_quantity(live) == parse_quantity(want)
        except ValueError:
            return False
    return False


def differences(live: Any, want: Any, path: str = "") -> list[str]:
    """Where ``want`` (rendered) is not contained in ``live`` (stored)."""
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return [f"{path}: expected an object, got {live!r}"]
        out: list[str] = []
        for key, value in want.items():
            if key not in live:
                if value not in ({}, [], None):  # empty values are dropped on the server
                    out.append(f"{path}.{key}: missing on the server")
                continue
            out += differences(live[key], value, f"{path}.{key}")
        return out
    if isinstance(want, list):
        if not isinstance(live, list) or len(live) != len(want):
            return [f"{path}: expected {want!r}, got {live!r}"]
        return [d for i, (a, b) in enumerate(zip(live, want, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if _same_scalar(live, want) else [f"{path}: rendered {want!r}, server has {live!r}"]


async def _apply_sample(kube: Kube, sample: str, namespace: str) -> str:
    body = yaml.safe_load((SAMPLES / sample).read_text())
    body["metadata"]["namespace"] = namespace
    if sample == "etcd-3-tls.yaml":
        for secret in tls_secrets("etcd-3-tls", namespace):
            await kube.create(SECRETS, secret, namespace)
    await kube.create(ETCDS, body, namespace)
    return str(body["metadata"]["name"])


@pytest.mark.parametrize("sample", ["etcd-single.yaml", "etcd-3-tls.yaml", "etcd-3-local-backup.yaml"])
async def test_render_equals_live_objects(operator: Operator, kube: Kube, namespace: str, sample: str) -> None:
    name = await _apply_sample(kube, sample, namespace)
    await wait_for_operation(kube, namespace, name, c.OPERATION_STATE_SUCCEEDED, generation=1)
    live_etcd: Obj = await get_etcd(kube, namespace, name)
    rendered = render_objects(live_etcd)
    kinds = [o["kind"] for o in rendered]
    assert kinds[-2:] == ["ConfigMap", "StatefulSet"] and "ServiceAccount" in kinds
    problems: list[str] = []
    for want in rendered:
        ref = RESOURCES[want["kind"]]
        live = await kube.get(ref, want["metadata"]["name"], namespace)
        problems += [f"{want['kind']}/{want['metadata']['name']}{d}" for d in differences(live, want)]
    assert not problems, "\n".join(problems)


def test_differences_reports_real_mismatches() -> None:
    live = {"spec": {"replicas": 3, "ports": [{"port": 1, "protocol": "TCP"}], "cpu": "1"}, "status": {}}
    assert differences(live, {"spec": {"replicas": 3, "ports": [{"port": 1}], "cpu": "1000m"}}) == []
    assert differences(live, {"spec": {"replicas": 1}}) == [".spec.replicas: rendered 1, server has 3"]
    assert differences(live, {"spec": {"ports": [{"port": 2}]}}) == [".spec.ports[0].port: rendered 2, server has 1"]
    assert differences(live, {"spec": {"missing": "x"}}) == [".spec.missing: missing on the server"]
