"""Plain types shared by the runtime: object keys, resource references, tombstones, owner references, pod
readiness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

Obj = dict[str, Any]
"""A Kubernetes object as the API server sends it (parsed JSON); cached objects are treated as immutable."""


class ObjectKey(NamedTuple):
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return self.name if self.namespace is None else f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, obj: Obj) -> ObjectKey:
        meta = obj["metadata"]
        return cls(meta.get("namespace") or None, meta["name"])

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        ns, sep, name = text.partition("/")
        return cls(ns, name) if sep else cls(None, text)


@dataclass(frozen=True)
class ResourceRef:
    """Enough to build REST paths for one kind: ``/api/v1/...`` for the core group, else ``/apis/g/v/...``."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group or 'core'}/{self.version}"


@dataclass(frozen=True)
class Tombstone:
    """Delivered on delete when the final state was not observed (the object vanished during a relist)."""

    key: ObjectKey
    last_known: Obj


def controller_owner(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: Obj, *, controller: bool = True, block_owner_deletion: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


# Well-known resources the runtime and druid's controllers use.
PODS = ResourceRef("", "v1", "pods", "Pod")
SERVICES = ResourceRef("", "v1", "services", "Service")
CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap")
SECRETS = ResourceRef("", "v1", "secrets", "Secret")
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", "ServiceAccount")
PVCS = ResourceRef("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
EVENTS = ResourceRef("", "v1", "events", "Event")
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", namespaced=False)
STATEFULSETS = ResourceRef("apps", "v1", "statefulsets", "StatefulSet")
JOBS = ResourceRef("batch", "v1", "jobs", "Job")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", "Lease")
ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")


def pod_ready(pod: Obj | None) -> bool:
    """The pod's Ready condition is True (False for no pod)."""
    conditions = ((pod or {}).get("status") or {}).get("conditions") or ()
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)
