"""Etcd manifests and waits for tests against a control plane with druid's controllers running."""

from __future__ import annotations

import copy
from typing import Any

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS, Obj
from druid.testing.wait import eventually


def etcd_manifest(
    name: str, namespace: str, replicas: int = 1, *, annotations: dict[str, str] | None = None, **spec: Any
) -> Obj:
    """An Etcd without backups (``spec`` keys in wire form override the defaults; None removes one)."""
    body: dict[str, Any] = {
        "replicas": replicas,
        "labels": {"app": name},
        "etcd": {},
        "backup": {},
        "storageCapacity": "1Gi",
    }
    body.update(copy.deepcopy(spec))
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": c.API_VERSION, "kind": c.KIND_ETCD, "metadata": meta, "spec": body}


def tls(prefix: str, *, client: bool = True) -> dict[str, Any]:
    """A TLS block referencing Secrets ``<prefix>-ca``, ``<prefix>-server`` (and ``<prefix>-client``)."""
    out: dict[str, Any] = {
        "tlsCASecretRef": {"name": f"{prefix}-ca", "dataKey": "ca.crt"},
        "serverTLSSecretRef": {"name": f"{prefix}-server"},
    }
    if client:
        out["clientTLSSecretRef"] = {"name": f"{prefix}-client"}
    return out


async def create_secret(kube: Kube, namespace: str, name: str, data: dict[str, str] | None = None) -> Obj:
    """A Secret with (base64) ``data``; the contents do not matter under kwok, nothing mounts them."""
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}
    body["data"] = data or {"tls.crt": "Y2VydA==", "tls.key": "a2V5", "ca.crt": "Y2E="}
    return await kube.create(SECRETS, body)


async def annotate_reconcile(
    kube: Kube,
    namespace: str,
    name: str,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str | None] | None = None,
) -> Obj:
    """Patch ``spec`` and ``annotations`` (None removes one) together with ``druid.gardener.cloud/operation:
    reconcile``, which asks for a spec reconcile while auto-reconcile is off."""
    body: dict[str, Any] = {"metadata": {"annotations": {**(annotations or {}), c.ANNOTATION_OPERATION: "reconcile"}}}
    if spec is not None:
        body["spec"] = spec
    return await kube.merge_patch(ETCDS, name, body, namespace)


async def wait_annotation_removed(kube: Kube, namespace: str, name: str, key: str = c.ANNOTATION_OPERATION) -> Obj:
    """Wait until the Etcd no longer carries annotation ``key`` (druid removes the operation annotation)."""

    async def probe() -> Obj | None:
        etcd = await get_etcd(kube, namespace, name)
        return None if key in (etcd["metadata"].get("annotations") or {}) else etcd

    found: Obj | None = await eventually(probe, timeout=30, what=f"{key} removed from {namespace}/{name}")
    assert found is not None
    return found


async def get_etcd(kube: Kube, namespace: str, name: str) -> Obj:
    return await kube.get(ETCDS, name, namespace)


def last_operation(etcd: Obj) -> dict[str, Any]:
    return (etcd.get("status") or {}).get("lastOperation") or {}


async def wait_for_operation(
    kube: Kube,
    namespace: str,
    name: str,
    state: str,
    *,
    op_type: str = c.OPERATION_TYPE_RECONCILE,
    generation: int | None = None,
    timeout: float = 30,
) -> Obj:
    """Wait until lastOperation is ``op_type``/``state`` (and observedGeneration is ``generation``, if given)."""

    async def probe() -> Obj | None:
        etcd = await get_etcd(kube, namespace, name)
        op = last_operation(etcd)
        if (op.get("type"), op.get("state")) != (op_type, state):
            return None
        if generation is not None and (etcd.get("status") or {}).get("observedGeneration") != generation:
            return None
        return etcd

    what = f"etcd {namespace}/{name} lastOperation {op_type}/{state}" + (
        f" with observedGeneration {generation}" if generation is not None else ""
    )
    found: Obj | None = await eventually(probe, timeout=timeout, what=what)
    assert found is not None
    return found


def condition(etcd: Obj, condition_type: str) -> dict[str, Any]:
    for cond in (etcd.get("status") or {}).get("conditions") or ():
        if cond.get("type") == condition_type:
            return dict(cond)
    return {}
