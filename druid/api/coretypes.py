"""Structural schemas of embedded Kubernetes types, inlined from the Kubernetes OpenAPI v3 document.

The document ships with the kubernetes module in the Go module cache (``api/openapi-spec/v3``). Only
generation needs it; the generated CRDs are committed. Inlining follows controller-gen: ``$ref``s are
resolved, descriptions and ``default``s dropped, ``required`` sorted, and ``resource.Quantity`` becomes
the int-or-string schema with the quantity pattern.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from druid.gocompat.quantity import QUANTITY_PATTERN

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": True,
}
_DROPPED = {"description", "default", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key"}
_REPO = Path(__file__).resolve().parents[2]


def kube_version() -> str:
    """KUBE_VERSION from hack/versions.env (the version of the local control plane)."""
    versions = _REPO / "hack" / "versions.env"
    if versions.is_file():
        for line in versions.read_text().splitlines():
            if line.startswith("KUBE_VERSION="):
                return line.split("=", 1)[1].strip()
    return "1.35.4"


def find_openapi_dir() -> Path | None:
    """``$DRUID_K8S_OPENAPI_DIR``, or ``k8s.io/kubernetes@v<KUBE_VERSION>/api/openapi-spec/v3`` in the module cache."""
    if explicit := os.environ.get("DRUID_K8S_OPENAPI_DIR"):
        return Path(explicit)
    caches = [os.environ.get("GOMODCACHE")]
    caches += [str(Path(gopath) / "pkg" / "mod") for gopath in os.environ.get("GOPATH", "").split(os.pathsep) if gopath]
    caches.append(str(Path.home() / "go" / "pkg" / "mod"))
    for cache in filter(None, caches):
        candidate = Path(cache) / "k8s.io" / f"kubernetes@v{kube_version()}" / "api" / "openapi-spec" / "v3"
        if (candidate / "api__v1_openapi.json").is_file():
            return candidate
    return None


def load_definitions(openapi_dir: Path) -> dict[str, Any]:
    """All schemas of the core/v1 document (it also carries the meta/v1 and resource types it uses)."""
    document = json.loads((openapi_dir / "api__v1_openapi.json").read_text())
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def inline(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """The fully inlined structural schema of definition ``name``."""
    if name == QUANTITY:
        return json.loads(json.dumps(QUANTITY_SCHEMA))
    return _resolve(definitions, definitions[name], (name,))


def _resolve(definitions: dict[str, Any], node: Any, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve(definitions, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive Kubernetes type {name} cannot be inlined")
        return (
            inline(definitions, name) if name == QUANTITY else _resolve(definitions, definitions[name], (*seen, name))
        )
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "allOf" and len(value) == 1:
            out.update(_resolve(definitions, value[0], seen))
        elif key == "properties":
            out[key] = {prop: _resolve(definitions, schema, seen) for prop, schema in value.items()}
        elif key == "required":
            out[key] = sorted(value)
        else:
            out[key] = _resolve(definitions, value, seen)
    return out
